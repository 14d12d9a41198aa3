package workdir

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestSweepRemovesOnlyWhatNoProcessHolds(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	live, err := New("nodebake-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	// A build killed half way: its folder, with a file in a read-only
	// folder, and its lock no longer held.
	dead, err := New("nodebake-test-")
	if err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(dead.Path, "mod")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ro, "go.mod"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	os.Chmod(ro, 0o555)
	dead.lock.Close()
	// Folders without a lock: one just made (left), one old (removed).
	young := filepath.Join(os.TempDir(), "nodebake-test-young")
	old := filepath.Join(os.TempDir(), "nodebake-test-old")
	for _, p := range []string{young, old} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	longAgo := time.Now().Add(-2 * unlockedGrace)
	os.Chtimes(old, longAgo, longAgo)
	other := filepath.Join(os.TempDir(), "other-old")
	os.Mkdir(other, 0o700)
	os.Chtimes(other, longAgo, longAgo)

	removed := Sweep(os.TempDir(), "nodebake-test-")
	slices.Sort(removed)
	want := []string{dead.Path, old}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	for _, p := range []string{live.Path, young, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v, want it kept", p, err)
		}
	}
	for _, p := range want {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want it gone", p, err)
		}
	}
}

func TestNewSweepsAndRemoveDeletes(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dead, err := New("nodebake-test-")
	if err != nil {
		t.Fatal(err)
	}
	dead.lock.Close()
	d, err := New("nodebake-test-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead.Path); !os.IsNotExist(err) {
		t.Errorf("the dead folder: %v, want it swept by New", err)
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Path); !os.IsNotExist(err) {
		t.Errorf("after Remove: %v", err)
	}
}
