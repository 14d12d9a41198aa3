package rootfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/rootpath"
)

// AddedFile is one file the builder put into the image, as the manifest
// records it.
type AddedFile = manifest.File

// Tree is a root filesystem being assembled in a folder. It records every
// file it adds.
type Tree struct {
	Root  string
	added map[string]AddedFile
}

// NewTree wraps an extracted root folder.
func NewTree(root string) *Tree {
	return &Tree{Root: root, added: map[string]AddedFile{}}
}

// Path is the host path of an absolute path inside the image.
func (t *Tree) Path(p string) string {
	return rootpath.Join(t.Root, p)
}

// WriteFile writes data at p inside the image, owned by root, recording
// source as where it came from.
func (t *Tree) WriteFile(p string, data []byte, mode os.FileMode, source string) error {
	host := t.Path(p)
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return fmt.Errorf("creating folder for %s: %w", p, err)
	}
	os.Remove(host)
	if err := os.WriteFile(host, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	// WriteFile's mode is masked by the umask; set it exactly.
	if err := os.Chmod(host, mode); err != nil {
		return err
	}
	if err := os.Lchown(host, 0, 0); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	t.added[p] = AddedFile{Path: p, Source: source, SHA256: hex.EncodeToString(sum[:]), Mode: fmt.Sprintf("%04o", mode.Perm())}
	return nil
}

// MkdirAll makes the folder p inside the image, and its parents, owned
// by root with mode 0755.
func (t *Tree) MkdirAll(p string) error {
	if err := os.MkdirAll(t.Path(p), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	return nil
}

// Symlink makes p a symbolic link to target, replacing what was there.
func (t *Tree) Symlink(target, p, source string) error {
	host := t.Path(p)
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(host); err != nil {
		return err
	}
	if err := os.Symlink(target, host); err != nil {
		return fmt.Errorf("linking %s: %w", p, err)
	}
	t.added[p] = AddedFile{Path: p, Source: source, Mode: "0777", Link: target}
	return nil
}

// Remove deletes p from the image, if it is there.
func (t *Tree) Remove(p string) error {
	if err := os.RemoveAll(t.Path(p)); err != nil {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	delete(t.added, p)
	return nil
}

// Added lists the recorded files, sorted by path.
func (t *Tree) Added() []AddedFile {
	out := make([]AddedFile, 0, len(t.added))
	for _, f := range t.added {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// ClampTimes sets the access and modification time of everything under
// dir, links included, to epoch, so that filesystems written from it are
// reproducible.
func ClampTimes(dir string, epoch time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(epoch.UnixNano()), unix.NsecToTimespec(epoch.UnixNano())}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting time of %s: %w", p, err)
		}
		return nil
	})
}
