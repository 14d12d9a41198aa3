// Package bootloader makes the contents of the EFI system partition:
// systemd-boot from the image's own systemd-boot-efi package, the kernel,
// the initramfs and one loader entry that finds the root by PARTUUID; and
// the same entry for SYSLINUX, which boots the same files on BIOS
// firmware (package diskimage installs it).
package bootloader

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File is one file on the ESP.
type File struct {
	Path string
	Data []byte
}

// Config is what the loader entry boots.
type Config struct {
	Title     string
	RootDir   string // the image's root tree, for systemd-boot's binary
	Kernel    string // host path
	Initrd    string // host path
	RootUUID  string // PARTUUID of root slot A
	StateUUID string // PARTUUID of the state partition
	Cmdline   []string
	// Live, when set, boots the live media's squashfs files instead of
	// the disk's partitions (RootUUID and StateUUID are not used).
	Live *Live
}

// Live is where a live boot finds the image's two squashfs files: the
// root, and the seed of its state. The initramfs (nodebake-live) checks
// each against its sha256 before it uses it.
type Live struct {
	// Source is the boot medium (LABEL=VOLID, an ISO's volume ID) or a
	// folder URL (http or https, ending in /) to fetch them from.
	Source      string
	RootSHA256  string
	StateSHA256 string
	// Network configures the network in the initramfs (ip=dhcp), for a
	// Source that is a URL.
	Network bool
}

// Paths on the ESP (and a live medium).
const (
	efiBinary  = "usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	KernelPath = "/nodebake/vmlinuz"
	InitrdPath = "/nodebake/initrd.img"
	entryName  = "nodebake.conf"
)

// SyslinuxDir is the ESP folder SYSLINUX is installed in and reads its
// configuration from.
const SyslinuxDir = "/syslinux"

// Cmdline is the full kernel command line: the root and state partitions
// by PARTUUID, never by device name, then the profile's arguments.
// systemd's GPT auto-discovery is off: the initramfs mounts what the node
// needs, and on trixie the generator would try to automount the ESP on a
// read-only root.
//
// A live boot's root is the squashfs the initramfs attached as
// /dev/loop0, and its state is whatever nodebake-state finds (a disk
// labelled nodebake-live, or memory) unless nodebake.state= names one.
func Cmdline(c Config) string {
	args := []string{
		"root=PARTUUID=" + c.RootUUID, "rootfstype=squashfs", "ro",
		"nodebake.state=PARTUUID=" + c.StateUUID, "systemd.gpt_auto=0",
	}
	if l := c.Live; l != nil {
		args = []string{
			"root=/dev/loop0", "rootfstype=squashfs", "ro",
			"nodebake.live=" + l.Source, "nodebake.live.sha256=" + l.RootSHA256,
			"nodebake.live.state.sha256=" + l.StateSHA256, "systemd.gpt_auto=0",
		}
		if l.Network {
			args = append(args, "ip=dhcp")
		}
	}
	return strings.Join(append(args, c.Cmdline...), " ")
}

// Files returns every file of the ESP.
func Files(c Config) ([]File, error) {
	read := func(p string) ([]byte, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		return b, nil
	}
	boot, err := read(filepath.Join(c.RootDir, efiBinary))
	if err != nil {
		return nil, fmt.Errorf("systemd-boot (package systemd-boot-efi): %w", err)
	}
	kernel, err := read(c.Kernel)
	if err != nil {
		return nil, err
	}
	initrd, err := read(c.Initrd)
	if err != nil {
		return nil, err
	}
	loader := "default " + entryName + "\ntimeout 0\neditor no\n"
	// One kernel, one initramfs, one command line, for both firmwares.
	options := Cmdline(c)
	entry := fmt.Sprintf("title %s\nlinux %s\ninitrd %s\noptions %s\n", c.Title, KernelPath, InitrdPath, options)
	syslinux := fmt.Sprintf("SERIAL 0 115200\nDEFAULT nodebake\nPROMPT 0\nTIMEOUT 0\nLABEL nodebake\n  MENU LABEL %s\n  LINUX %s\n  INITRD %s\n  APPEND %s\n",
		c.Title, KernelPath, InitrdPath, options)
	return []File{
		{Path: "/EFI/BOOT/BOOTX64.EFI", Data: boot},
		{Path: "/EFI/systemd/systemd-bootx64.efi", Data: boot},
		{Path: "/loader/loader.conf", Data: []byte(loader)},
		{Path: EntryPath, Data: []byte(entry)},
		{Path: SyslinuxDir + "/syslinux.cfg", Data: []byte(syslinux)},
		{Path: KernelPath, Data: kernel},
		{Path: InitrdPath, Data: initrd},
	}, nil
}

// Paths of a live boot's files, on its medium and in its PXE folder.
const (
	LiveDir   = "/nodebake"
	RootImage = "root.squashfs"
	StateSeed = "state.squashfs"
	// IPXEBaseURL is the iPXE setting a PXE boot's script reads its
	// folder's URL from.
	IPXEBaseURL = "base-url"
	// IPXEArgs is the iPXE setting a PXE boot's script appends to the
	// kernel command line, such as nodebake.state=/dev/sda.
	IPXEArgs = "nodebake-args"
)

// IPXE is the iPXE script of a PXE boot: it boots the kernel, the
// initramfs and the command line the other loaders boot, fetched from
// the folder at ${base-url}, which the site's own script sets (iPXE
// before 2024 has no setting for a script's own folder), followed by
// ${nodebake-args} when that script sets it. c.Live.Source is replaced by
// ${base-url}.
func IPXE(c Config) []byte {
	live := *c.Live
	live.Source, live.Network = "${"+IPXEBaseURL+"}", true
	c.Live = &live
	return []byte(fmt.Sprintf(`#!ipxe
# %[1]s: a PXE boot. Serve this folder over HTTP or HTTPS, then chain
# this script from one that sets %[2]s to the folder's URL, ending in /:
#   set %[2]s http://boot.example/nodebake/
#   chain ${%[2]s}boot.ipxe
# It may also set %[4]s to more kernel arguments, such as
# nodebake.state=/dev/sda (a disk for the node's state: formatted when
# it holds no filesystem; without one, the state is in memory).
isset ${%[2]s} || goto no-base-url
kernel ${%[2]s}vmlinuz initrd=initrd.img %[3]s ${%[4]s}
initrd ${%[2]s}initrd.img
boot
:no-base-url
echo nodebake: set %[2]s to the URL of this script's folder, ending in /
exit 1
`, c.Title, IPXEBaseURL, Cmdline(c), IPXEArgs))
}

// EntryPath is where the loader entry is on the ESP.
const EntryPath = "/loader/entries/" + entryName
