package kit

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestSyncCNI runs the baked sync-cni, which makes containerd's CNI
// folder a copy of /etc/cni/net.d: a new config is copied, an unchanged
// one left as it is, a changed one replaced, a removed one removed, a
// folder skipped, and no file left half-written; a missing source
// empties the copy.
func TestSyncCNI(t *testing.T) {
	script, err := files.ReadFile("files/sync-cni")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	prog := filepath.Join(dir, "sync-cni")
	if err := os.WriteFile(prog, script, 0o755); err != nil {
		t.Fatal(err)
	}
	src, dst := filepath.Join(dir, "etc"), filepath.Join(dir, "run", "net.d")
	sync := func() {
		t.Helper()
		if out, err := exec.Command("sh", prog, src, dst).CombinedOutput(); err != nil {
			t.Fatalf("sync-cni: %v\n%s", err, out)
		}
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(want map[string]string) {
		t.Helper()
		entries, err := os.ReadDir(dst)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
			data, err := os.ReadFile(filepath.Join(dst, e.Name()))
			if err != nil || string(data) != want[e.Name()] {
				t.Errorf("%s holds %q (%v), want %q", e.Name(), data, err, want[e.Name()])
			}
		}
		var names []string
		for n := range want {
			names = append(names, n)
		}
		slices.Sort(names)
		if !slices.Equal(got, names) {
			t.Errorf("the copy holds %v, want %v", got, names)
		}
	}

	if err := os.MkdirAll(filepath.Join(src, "sub.conflist"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("10-flannel.conflist", `{"name": "cbr0"}`)
	write("99-other.conf", `{"name": "other"}`)
	sync()
	expect(map[string]string{"10-flannel.conflist": `{"name": "cbr0"}`, "99-other.conf": `{"name": "other"}`})

	write("10-flannel.conflist", `{"name": "cbr1"}`)
	if err := os.Remove(filepath.Join(src, "99-other.conf")); err != nil {
		t.Fatal(err)
	}
	write("20-new.conflist", `{"name": "new"}`)
	write("30-same.conf", `{"name": "same"}`)
	sync()
	expect(map[string]string{"10-flannel.conflist": `{"name": "cbr1"}`, "20-new.conflist": `{"name": "new"}`, "30-same.conf": `{"name": "same"}`})
	// Unchanged: not written again.
	same, old := filepath.Join(dst, "30-same.conf"), time.Now().Add(-time.Hour)
	if err := os.Chtimes(same, old, old); err != nil {
		t.Fatal(err)
	}
	sync()
	if fi, err := os.Stat(same); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("an unchanged config was written again: %v", err)
	}

	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	sync()
	expect(map[string]string{})

	if out, err := exec.Command("sh", prog, src).CombinedOutput(); err == nil {
		t.Errorf("one argument was taken: %s", out)
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("one argument: %v, want exit code 2", err)
	}
}
