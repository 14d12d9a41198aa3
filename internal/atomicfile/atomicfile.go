// Package atomicfile writes files so that a reader, or a build killed half
// way, never sees a partly written file at the final path: everything is
// written to a temporary file in the same folder and renamed into place.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Write writes data to path atomically with the given mode.
func Write(path string, data []byte, mode os.FileMode) error {
	return WriteFrom(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFrom creates a temporary file next to path, lets fill write it,
// syncs it, renames it to path and syncs the folder. On any error the temporary file is
// removed and path is left as it was.
func WriteFrom(path string, mode os.FileMode, fill func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file for %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = fill(f); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("setting mode of %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable: without it, a power cut can
// bring the old file back, or none.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// TempPath is a path next to path for a large output written in place by
// another tool; Commit renames it over path once it is complete.
func TempPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".partial")
}

// Commit renames the finished temporary file tmp to path. A folder
// replaces the folder at path in one step (the two are exchanged, and the
// old one removed), so a reader sees the old folder or the new one whole.
func Commit(tmp, path string) error {
	if fi, err := os.Stat(tmp); err == nil && fi.IsDir() {
		if old, err := os.Stat(path); err == nil && old.IsDir() {
			if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE); err != nil {
				return fmt.Errorf("exchanging %s for the new one: %w", filepath.Base(path), err)
			}
			return os.RemoveAll(tmp)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s into place: %w", filepath.Base(path), err)
	}
	return nil
}
