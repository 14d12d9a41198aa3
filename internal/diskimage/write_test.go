package diskimage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
	// Every block of zeros is a hole: a sparse copy has the same data
	// runs.
	cp := filepath.Join(dir, "copy.raw")
	if out, err := exec.Command("cp", "--sparse=always", img, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	if got, want := dataRuns(t, img), dataRuns(t, cp); got != want || got == "" {
		t.Errorf("the disk's data runs differ from its sparse copy's: blocks of zeros are not holes\ndisk: %s\ncopy: %s", got, want)
	}
}

// dataRuns lists a file's runs of data as SEEK_DATA and SEEK_HOLE find
// them.
func dataRuns(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	var runs []string
	for pos := int64(0); pos < fi.Size(); {
		data, err := unix.Seek(int(f.Fd()), pos, unix.SEEK_DATA)
		if err != nil {
			break // ENXIO: holes to the end
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, fmt.Sprintf("%d-%d", data, hole))
		pos = hole
	}
	return strings.Join(runs, " ")
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

// TestBIOSBoot: a disk written for BIOS firmware too has gptmbr.bin as
// its MBR's code, the ESP marked legacy BIOS bootable, and SYSLINUX on
// the ESP; the GPT and the FAT stay clean to sgdisk and fsck.vfat, and
// two writes are bit for bit the same.
func TestBIOSBoot(t *testing.T) {
	write := func() (string, Layout) {
		dir := t.TempDir()
		root, state := filepath.Join(dir, "root"), filepath.Join(dir, "state")
		os.Mkdir(root, 0o755)
		os.Mkdir(state, 0o755)
		img := filepath.Join(dir, "disk.raw")
		l := Plan("bios", 64<<20, 16<<20, 16<<20)
		if err := Write(context.Background(), &command.Runner{}, img, l, Contents{
			RootDir: root, StateDir: state, Epoch: time.Unix(1700000000, 0), BIOSDir: "/syslinux",
			ESP: []ESPFile{{Path: "/syslinux/syslinux.cfg", Data: []byte("DEFAULT x\n")}},
		}); err != nil {
			t.Fatal(err)
		}
		return img, l
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return string(out)
	}
	img, l := write()
	data, _ := os.ReadFile(img)
	code, _ := os.ReadFile(gptMBR)
	if string(data[:mbrCode]) != string(code) {
		t.Error("the MBR's boot code is not gptmbr.bin")
	}
	if out := run("sgdisk", "-v", img); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	if out := run("sgdisk", "-i", "1", img); !strings.Contains(out, "Attribute flags: 0000000000000004") {
		t.Errorf("the ESP is not legacy BIOS bootable:\n%s", out)
	}
	esp := l.Part(RoleESP)
	part := filepath.Join(t.TempDir(), "esp.fat")
	os.WriteFile(part, data[esp.Start:esp.Start+esp.Size], 0o644)
	if out := run("fsck.vfat", "-n", part); strings.Contains(out, "differences") || strings.Contains(out, "Free cluster") {
		t.Errorf("fsck.vfat:\n%s", out)
	}
	if out := run("mdir", "-a", "-i", part, "::/syslinux"); !strings.Contains(out, "ldlinux  sys") || !strings.Contains(out, "syslinux.cfg") {
		t.Errorf("SYSLINUX is not on the ESP:\n%s", out)
	}
	again, _ := write()
	if sum(t, img) != sum(t, again) {
		t.Error("two writes of one disk differ")
	}
}

func sum(t *testing.T, p string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}
