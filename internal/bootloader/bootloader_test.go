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

// bootFiles makes a root with systemd-boot, a kernel and an initramfs.
func bootFiles(t *testing.T) string {
	dir := t.TempDir()
	for _, p := range []string{efiBinary, "vmlinuz", "initrd.img"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644)
	}
	return dir
}

// TestBothFirmwaresBootOneEntry: systemd-boot's entry and SYSLINUX's
// label boot the same kernel and initramfs with the same command line.
func TestBothFirmwaresBootOneEntry(t *testing.T) {
	dir := bootFiles(t)
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

// TestLiveBootsOneCommandLine: a live boot's systemd-boot entry, SYSLINUX
// label and iPXE script boot the same command line, which names the
// live root and both sha256 sums and no disk partition; the iPXE one
// fetches from ${base-url} and configures the network.
func TestLiveBootsOneCommandLine(t *testing.T) {
	dir := bootFiles(t)
	c := Config{
		Title: "nodebake test", RootDir: dir, Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
		RootUUID: "r-uuid", StateUUID: "s-uuid", Cmdline: []string{"console=ttyS0,115200"},
		Live: &Live{Source: "LABEL=NODEBAKE_X", RootSHA256: "aaaa", StateSHA256: "bbbb"},
	}
	files, err := Files(c)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string][]byte{}
	for _, f := range files {
		byPath[f.Path] = f.Data
	}
	entry, syslinux := fields(byPath[EntryPath]), fields(byPath[SyslinuxDir+"/syslinux.cfg"])
	want := "root=/dev/loop0 rootfstype=squashfs ro nodebake.live=LABEL=NODEBAKE_X nodebake.live.sha256=aaaa nodebake.live.state.sha256=bbbb systemd.gpt_auto=0 console=ttyS0,115200"
	if entry["options"] != want || syslinux["append"] != want {
		t.Errorf("systemd-boot %q, SYSLINUX %q, want %q", entry["options"], syslinux["append"], want)
	}
	script := string(IPXE(c))
	if !strings.HasPrefix(script, "#!ipxe\n") {
		t.Fatalf("not an iPXE script:\n%s", script)
	}
	var kernel string
	for _, l := range strings.Split(script, "\n") {
		if strings.HasPrefix(l, "kernel ") {
			kernel = l
		}
	}
	ipxeWant := "kernel ${base-url}vmlinuz initrd=initrd.img " + strings.Replace(want, "LABEL=NODEBAKE_X", "${base-url}", 1)
	ipxeWant = strings.Replace(ipxeWant, "systemd.gpt_auto=0", "systemd.gpt_auto=0 ip=dhcp", 1) + " ${nodebake-args}"
	if kernel != ipxeWant {
		t.Errorf("iPXE boots\n%s\nwant\n%s", kernel, ipxeWant)
	}
	if !strings.Contains(script, "initrd ${base-url}initrd.img\n") || !strings.Contains(script, "isset ${base-url} || goto no-base-url") {
		t.Errorf("iPXE script:\n%s", script)
	}
	if c.Live.Source != "LABEL=NODEBAKE_X" || c.Live.Network {
		t.Errorf("IPXE changed its caller's config: %+v", c.Live)
	}
}
