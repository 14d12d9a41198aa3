// Package workdir makes temporary work folders that a later run can tell
// apart from a live one's, so that what a killed build left behind (a
// root tree, a raw disk: gigabytes) does not pile up until the disk is
// full.
//
// Each folder holds a lock file that its process keeps locked (flock)
// until it removes the folder or exits. The kernel drops the lock when the
// process dies, even by SIGKILL, so New can remove every folder of the same
// prefix whose lock it can take.
package workdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// lockName is the lock file inside each folder.
const lockName = ".nodebake-workdir.lock"

// unlockedGrace is how old a folder with no lock file must be before a
// sweep removes it: a folder is briefly without one after its creation,
// and folders made before this package have none.
const unlockedGrace = time.Hour

// Dir is a work folder held by this process.
type Dir struct {
	Path string
	lock *os.File
}

// New removes the stale folders named prefix* in the system's temporary
// folder (os.TempDir), then makes and locks a new one. Stale folders that
// cannot be removed are left as they are: cleaning up is not the caller's
// job to fail on.
func New(prefix string) (*Dir, error) {
	Sweep(os.TempDir(), prefix)
	path, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	f, err := lock(path)
	if err != nil {
		os.RemoveAll(path)
		return nil, fmt.Errorf("locking work folder %s: %w", path, err)
	}
	return &Dir{Path: path, lock: f}, nil
}

// lock makes the folder's lock file already locked: under another name
// first, renamed once locked, so that a sweep never finds it unlocked.
func lock(path string) (*os.File, error) {
	f, err := os.CreateTemp(path, lockName+".*")
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	if err := os.Rename(f.Name(), filepath.Join(path, lockName)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Remove deletes the folder and then lets go of its lock.
func (d *Dir) Remove() error {
	err := removeAll(d.Path)
	d.lock.Close()
	return err
}

// Sweep removes the folders in parent named prefix* that no live process
// holds, and returns the ones it removed.
func Sweep(parent, prefix string) []string {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		path := filepath.Join(parent, e.Name())
		if stale(path) && removeAll(path) == nil {
			removed = append(removed, path)
		}
	}
	return removed
}

// stale reports whether no process holds the folder at path.
func stale(path string) bool {
	f, err := os.Open(filepath.Join(path, lockName))
	if errors.Is(err, fs.ErrNotExist) {
		info, err := os.Stat(path)
		return err == nil && time.Since(info.ModTime()) > unlockedGrace
	}
	if err != nil {
		return false
	}
	defer f.Close() // closing drops the lock taken below
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// removeAll is os.RemoveAll that also removes what read-only folders hold
// (Go's module cache makes its folders read-only).
func removeAll(path string) error {
	if os.RemoveAll(path) == nil {
		return nil
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}
