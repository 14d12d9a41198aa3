package diskimage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/command"
)

// TestSmallestESP writes a disk whose ESP has the profile's smallest size,
// where go-diskfs's FAT has room for fewer entries than the partition has
// clusters, and checks the ESP with fsck.vfat.
func TestSmallestESP(t *testing.T) {
	dir := t.TempDir()
	root, state := filepath.Join(dir, "root"), filepath.Join(dir, "state")
	for _, d := range []string{root, state} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "disk.raw")
	l := Plan("small", 64<<20, 16<<20, 16<<20)
	err := Write(context.Background(), &command.Runner{}, img, l, Contents{
		RootDir: root, StateDir: state, Epoch: time.Unix(1700000000, 0),
		ESP: []ESPFile{{Path: "/EFI/BOOT/BOOTX64.EFI", Data: make([]byte, 1<<20)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	esp := l.Part(RoleESP)
	part := filepath.Join(dir, "esp.fat")
	if out, err := exec.Command("dd", "if="+img, "of="+part, "bs=1M", "skip="+itoa(esp.Start>>20), "count="+itoa(esp.Size>>20)).CombinedOutput(); err != nil {
		t.Fatalf("dd: %v\n%s", err, out)
	}
	if out, err := exec.Command("fsck.vfat", "-n", part).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat: %v\n%s", err, out)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestReadIsBounded reads a file of an image that claims more than the
// reader allows, as a hostile image's 2 GiB os-release would: refused
// before it is read.
func TestReadIsBounded(t *testing.T) {
	dir := t.TempDir()
	root, state := filepath.Join(dir, "root"), filepath.Join(dir, "state")
	for _, d := range []string{filepath.Join(root, "usr/lib"), state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	big := filepath.Join(root, "usr/lib/os-release")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 256<<20); err != nil { // sparse
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/lib/small"), []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "disk.raw")
	if err := Write(context.Background(), &command.Runner{}, img, Plan("bounded", 64<<20, 16<<20, 16<<20), Contents{
		RootDir: root, StateDir: state, Epoch: time.Unix(1700000000, 0),
	}); err != nil {
		t.Fatal(err)
	}
	d, err := Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.ReadRootFile("/usr/lib/os-release", 1<<20); !errors.Is(err, ErrFileTooLarge) {
		t.Errorf("reading 256 MiB with a 1 MiB limit: %v, want %v", err, ErrFileTooLarge)
	}
	if got, err := d.ReadRootFile("/usr/lib/small", 2); err != nil || string(got) != "ok" {
		t.Errorf("reading a file of exactly the limit: %q, %v", got, err)
	}
	if _, err := d.ReadRootFile("/usr/lib/small", 1); !errors.Is(err, ErrFileTooLarge) {
		t.Errorf("reading 2 bytes with a 1-byte limit: %v", err)
	}
}
