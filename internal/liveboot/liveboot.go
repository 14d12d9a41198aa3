// Package liveboot writes an image's live outputs, which boot the same
// kernel, initramfs and read-only root as its disk, without writing the
// image to a disk first:
//   - a hybrid ISO (xorriso): El Torito for BIOS (ISOLINUX) and UEFI
//     (systemd-boot in a FAT image), and an MBR and GPT that make the same
//     file boot from a USB stick;
//   - a PXE folder: the kernel, the initramfs, the two squashfs files and
//     an iPXE script, to serve over HTTP or HTTPS.
//
// The initramfs (rootfs's nodebake-live) finds the squashfs files on the
// boot medium or fetches them, checks each against the sha256 on the
// kernel command line, and boots the root; nodebake-state copies the
// state seed onto a new state, on a disk or in memory.
package liveboot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nodebake/nodebake/internal/bootloader"
	"github.com/nodebake/nodebake/internal/cache"
)

// Media are what a live boot is made of.
type Media struct {
	// Boot is the disk's boot configuration; Live is set here.
	Boot bootloader.Config
	// Root and State are the root's squashfs and its state seed's.
	Root, State string
	// Seed makes the ISO's volume ID, the same for the same seed: the
	// profile's digest.
	Seed string
}

// live is m's boot configuration for a live boot from source.
func (m Media) live(source string) (bootloader.Config, error) {
	root, err := cache.FileSHA256(m.Root)
	if err != nil {
		return bootloader.Config{}, fmt.Errorf("the root filesystem: %w", err)
	}
	state, err := cache.FileSHA256(m.State)
	if err != nil {
		return bootloader.Config{}, fmt.Errorf("the state seed: %w", err)
	}
	c := m.Boot
	c.Live = &bootloader.Live{Source: source, RootSHA256: root, StateSHA256: state}
	return c, nil
}

// VolumeID is the ISO's volume ID, which the initramfs finds its medium
// by: short enough for ISO 9660's 32 characters, and of the characters
// it allows.
func (m Media) VolumeID() string {
	id := m.Seed
	if len(id) > 8 {
		id = id[:8]
	}
	return "NODEBAKE_" + strings.ToUpper(id)
}

// writeFile writes data to dir/name, making its folders.
func writeFile(dir, name string, data []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// copyFile copies src to dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", filepath.Base(src), err)
	}
	return out.Close()
}
