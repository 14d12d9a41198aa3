package imager

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/lock"
	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/profile"
)

const keyProfile = `apiVersion: nodebake.dev/v1alpha1
kind: Profile
metadata:
  name: keyed
spec:
  base:
    suite: bookworm
    mirror: http://deb.example.invalid/debian
  overlays: [site]
  units:
    files: [site.service]
    enable: [site.service]
  kit:
    kubernetesVersion: v1.37.2
  outputs:
    formats: [raw, qcow2]
`

// keyFixture is a source folder and a cache holding a base for the
// profile, as a build would find them.
type keyFixture struct {
	src, cacheDir, profile string
	lock                   *lock.Lock
}

func newKeyFixture(t *testing.T) *keyFixture {
	f := &keyFixture{src: t.TempDir(), cacheDir: t.TempDir(), profile: keyProfile}
	for name, data := range map[string]string{
		"overlays/site/etc/site.conf":    "a = 1\n",
		"overlays/site/usr/bin/site-run": "#!/bin/sh\n",
		"systemd/site.service":           "[Service]\nExecStart=/usr/bin/site-run\n",
		"systemd/firstboot.service":      "[Service]\nExecStart=/usr/bin/firstboot\n",
		"go.mod":                         "module example.invalid/agent\n",
		"cmd/firstboot/main.go":          "package main\n\nfunc main() {}\n",
		"README.md":                      "not an input\n",
	} {
		p := filepath.Join(f.src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("site.conf", filepath.Join(f.src, "overlays/site/etc/site.link")); err != nil {
		t.Fatal(err)
	}
	f.setBase(t, "base-sha256-1")
	return f
}

func (f *keyFixture) imager(t *testing.T) *imager {
	p, problems := profile.Parse([]byte(f.profile))
	if len(problems) > 0 {
		t.Fatalf("profile: %v", problems)
	}
	im := newImager(slog.New(slog.DiscardHandler), Request{
		Profile: p, SourceDir: f.src, CacheDir: f.cacheDir, HostRoot: "/", Lock: f.lock,
	}, t.TempDir())
	if err := im.aptSources(context.Background()); err != nil {
		t.Fatal(err)
	}
	return im
}

// setBase records a base tarball's digest in the cache, as rootfs.Base
// does when it makes one.
func (f *keyFixture) setBase(t *testing.T, sum string) {
	p, _ := profile.Parse([]byte(f.profile))
	im := newImager(slog.New(slog.DiscardHandler), Request{Profile: p, SourceDir: f.src, CacheDir: f.cacheDir, HostRoot: "/"}, t.TempDir())
	if err := im.aptSources(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := &cache.Cache{Dir: f.cacheDir}
	path := c.Path("base", im.base.Key())
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path+".sha256", []byte(sum+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *keyFixture) key(t *testing.T) string {
	t.Helper()
	key, ok, err := f.imager(t).inputsKey(context.Background())
	if err != nil || !ok {
		t.Fatalf("inputsKey: %q %v %v", key, ok, err)
	}
	return key
}

// TestInputsKey: every input a build reads changes the build cache's
// key; what it does not read does not.
func TestInputsKey(t *testing.T) {
	want := newKeyFixture(t).key(t)
	write := func(name, data string, mode os.FileMode) func(*testing.T, *keyFixture) {
		return func(t *testing.T, f *keyFixture) {
			if err := os.WriteFile(filepath.Join(f.src, name), []byte(data), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(f.src, name), mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name   string
		change func(*testing.T, *keyFixture)
		same   bool
	}{
		{"nothing", func(*testing.T, *keyFixture) {}, true},
		{"a file no step reads", write("README.md", "changed\n", 0o644), true},
		{"a test of the agent", write("cmd/firstboot/main_test.go", "package main\n", 0o644), true},
		{"an overlay file's content", write("overlays/site/etc/site.conf", "a = 2\n", 0o644), false},
		{"an overlay file made executable", write("overlays/site/etc/site.conf", "a = 1\n", 0o755), false},
		{"a file added to an overlay", write("overlays/site/etc/new.conf", "", 0o644), false},
		{"an overlay link's target", func(t *testing.T, f *keyFixture) {
			p := filepath.Join(f.src, "overlays/site/etc/site.link")
			os.Remove(p)
			if err := os.Symlink("other.conf", p); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"an empty folder added to an overlay", func(t *testing.T, f *keyFixture) {
			if err := os.Mkdir(filepath.Join(f.src, "overlays/site/srv"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"a unit file", write("systemd/site.service", "[Service]\nExecStart=/bin/true\n", 0o644), false},
		{"the first-boot unit", write("systemd/firstboot.service", "[Service]\n", 0o644), false},
		{"the agent's sources", write("cmd/firstboot/main.go", "package main\n\nfunc main() { println() }\n", 0o644), false},
		{"the agent's go.mod", write("go.mod", "module example.invalid/agent\n\ngo 1.26\n", 0o644), false},
		{"the profile", func(_ *testing.T, f *keyFixture) {
			f.profile = strings.Replace(f.profile, "formats: [raw, qcow2]", "formats: [raw]", 1)
			f.setBase(t, "base-sha256-1")
		}, false},
		{"the apt sources", func(_ *testing.T, f *keyFixture) {
			f.profile = strings.Replace(f.profile, "deb.example.invalid", "deb2.example.invalid", 1)
			f.setBase(t, "base-sha256-1")
		}, false},
		{"the base tarball", func(t *testing.T, f *keyFixture) { f.setBase(t, "base-sha256-2") }, false},
		{"the lock", func(_ *testing.T, f *keyFixture) {
			f.lock = &lock.Lock{APIVersion: lock.APIVersion, Kind: lock.Kind, Profile: "keyed", Suite: "bookworm"}
		}, false},
		{"a host tool's version", func(t *testing.T, f *keyFixture) {
			bin := t.TempDir()
			script := "#!/bin/sh\necho 'mksquashfs version 99.0'\n"
			if err := os.WriteFile(filepath.Join(bin, "mksquashfs"), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newKeyFixture(t)
			c.change(t, f)
			if got := f.key(t); (got == want) != c.same {
				t.Errorf("key %s, before %s: same = %v, want %v", got[:12], want[:12], got == want, c.same)
			}
		})
	}
}

// TestInputsKeyWithoutABase: with no base in the cache the key is not
// known before the base step; the build runs every step.
func TestInputsKeyWithoutABase(t *testing.T) {
	f := newKeyFixture(t)
	f.cacheDir = t.TempDir()
	if key, ok, err := f.imager(t).inputsKey(context.Background()); ok || err != nil || key != "" {
		t.Errorf("inputsKey with no base: %q %v %v", key, ok, err)
	}
}

// storeEntry puts a build in the fixture's cache under its key, as keep
// does: a sparse raw disk, the manifest and the lock.
func (f *keyFixture) storeEntry(t *testing.T, resolved *lock.Lock) (key string) {
	key = f.key(t)
	c := &cache.Cache{Dir: f.cacheDir}
	tmp, err := c.TempDir(buildKind)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.Create(filepath.Join(tmp, "disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	raw.Truncate(64 << 20)
	raw.WriteAt([]byte("a disk"), 1<<20)
	raw.Close()
	m := &manifest.Manifest{SchemaVersion: manifest.SchemaVersion, Name: "keyed",
		Outputs: []manifest.Output{{Format: "raw", File: "keyed.raw", SHA256: "raw-sum"}, {Format: "qcow2", File: "keyed.qcow2", SHA256: "qcow2-sum"}}}
	data, _ := json.Marshal(resolved)
	os.WriteFile(filepath.Join(tmp, "manifest.json"), m.Marshal(), 0o644)
	os.WriteFile(filepath.Join(tmp, "lock.json"), data, 0o644)
	os.Mkdir(filepath.Join(tmp, "live"), 0o755)
	if _, err := c.Commit(buildKind, key, tmp); err != nil {
		t.Fatal(err)
	}
	return key
}

// TestCachedBuild: a build the cache holds is found by its key and
// verified; a changed entry is not used; --locked compares the cached
// build's lock with the profile's.
func TestCachedBuild(t *testing.T) {
	lockOf := func(pause string) *lock.Lock {
		return &lock.Lock{APIVersion: lock.APIVersion, Kind: lock.Kind, Profile: "keyed", Suite: "bookworm",
			Kit: lock.Kit{Images: []lock.Image{{Ref: "registry.k8s.io/pause:3.10.2", Digest: pause}}}}
	}
	t.Run("hit", func(t *testing.T) {
		f := newKeyFixture(t)
		f.storeEntry(t, lockOf("sha256:aa"))
		im := f.imager(t)
		if err := im.cachedBuild(context.Background()); err != nil || im.hit == nil {
			t.Fatalf("cachedBuild: hit %v, %v", im.hit != nil, err)
		}
		if got := im.hit.knownSums(); len(got) != 1 || got["keyed.raw"] != "raw-sum" {
			t.Errorf("known sums %v, want the raw disk's only (qcow2 is made again)", got)
		}
		if err := im.fromCache(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, _ := cache.SparseSHA256(im.rawPath()); got != mustSparse(t, filepath.Join(im.hit.dir, "disk.raw")) {
			t.Error("the raw disk in the work folder is not the cached one")
		}
		data, _ := os.ReadFile(filepath.Join(im.work, "manifest.json"))
		if m, err := manifest.Parse(data); err != nil || len(m.Outputs) != 0 {
			t.Errorf("the work folder's manifest: %v, outputs %v (publish lists them anew)", err, m)
		}
	})
	t.Run("another input", func(t *testing.T) {
		f := newKeyFixture(t)
		f.storeEntry(t, lockOf("sha256:aa"))
		os.WriteFile(filepath.Join(f.src, "overlays/site/etc/site.conf"), []byte("a = 3\n"), 0o644)
		im := f.imager(t)
		if err := im.cachedBuild(context.Background()); err != nil || im.hit != nil {
			t.Fatalf("cachedBuild after an overlay changed: hit %v, %v", im.hit != nil, err)
		}
	})
	t.Run("a changed entry", func(t *testing.T) {
		f := newKeyFixture(t)
		key := f.storeEntry(t, lockOf("sha256:aa"))
		c := &cache.Cache{Dir: f.cacheDir}
		raw, _ := os.OpenFile(filepath.Join(c.Path(buildKind, key), "disk.raw"), os.O_WRONLY, 0)
		raw.WriteAt([]byte{1}, 40<<20) // in a hole
		raw.Close()
		im := f.imager(t)
		if err := im.cachedBuild(context.Background()); err != nil || im.hit != nil {
			t.Fatalf("cachedBuild with a changed entry: hit %v, %v", im.hit != nil, err)
		}
		if _, err := os.Stat(c.Path(buildKind, key)); !os.IsNotExist(err) {
			t.Errorf("the changed entry is still there: %v", err)
		}
	})
	t.Run("locked", func(t *testing.T) {
		f := newKeyFixture(t)
		f.lock = lockOf("sha256:aa")
		f.storeEntry(t, lockOf("sha256:bb")) // built from the lock, resolved otherwise
		im := f.imager(t)
		im.req.Locked = true
		err := im.cachedBuild(context.Background())
		if !lock.IsDrift(err) || !strings.Contains(err.Error(), "sha256:bb") {
			t.Fatalf("a --locked build of a cached build that drifted: %v, want the drift", err)
		}
		f.storeEntry(t, lockOf("sha256:aa"))
		im = f.imager(t)
		im.req.Locked = true
		if err := im.cachedBuild(context.Background()); err != nil || im.hit == nil {
			t.Fatalf("a --locked build of a cached build that matches: hit %v, %v", im.hit != nil, err)
		}
	})
}

func mustSparse(t *testing.T, path string) string {
	sum, err := cache.SparseSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
