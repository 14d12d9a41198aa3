package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodebake/nodebake/internal/cache"
)

// TestRebuildIsBitForBitIdentical builds the test profile a second time,
// from the same cached base and kit but with no cached root filesystem,
// so mksquashfs compresses the root again, and then a third time with the
// root filesystem the cache now holds; it compares the raw images and
// manifests of all three. The manifests list every output's sha256, so
// every format is compared.
func TestRebuildIsBitForBitIdentical(t *testing.T) {
	first := testImage(t)
	// A cache of its own that shares the base, the kit and the images,
	// not the root filesystems.
	shared, own := cache.DefaultDir(), t.TempDir()
	for _, kind := range []string{"base", "kit", "images"} {
		if err := os.Symlink(filepath.Join(shared, kind), filepath.Join(own, kind)); err != nil {
			t.Fatal(err)
		}
	}
	second, third := t.TempDir(), t.TempDir()
	for _, b := range []struct{ out, cacheDir, log string }{{second, own, ""}, {third, own, "root filesystem found in cache"}} {
		r := run(t, "build", "-p", "profiles/test.yaml", "-o", b.out, "--cache-dir", b.cacheDir)
		if r.code != 0 {
			t.Fatalf("build into %s exited %d:\n%s", b.out, r.code, r.stderr)
		}
		if found := strings.Contains(r.stderr, "root filesystem found in cache"); found != (b.log != "") {
			t.Errorf("build into %s: root filesystem from the cache: %v, want %v\n%s", b.out, found, b.log != "", tail(r.stderr, 3000))
		}
	}
	for _, name := range []string{"test.raw", "test.manifest.json"} {
		want := sha256File(t, filepath.Join(first, name))
		t.Logf("%s: %s", name, want)
		for _, dir := range []string{second, third} {
			if got := sha256File(t, filepath.Join(dir, name)); got != want {
				t.Errorf("%s differs between two builds: %s and %s (%s)", name, want, got, dir)
			}
		}
	}
	entries, err := os.ReadDir(second)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 9 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("output folder holds %v, want exactly the eight formats and the manifest", names)
	}
}
