package liveboot

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/bootloader"
	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
)

var epoch = time.Unix(1767225600, 0).UTC()

// media makes a small live boot: fake boot files and two real squashfs
// files, made by mksquashfs.
func media(t *testing.T) Media {
	t.Helper()
	dir := t.TempDir()
	for p, data := range map[string]string{
		"root/usr/lib/systemd/boot/efi/systemd-bootx64.efi": "systemd-boot",
		"vmlinuz":             "kernel",
		"initrd.img":          "initramfs",
		"tree/root/etc/hello": "root",
		"tree/state/lib/x":    "state",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"root", "state"} {
		out, err := exec.Command("mksquashfs", filepath.Join(dir, "tree", name), filepath.Join(dir, name+".sqfs"), "-quiet", "-no-progress", "-noappend").CombinedOutput()
		if err != nil {
			t.Fatalf("mksquashfs: %v\n%s", err, out)
		}
	}
	return Media{
		Boot: bootloader.Config{
			Title: "nodebake test", RootDir: filepath.Join(dir, "root"),
			Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
			Cmdline: []string{"console=ttyS0,115200"},
		},
		Root: filepath.Join(dir, "root.sqfs"), State: filepath.Join(dir, "state.sqfs"),
		Seed: "0123456789abcdef",
	}
}

func xorriso(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("xorriso", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestISO writes an ISO and reads it back with xorriso: an El Torito
// catalog with a BIOS and a UEFI image, an MBR and a GPT for USB sticks,
// the squashfs files as they were, a SYSLINUX configuration that finds
// the medium by its volume ID and checks both sums, and an EFI image
// that fsck.vfat passes. A second write is the same, byte for byte.
func TestISO(t *testing.T) {
	if !command.Available("xorriso") {
		t.Fatal("xorriso is not installed: ci/deps.sh installs it")
	}
	m := media(t)
	dir := t.TempDir()
	iso := filepath.Join(dir, "a.iso")
	run := &command.Runner{}
	if err := WriteISO(context.Background(), run, iso, m, epoch); err != nil {
		t.Fatal(err)
	}
	report := xorriso(t, "-indev", iso, "-report_el_torito", "plain", "-report_system_area", "plain")
	for _, want := range []string{"El Torito boot img :   1  BIOS", "El Torito boot img :   2  UEFI", "Volume id    : 'NODEBAKE_01234567'", "GPT partition path :   2  /efiboot.img"} {
		if !strings.Contains(report, want) {
			t.Errorf("xorriso's report has no %q:\n%s", want, report)
		}
	}
	ex := filepath.Join(dir, "x")
	xorriso(t, "-osirrox", "on", "-indev", iso, "-extract", "/", ex)
	for name, src := range map[string]string{"nodebake/root.squashfs": m.Root, "nodebake/state.squashfs": m.State, "nodebake/vmlinuz": m.Boot.Kernel} {
		a, _ := os.ReadFile(filepath.Join(ex, name))
		b, _ := os.ReadFile(src)
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s on the ISO is not %s", name, src)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(ex, "syslinux", "syslinux.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	rootSum, _ := cache.FileSHA256(m.Root)
	stateSum, _ := cache.FileSHA256(m.State)
	for _, want := range []string{"nodebake.live=LABEL=NODEBAKE_01234567 ", "nodebake.live.sha256=" + rootSum, "nodebake.live.state.sha256=" + stateSum, "root=/dev/loop0 "} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("syslinux.cfg has no %q:\n%s", want, cfg)
		}
	}
	if _, err := os.Stat(filepath.Join(ex, "syslinux", "ldlinux.c32")); err != nil {
		t.Error("no ldlinux.c32 beside isolinux.bin")
	}
	if out, err := exec.Command("fsck.vfat", "-n", filepath.Join(ex, "efiboot.img")).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat efiboot.img: %v\n%s", err, out)
	}
	// Again, a second later and with every input file newer: the files'
	// own times must not reach the ISO.
	time.Sleep(1100 * time.Millisecond)
	for _, p := range []string{m.Root, m.State, m.Boot.Kernel} {
		now := time.Now()
		os.Chtimes(p, now, now)
	}
	again := filepath.Join(dir, "b.iso")
	if err := WriteISO(context.Background(), run, again, m, epoch); err != nil {
		t.Fatal(err)
	}
	if a, b := sum(t, iso), sum(t, again); a != b {
		t.Errorf("two writes differ: %s, %s", a, b)
	}
}

// TestPXE writes a PXE folder: every file, the squashfs files as they
// were, and a script that checks their sums.
func TestPXE(t *testing.T) {
	m := media(t)
	dst := filepath.Join(t.TempDir(), "x.pxe")
	if err := WritePXE(dst, m); err != nil {
		t.Fatal(err)
	}
	for _, name := range Files() {
		if _, err := os.Stat(filepath.Join(dst, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if a, b := sum(t, filepath.Join(dst, bootloader.RootImage)), sum(t, m.Root); a != b {
		t.Errorf("root.squashfs is not the root's squashfs")
	}
	script, _ := os.ReadFile(filepath.Join(dst, PXEScript))
	stateSum := sum(t, m.State)
	if !strings.Contains(string(script), "nodebake.live.sha256="+sum(t, m.Root)) || !strings.Contains(string(script), "nodebake.live.state.sha256="+stateSum) {
		t.Errorf("boot.ipxe does not check both sums:\n%s", script)
	}
	if err := WritePXE(dst, m); err == nil {
		t.Error("WritePXE wrote over an existing folder")
	}
}

func sum(t *testing.T, path string) string {
	t.Helper()
	s, err := cache.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
