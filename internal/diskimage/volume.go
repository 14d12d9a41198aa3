package diskimage

import (
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	pathpkg "path"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
)

// ReadVolumeFile reads one file from a filesystem that fills a whole
// device or image file, such as a config drive (FAT or ISO 9660), without
// mounting it.
func ReadVolumeFile(device, path string) ([]byte, error) {
	d, err := diskfs.Open(device, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", device, err)
	}
	defer d.Close()
	fs, err := d.GetFilesystem(0) // the whole device
	if err != nil {
		return nil, fmt.Errorf("%s: no FAT or ISO 9660 filesystem: %w", device, err)
	}
	// Absence is told apart from damage by listing the folder first.
	// go-diskfs lists folders by io/fs names: "." is the root.
	dir := strings.TrimPrefix(pathpkg.Dir(path), "/")
	if dir == "" {
		dir = "."
	}
	entries, err := fs.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w (%v)", device, pathpkg.Dir(path), iofs.ErrNotExist, err)
	}
	found := false
	for _, e := range entries {
		found = found || strings.EqualFold(e.Name(), pathpkg.Base(path))
	}
	if !found {
		return nil, fmt.Errorf("%s: %s: %w", device, path, iofs.ErrNotExist)
	}
	f, err := fs.OpenFile(path, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", device, path, err)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<20))
}
