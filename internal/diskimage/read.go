package diskimage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// Image is a disk image opened read-only, without mounting and without
// root.
type Image struct {
	d     *disk.Disk
	table *gpt.Table
	root  filesystem.FileSystem
	esp   filesystem.FileSystem
}

// PartitionInfo is one partition as found on the disk.
type PartitionInfo struct {
	Number   int    `json:"number"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	TypeName string `json:"typeName"`
	GUID     string `json:"guid"`
	Start    int64  `json:"start"`
	Size     int64  `json:"size"`
}

var typeNames = map[string]string{
	TypeESP:       "EFI system partition",
	TypeRootX8664: "Linux root (x86-64)",
	TypeLinuxData: "Linux filesystem",
}

// Open opens a raw image read-only. It must hold a GPT with the
// partitions this package writes. Only a regular file or a block device
// is opened: a FIFO would block the open itself, beyond any signal.
func Open(path string) (_ *Image, err error) {
	defer recovered(&err, path)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotImage, err)
	}
	if m := fi.Mode(); !m.IsRegular() && (m&fs.ModeDevice == 0 || m&fs.ModeCharDevice != 0) {
		return nil, fmt.Errorf("%s: %w: not a regular file or a block device (%s)", path, ErrNotImage, m.Type())
	}
	d, err := diskfs.Open(path, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		return nil, fmt.Errorf("%s: %w: %v", path, ErrNotImage, err)
	}
	defer func() {
		// Closed on any error, and on a panic, which recovered (above)
		// then turns into one.
		if r := recover(); r != nil {
			d.Close()
			panic(r)
		}
		if err != nil {
			d.Close()
		}
	}()
	img := &Image{d: d}
	t, err := d.GetPartitionTable()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: no partition table: %v", path, ErrNotImage, err)
	}
	table, ok := t.(*gpt.Table)
	if !ok {
		return nil, fmt.Errorf("%s: %w: the partition table is not GPT", path, ErrNotImage)
	}
	img.table = table
	for _, want := range []string{RoleESP, RoleRootA, RoleState} {
		if img.number(want) == 0 {
			return nil, fmt.Errorf("%s: %w: no %q partition", path, ErrNotImage, want)
		}
	}
	return img, nil
}

// Close releases the image.
func (i *Image) Close() error { return i.d.Close() }

func (i *Image) number(name string) int {
	for n, p := range i.table.Partitions {
		if p != nil && p.Name == name {
			return n + 1
		}
	}
	return 0
}

// Partitions lists the partitions in table order.
func (i *Image) Partitions() []PartitionInfo {
	var out []PartitionInfo
	ss := int64(i.table.LogicalSectorSize)
	if ss == 0 {
		ss = SectorSize
	}
	for n, p := range i.table.Partitions {
		if p == nil || p.Type == gpt.Unused {
			continue
		}
		typ := strings.ToUpper(string(p.Type))
		out = append(out, PartitionInfo{
			Number: n + 1, Name: p.Name, Type: typ, TypeName: typeNames[typ],
			GUID: strings.ToLower(p.GUID), Start: int64(p.Start) * ss, Size: int64(p.End-p.Start+1) * ss,
		})
	}
	return out
}

// DiskGUID is the GPT's disk GUID.
func (i *Image) DiskGUID() string { return strings.ToLower(i.table.GUID) }

func (i *Image) rootFS() (_ filesystem.FileSystem, err error) {
	defer recovered(&err, "root slot A")
	if i.root == nil {
		// disk.GetFilesystem probes squashfs with the sector size as its
		// block size, which squashfs refuses; read it with its own.
		p := i.table.Partitions[i.number(RoleRootA)-1]
		ss := int64(SectorSize)
		fs, err := squashfs.Read(i.d.Backend, int64(p.End-p.Start+1)*ss, int64(p.Start)*ss, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: reading root slot A: %v", ErrNotImage, err)
		}
		i.root = fs
	}
	return i.root, nil
}

func (i *Image) espFS() (_ filesystem.FileSystem, err error) {
	defer recovered(&err, "the ESP")
	if i.esp == nil {
		fs, err := i.d.GetFilesystem(i.number(RoleESP))
		if err != nil {
			return nil, fmt.Errorf("reading the ESP: %w", err)
		}
		i.esp = fs
	}
	return i.esp, nil
}

// ReadRootFile reads a file of at most max bytes from root slot A: an
// image is input, and its files may be any size.
func (i *Image) ReadRootFile(path string, max int64) ([]byte, error) {
	fsys, err := i.rootFS()
	if err != nil {
		return nil, err
	}
	return readFile(fsys, path, max)
}

// ReadESPFile reads a file of at most max bytes from the EFI system
// partition.
func (i *Image) ReadESPFile(path string, max int64) ([]byte, error) {
	fsys, err := i.espFS()
	if err != nil {
		return nil, err
	}
	return readFile(fsys, path, max)
}

// ListRootDir lists the names in a folder of root slot A, sorted. A
// missing folder is an empty list.
func (i *Image) ListRootDir(path string) (_ []string, err error) {
	defer recovered(&err, path)
	fsys, err := i.rootFS()
	if err != nil {
		return nil, err
	}
	entries, err := fsys.ReadDir(strings.TrimPrefix(path, "/"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("listing %s: %w", path, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

func readFile(fsys filesystem.FileSystem, path string, max int64) (_ []byte, err error) {
	defer recovered(&err, path)
	name := strings.TrimPrefix(path, "/")
	if fi, err := fs.Stat(fsys, name); err == nil && fi.Size() > max {
		return nil, fmt.Errorf("reading %s: %w: %d bytes, at most %d", path, ErrFileTooLarge, fi.Size(), max)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("reading %s: %w: over %d bytes", path, ErrFileTooLarge, max)
	}
	return b, nil
}

// recovered turns a panic of go-diskfs while it reads a malformed image
// into an ErrNotImage error about what. Its readers trust offsets and
// lengths taken from the disk: FuzzImage found a squashfs whose metadata
// made its reader slice out of bounds (kept in inspect's fuzz corpus).
func recovered(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: %w: malformed (%v)", what, ErrNotImage, r)
	}
}
