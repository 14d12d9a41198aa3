package bootloader

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fields reads "key value" lines, keys folded to lower case, indentation
// dropped: a loader entry's and a SYSLINUX label's.
func fields(data []byte) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		out[strings.ToLower(k)] = v
	}
	return out
}

// TestBothFirmwaresBootOneEntry: systemd-boot's entry and SYSLINUX's
// label boot the same kernel and initramfs with the same command line.
func TestBothFirmwaresBootOneEntry(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{efiBinary, "vmlinuz", "initrd.img"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644)
	}
	files, err := Files(Config{
		Title: "nodebake test", RootDir: dir, Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
		RootUUID: "r-uuid", StateUUID: "s-uuid", Cmdline: []string{"console=ttyS0,115200"},
	})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string][]byte{}
	for _, f := range files {
		byPath[f.Path] = f.Data
	}
	entry, syslinux := fields(byPath[EntryPath]), fields(byPath[SyslinuxDir+"/syslinux.cfg"])
	if entry["options"] == "" || !strings.Contains(entry["options"], "root=PARTUUID=r-uuid") {
		t.Fatalf("loader entry options %q", entry["options"])
	}
	for _, pair := range [][2]string{{"linux", "linux"}, {"initrd", "initrd"}, {"options", "append"}} {
		if entry[pair[0]] != syslinux[pair[1]] {
			t.Errorf("systemd-boot %s %q, SYSLINUX %s %q", pair[0], entry[pair[0]], pair[1], syslinux[pair[1]])
		}
	}
	for _, p := range []string{entry["linux"], entry["initrd"]} {
		if byPath[p] == nil {
			t.Errorf("%s is not on the ESP", p)
		}
	}
	if syslinux["default"] != "nodebake" || syslinux["timeout"] != "0" {
		t.Errorf("SYSLINUX does not boot its one label at once:\n%s", byPath[SyslinuxDir+"/syslinux.cfg"])
	}
}
