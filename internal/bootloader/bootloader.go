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
}

// Paths on the ESP.
const (
	efiBinary  = "usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	kernelPath = "/nodebake/vmlinuz"
	initrdPath = "/nodebake/initrd.img"
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
func Cmdline(c Config) string {
	args := []string{
		"root=PARTUUID=" + c.RootUUID, "rootfstype=squashfs", "ro",
		"nodebake.state=PARTUUID=" + c.StateUUID, "systemd.gpt_auto=0",
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
	entry := fmt.Sprintf("title %s\nlinux %s\ninitrd %s\noptions %s\n", c.Title, kernelPath, initrdPath, options)
	syslinux := fmt.Sprintf("SERIAL 0 115200\nDEFAULT nodebake\nPROMPT 0\nTIMEOUT 0\nLABEL nodebake\n  MENU LABEL %s\n  LINUX %s\n  INITRD %s\n  APPEND %s\n",
		c.Title, kernelPath, initrdPath, options)
	return []File{
		{Path: "/EFI/BOOT/BOOTX64.EFI", Data: boot},
		{Path: "/EFI/systemd/systemd-bootx64.efi", Data: boot},
		{Path: "/loader/loader.conf", Data: []byte(loader)},
		{Path: EntryPath, Data: []byte(entry)},
		{Path: SyslinuxDir + "/syslinux.cfg", Data: []byte(syslinux)},
		{Path: kernelPath, Data: kernel},
		{Path: initrdPath, Data: initrd},
	}, nil
}

// EntryPath is where the loader entry is on the ESP.
const EntryPath = "/loader/entries/" + entryName
