package containerdroot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/command"
)

// TestPrepareWhenContainerdDoesNotStart gives Prepare a "containerd" that
// exits at once: it must say so, within seconds, and leave neither dst
// nor its work folder behind.
func TestPrepareWhenContainerdDoesNotStart(t *testing.T) {
	falseBin := "/bin/false"
	if _, err := os.Stat(falseBin); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dst := filepath.Join(dir, "lib", "containerd")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	err := Prepare(ctx, &command.Runner{}, dst, Request{Containerd: falseBin, Ctr: falseBin, Archives: []string{"/nonexistent.tar"}, Epoch: time.Unix(0, 0)})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("Prepare = %v, want ErrNotReady", err)
	}
	t.Log(err)
	entries, rerr := os.ReadDir(filepath.Dir(dst))
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, e := range entries {
		t.Errorf("Prepare left %s in %s", e.Name(), filepath.Dir(dst))
	}
}

// TestPrepareRefusesAnExistingRoot never writes over a root that is there.
func TestPrepareRefusesAnExistingRoot(t *testing.T) {
	dst := t.TempDir()
	err := Prepare(context.Background(), &command.Runner{}, dst, Request{})
	if !errors.Is(err, os.ErrExist) {
		t.Fatalf("Prepare over %s = %v, want os.ErrExist", dst, err)
	}
}
