package liveboot

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nodebake/nodebake/internal/bootloader"
)

// Names in a PXE folder.
const (
	PXEKernel = "vmlinuz"
	PXEInitrd = "initrd.img"
	PXEScript = "boot.ipxe"
)

// WritePXE writes m as a PXE folder at dst (which must not exist): the
// kernel, the initramfs, the root and state seed squashfs files, and the
// iPXE script that boots them with their sha256 on the command line.
func WritePXE(dst string, m Media) error {
	c, err := m.live("")
	if err != nil {
		return err
	}
	files, err := bootloader.Files(c)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	out := map[string][]byte{PXEScript: bootloader.IPXE(c)}
	for _, f := range files {
		switch f.Path {
		case bootloader.KernelPath:
			out[PXEKernel] = f.Data
		case bootloader.InitrdPath:
			out[PXEInitrd] = f.Data
		}
	}
	for name, data := range out {
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			return err
		}
	}
	for name, src := range map[string]string{bootloader.RootImage: m.Root, bootloader.StateSeed: m.State} {
		if err := copyFile(src, filepath.Join(dst, name)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// Files are the names in a PXE folder, in order.
func Files() []string {
	return []string{PXEScript, PXEKernel, PXEInitrd, bootloader.RootImage, bootloader.StateSeed}
}
