// Package cache is a content-keyed store of build outputs under one folder
// (by default ~/.cache/nodebake). Each entry is a file or a folder of
// files named by the key of its inputs, with the digest of its content
// beside it (a file's sha256; a folder's DirSHA256); an entry whose
// content no longer matches is treated as missing and rebuilt.
package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// ErrCorrupt is wrapped when an entry's content does not match its digest.
var ErrCorrupt = errors.New("cache entry does not match its digest")

// Cache is a folder of entries.
type Cache struct {
	Dir string
}

// DefaultDir is $NODEBAKE_CACHE, else $XDG_CACHE_HOME/nodebake, else
// ~/.cache/nodebake.
func DefaultDir() string {
	if d := os.Getenv("NODEBAKE_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "nodebake")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "nodebake-cache")
	}
	return filepath.Join(home, ".cache", "nodebake")
}

// Path is where the entry for kind and key lives.
func (c *Cache) Path(kind, key string) string {
	return filepath.Join(c.Dir, kind, key)
}

// Lookup returns the path of a verified entry, or ok=false when there is
// none. An entry that fails verification is removed, so it is rebuilt.
func (c *Cache) Lookup(kind, key string) (path string, ok bool, err error) {
	path = c.Path(kind, key)
	want, err := os.ReadFile(path + ".sha256")
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	} else if err != nil {
		return "", false, fmt.Errorf("reading cache digest: %w", err)
	}
	got, err := digest(path)
	if err != nil || got != strings.TrimSpace(string(want)) {
		// The digest first: an entry without one is no entry.
		os.Remove(path + ".sha256")
		os.RemoveAll(path)
		return "", false, nil
	}
	return path, true, nil
}

// Digest is the recorded sha256 of an entry that Lookup found.
func (c *Cache) Digest(kind, key string) (string, error) {
	b, err := os.ReadFile(c.Path(kind, key) + ".sha256")
	return strings.TrimSpace(string(b)), err
}

// TempPath is a path in the cache's folder for kind where a new entry can
// be written before Commit moves it into place.
func (c *Cache) TempPath(kind, key string) (string, error) {
	dir := filepath.Join(c.Dir, kind)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating cache folder: %w", err)
	}
	// A unique name: two builds of one key may run at once; the last
	// Commit wins, with identical content.
	f, err := os.CreateTemp(dir, "."+key+".*.partial")
	if err != nil {
		return "", fmt.Errorf("creating cache entry: %w", err)
	}
	f.Close()
	return f.Name(), nil
}

// TempDir is a new folder in the cache's folder for kind, where entries
// can be written before Commit moves each into place, or which Commit
// moves into place as one folder entry. The caller removes what is left.
func (c *Cache) TempDir(kind string) (string, error) {
	dir := filepath.Join(c.Dir, kind)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating cache folder: %w", err)
	}
	d, err := os.MkdirTemp(dir, ".batch.*.partial")
	if err != nil {
		return "", fmt.Errorf("creating cache folder: %w", err)
	}
	return d, nil
}

// Commit hashes the finished file or folder tmp (from TempPath or
// TempDir) and moves it into the cache as the entry for kind and key.
func (c *Cache) Commit(kind, key, tmp string) (string, error) {
	sum, err := digest(tmp)
	if err != nil {
		return "", err
	}
	path := c.Path(kind, key)
	sumTmp := tmp + ".sha256"
	if err := os.WriteFile(sumTmp, []byte(sum+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("writing cache digest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		// A folder does not replace a folder: the entry another build
		// committed first (the same content) is removed, then this one
		// takes its place.
		os.Remove(path + ".sha256")
		if rerr := os.RemoveAll(path); rerr != nil {
			err = rerr
		} else {
			err = os.Rename(tmp, path)
		}
		if err != nil {
			os.Remove(sumTmp)
			return "", fmt.Errorf("committing cache entry: %w", err)
		}
	}
	if err := os.Rename(sumTmp, path+".sha256"); err != nil {
		return "", fmt.Errorf("committing cache digest: %w", err)
	}
	return path, nil
}

// Touch marks an entry used now, for Prune.
func (c *Cache) Touch(kind, key string) {
	now := time.Now()
	os.Chtimes(c.Path(kind, key), now, now)
}

// Prune removes the entries of kind beyond the keep used last (made or
// touched), for kinds whose entries are large and rarely used again.
func (c *Cache) Prune(kind string, keep int) error {
	dir := filepath.Join(c.Dir, kind)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type entry struct {
		name string
		used time.Time
	}
	var es []entry
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".sha256") || !(e.Type().IsRegular() || e.IsDir()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		es = append(es, entry{name, fi.ModTime()})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].used.After(es[j].used) })
	var errs []error
	for _, e := range es[min(keep, len(es)):] {
		// The digest first: an entry without one is no entry.
		errs = append(errs, os.Remove(filepath.Join(dir, e.name+".sha256")), os.RemoveAll(filepath.Join(dir, e.name)))
	}
	return errors.Join(errs...)
}

// FileSHA256 is the hex sha256 of a file's content. A sparse file's
// holes are hashed as the zeros they read as, without reading them: a
// raw disk image is gigabytes of holes.
func FileSHA256(path string) (string, error) {
	f, size, err := open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf, zeros := make([]byte, 1<<20), make([]byte, 1<<20)
	for pos := int64(0); pos < size; {
		data, hole := dataRun(f, pos, size)
		for n := data - pos; n > 0; {
			k := min(n, int64(len(zeros)))
			h.Write(zeros[:k])
			n -= k
		}
		if _, err := io.CopyBuffer(h, io.NewSectionReader(f, data, hole-data), buf); err != nil {
			return "", fmt.Errorf("hashing %s: %w", path, err)
		}
		pos = hole
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// open opens a file for reading, with its size.
func open(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// Whence values of lseek(2) that find data and holes (Linux, and most
// file systems; where they are not supported the whole file is data).
const (
	seekData = 3
	seekHole = 4
)

// dataRun is the next run of data at or after pos: [data, hole).
func dataRun(f *os.File, pos, size int64) (data, hole int64) {
	data, err := f.Seek(pos, seekData)
	if err != nil {
		// ENXIO: only a hole is left; anything else: read it all.
		if errors.Is(err, syscall.ENXIO) {
			return size, size
		}
		return pos, size
	}
	hole, err = f.Seek(data, seekHole)
	if err != nil || hole > size {
		hole = size
	}
	return data, hole
}

// Key is the hex sha256 of the given parts, each length-prefixed so that
// no two different lists of parts share a key.
func Key(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}
