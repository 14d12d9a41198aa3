package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodebake/nodebake/internal/cache"
)

// TestRebuildIsBitForBitIdentical builds the test profile a second time,
// from the same cached base and kit but with no cached root filesystem
// and no cached build, so mksquashfs compresses the root again; a third
// time, which publishes the build the cache now holds; and a fourth with
// that build removed from the cache, which runs every step with the root
// filesystem the cache holds. It compares the raw images and manifests of
// all four. The manifests list every output's sha256, so every format is
// compared: the third build's conversions ran again, and its ISO and PXE
// folder came from the cache.
func TestRebuildIsBitForBitIdentical(t *testing.T) {
	first := testImage(t)
	// A cache of its own that shares the base, the kit and the images,
	// not the root filesystems nor the builds.
	shared, own := cache.DefaultDir(), t.TempDir()
	for _, kind := range []string{"base", "kit", "images"} {
		if err := os.Symlink(filepath.Join(shared, kind), filepath.Join(own, kind)); err != nil {
			t.Fatal(err)
		}
	}
	const (
		builtRoot  = "root filesystem found in cache"
		cachedHit  = "build found in cache"
		noCacheLog = ""
	)
	second, third, fourth := t.TempDir(), t.TempDir(), t.TempDir()
	for _, b := range []struct {
		out, log string
		before   func()
	}{
		{second, noCacheLog, nil},
		{third, cachedHit, nil},
		{fourth, builtRoot, func() { os.RemoveAll(filepath.Join(own, "builds")) }},
	} {
		if b.before != nil {
			b.before()
		}
		r := run(t, "build", "-p", "profiles/test.yaml", "-o", b.out, "--cache-dir", own)
		if r.code != 0 {
			t.Fatalf("build into %s exited %d:\n%s", b.out, r.code, r.stderr)
		}
		for _, log := range []string{builtRoot, cachedHit} {
			if found := strings.Contains(r.stderr, log); found != (log == b.log) {
				t.Errorf("build into %s: %q logged: %v, want %v\n%s", b.out, log, found, log == b.log, tail(r.stderr, 3000))
			}
		}
		t.Logf("build into %s: %s", b.out, lastLine(r.stderr))
	}
	for _, name := range []string{"test.raw", "test.manifest.json"} {
		want := sha256File(t, filepath.Join(first, name))
		t.Logf("%s: %s", name, want)
		for _, dir := range []string{second, third, fourth} {
			if got := sha256File(t, filepath.Join(dir, name)); got != want {
				t.Errorf("%s differs between two builds: %s and %s (%s)", name, want, got, dir)
			}
		}
	}
	for _, dir := range []string{second, third} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 9 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("%s holds %v, want exactly the eight formats and the manifest", dir, names)
		}
	}
}

// lastLine is the last line of a command's output.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
