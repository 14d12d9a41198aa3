package imager

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
)

// TestTreeDigest: what mksquashfs reads changes the digest, timestamps
// do not.
func TestTreeDigest(t *testing.T) {
	mk := func(t *testing.T) string {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
		os.WriteFile(filepath.Join(root, "usr/bin/prog"), []byte("program"), 0o755)
		os.WriteFile(filepath.Join(root, "usr/bin/other"), []byte("program"), 0o755)
		os.Symlink("prog", filepath.Join(root, "usr/bin/link"))
		return root
	}
	digest := func(t *testing.T, root string) string {
		d, err := TreeDigest(root)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := digest(t, mk(t))
	for _, c := range []struct {
		name   string
		change func(root string) error
		same   bool
	}{
		{"nothing", func(string) error { return nil }, true},
		{"times", func(root string) error {
			at := time.Unix(1, 0)
			return os.Chtimes(filepath.Join(root, "usr/bin/prog"), at, at)
		}, true},
		{"content", func(root string) error {
			return os.WriteFile(filepath.Join(root, "usr/bin/prog"), []byte("programs"), 0o755)
		}, false},
		{"mode", func(root string) error { return os.Chmod(filepath.Join(root, "usr/bin/prog"), 0o700) }, false},
		{"owner", func(root string) error { return os.Lchown(filepath.Join(root, "usr/bin/prog"), 1, 1) }, false},
		{"link target", func(root string) error {
			os.Remove(filepath.Join(root, "usr/bin/link"))
			return os.Symlink("other", filepath.Join(root, "usr/bin/link"))
		}, false},
		{"a hard link for a copy", func(root string) error {
			os.Remove(filepath.Join(root, "usr/bin/other"))
			return os.Link(filepath.Join(root, "usr/bin/prog"), filepath.Join(root, "usr/bin/other"))
		}, false},
		{"a new empty folder", func(root string) error { return os.Mkdir(filepath.Join(root, "srv"), 0o755) }, false},
		{"an extended attribute", func(root string) error {
			return unix.Lsetxattr(filepath.Join(root, "usr/bin/prog"), "trusted.nodebake-test", []byte("1"), 0)
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := mk(t)
			if err := c.change(root); err == unix.ENOTSUP || err == unix.EPERM {
				t.Skipf("this file system or user cannot: %v", err)
			} else if err != nil {
				t.Fatal(err)
			}
			if got := digest(t, root); (got == base) != c.same {
				t.Errorf("digest %s, unchanged tree %s: want same=%v", got, base, c.same)
			}
		})
	}
}

// TestRootSquashfsCache: the second tree of the same content gets the
// squashfs the first made, and a changed tree a new one.
func TestRootSquashfsCache(t *testing.T) {
	if testing.Short() {
		t.Skip("runs mksquashfs")
	}
	ctx := context.Background()
	c := &cache.Cache{Dir: t.TempDir()}
	run := &command.Runner{}
	epoch := time.Unix(1767225600, 0)
	tree := func(content string) string {
		root := t.TempDir()
		os.WriteFile(filepath.Join(root, "file"), []byte(content), 0o644)
		return root
	}
	first, err := rootSquashfs(ctx, run, c, tree("a"), epoch)
	if err != nil {
		t.Fatal(err)
	}
	again, err := rootSquashfs(ctx, run, c, tree("a"), epoch)
	if err != nil || again != first {
		t.Errorf("the same tree: %s, want the cached %s (%v)", again, first, err)
	}
	other, err := rootSquashfs(ctx, run, c, tree("b"), epoch)
	if err != nil || other == first {
		t.Errorf("a changed tree: %s, the first's %s (%v)", other, first, err)
	}
	// The entries beyond those kept go, the least recently used first.
	for i := 0; i < squashfsKeep; i++ {
		time.Sleep(10 * time.Millisecond)
		if _, err := rootSquashfs(ctx, run, c, tree(string(rune('c'+i))), epoch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("the oldest root filesystem is still cached: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(c.Dir, squashfsKind, "*.sha256"))
	if len(left) != squashfsKeep {
		t.Errorf("%d entries cached, want %d", len(left), squashfsKeep)
	}
}
