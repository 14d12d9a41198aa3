package imager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskimage"
)

const (
	// squashfsKind is the cache's kind for root filesystems.
	squashfsKind = "squashfs"
	// squashfsKeep is how many root filesystems the cache keeps, the
	// last used: each is about 450 MB.
	squashfsKeep = 4
)

// rootSquashfs is the root tree's squashfs from the cache, made there
// with mksquashfs when the cache has none for a tree of the same content:
// the squashfs is a function of what mksquashfs reads (names, types,
// modes, owners, extended attributes, link targets, contents and which
// names are hard links of one file; every timestamp is fixed) and of its
// own version and arguments, and the cache key holds all of them.
func rootSquashfs(ctx context.Context, run *command.Runner, c *cache.Cache, rootDir string, epoch time.Time) (string, error) {
	version, err := run.Run(ctx, command.Cmd{Name: "mksquashfs", Args: []string{"-version"}})
	if err != nil {
		return "", fmt.Errorf("mksquashfs -version: %w", err)
	}
	tree, err := TreeDigest(rootDir)
	if err != nil {
		return "", fmt.Errorf("hashing the root tree: %w", err)
	}
	key := cache.Key([]byte("nodebake-root-squashfs-v1"), version, []byte(strings.Join(diskimage.SquashfsArgs("", "", epoch), " ")), []byte(tree))
	if path, ok, err := c.Lookup(squashfsKind, key); err != nil {
		return "", err
	} else if ok {
		if run.Log != nil {
			run.Log.Info("root filesystem found in cache", "tree", tree[:12])
		}
		c.Touch(squashfsKind, key)
		return path, nil
	}
	part, err := c.TempPath(squashfsKind, key)
	if err != nil {
		return "", err
	}
	if _, err := run.Run(ctx, command.Cmd{Name: "mksquashfs", Args: diskimage.SquashfsArgs(rootDir, part, epoch)}); err != nil {
		os.Remove(part)
		return "", err
	}
	path, err := c.Commit(squashfsKind, key, part)
	if err != nil {
		return "", err
	}
	if err := c.Prune(squashfsKind, squashfsKeep); err != nil && run.Log != nil {
		run.Log.Warn("pruning the cache's root filesystems", "error", err)
	}
	return path, nil
}

// TreeDigest is the sha256 of everything mksquashfs reads of the tree at
// root, timestamps aside: each entry in name order with its type, mode,
// owner, extended attributes, and its link target, device number or
// content's sha256; a hard link names the first path of its file.
func TreeDigest(root string) (string, error) {
	h := sha256.New()
	inodes := map[[2]uint64]string{}
	var paths []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(h, "%q %o %d:%d", rel, st.Mode, st.Uid, st.Gid)
		xattrs, err := listXattrs(p)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		for _, x := range xattrs {
			fmt.Fprintf(h, " %q=%x", x[0], x[1])
		}
		switch m := fi.Mode(); {
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, " -> %q", target)
		case m&(fs.ModeDevice|fs.ModeCharDevice) != 0:
			fmt.Fprintf(h, " dev %d", st.Rdev)
		case m.IsRegular():
			id := [2]uint64{st.Dev, st.Ino}
			if first, ok := inodes[id]; ok && st.Nlink > 1 {
				fmt.Fprintf(h, " link %q", first)
				break
			}
			inodes[id] = rel
			sum, err := cache.FileSHA256(p)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, " %d %s", fi.Size(), sum)
		}
		io.WriteString(h, "\n")
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// listXattrs are a file's extended attributes (not following a link),
// name and value, by name.
func listXattrs(p string) ([][2]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		if err == unix.ENOTSUP {
			err = nil
		}
		return nil, err
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		vsize, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, err
		}
		v := make([]byte, vsize)
		if vsize > 0 {
			if vsize, err = unix.Lgetxattr(p, name, v); err != nil {
				return nil, err
			}
		}
		out = append(out, [2]string{name, string(v[:vsize])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}
