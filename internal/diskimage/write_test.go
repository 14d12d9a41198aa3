package diskimage

import (
	"context"
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
