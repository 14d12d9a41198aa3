package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRebuildIsBitForBitIdentical builds the test profile a second time,
// from the same cached base, and compares the raw images and manifests;
// the manifests list every output's sha256, so every format is compared.
func TestRebuildIsBitForBitIdentical(t *testing.T) {
	first := testImage(t)
	second := t.TempDir()
	if r := run(t, "build", "-p", "profiles/test.yaml", "-o", second); r.code != 0 {
		t.Fatalf("second build exited %d:\n%s", r.code, r.stderr)
	}
	for _, name := range []string{"test.raw", "test.manifest.json"} {
		a, b := sha256File(t, filepath.Join(first, name)), sha256File(t, filepath.Join(second, name))
		t.Logf("%s: %s", name, a)
		if a != b {
			t.Errorf("%s differs between two builds: %s and %s", name, a, b)
		}
	}
	entries, err := os.ReadDir(second)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 7 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("output folder holds %v, want exactly the six formats and the manifest", names)
	}
}
