package liveboot

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nodebake/nodebake/internal/bootloader"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskimage"
)

// The ISO's BIOS boot code, from Debian's isolinux (ISOLINUX and the
// isohybrid MBR) and syslinux-common (ldlinux.c32, its core module).
const (
	isolinuxBin  = "/usr/lib/ISOLINUX/isolinux.bin"
	isohybridMBR = "/usr/lib/ISOLINUX/isohdpfx.bin"
	ldlinux      = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
	// efiImage is the El Torito EFI boot image: a FAT filesystem with
	// the ESP's files, which UEFI firmware boots systemd-boot from.
	efiImage = "efiboot.img"
)

// HostFiles are the host's files an ISO holds as they are.
func HostFiles() []string { return []string{isolinuxBin, isohybridMBR, ldlinux} }

// WriteISO writes m as a hybrid ISO at dst: the ESP's files (the same
// loader entry for systemd-boot and ISOLINUX, whose command line finds
// the medium by its volume ID) and the two squashfs files under
// /nodebake. dst is a temporary path the caller renames into place.
func WriteISO(ctx context.Context, run *command.Runner, dst string, m Media, epoch time.Time) error {
	for _, f := range []string{isolinuxBin, isohybridMBR, ldlinux} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("ISOLINUX (packages isolinux and syslinux-common): %w", err)
		}
	}
	c, err := m.live("LABEL=" + m.VolumeID())
	if err != nil {
		return err
	}
	files, err := bootloader.Files(c)
	if err != nil {
		return err
	}
	tree := dst + ".d"
	os.RemoveAll(tree)
	defer os.RemoveAll(tree)
	esp := make([]diskimage.ESPFile, 0, len(files))
	for _, f := range files {
		if err := writeFile(tree, f.Path, f.Data); err != nil {
			return err
		}
		esp = append(esp, diskimage.ESPFile{Path: f.Path, Data: f.Data})
	}
	if err := diskimage.WriteFAT(filepath.Join(tree, efiImage), "NODEBAKE", esp, epoch); err != nil {
		return fmt.Errorf("the EFI boot image: %w", err)
	}
	// ISOLINUX reads the SYSLINUX configuration in its own folder.
	dir := bootloader.SyslinuxDir[1:]
	args := []string{
		"-as", "mkisofs", "-quiet", "-output", dst,
		"-volid", m.VolumeID(), "-rational-rock", "-iso-level", "3", "-graft-points",
		// SOURCE_DATE_EPOCH alone keeps each file's time from the disk.
		"--set_all_file_dates", epoch.UTC().Format("Jan _2 15:04:05 UTC 2006"),
		// BIOS: ISOLINUX from the CD's El Torito catalog, or from the
		// MBR on a USB stick.
		"-eltorito-boot", path.Join(dir, "isolinux.bin"), "-eltorito-catalog", path.Join(dir, "boot.cat"),
		"-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
		"-isohybrid-mbr", isohybridMBR,
		// UEFI: the FAT image, from El Torito or a GPT partition.
		"-eltorito-alt-boot", "-e", efiImage, "-no-emul-boot", "-isohybrid-gpt-basdat",
		tree,
		"/" + path.Join(dir, "isolinux.bin") + "=" + isolinuxBin,
		"/" + path.Join(dir, "ldlinux.c32") + "=" + ldlinux,
		path.Join(bootloader.LiveDir, bootloader.RootImage) + "=" + m.Root,
		path.Join(bootloader.LiveDir, bootloader.StateSeed) + "=" + m.State,
	}
	// xorriso takes the volume's dates, the GPT's GUIDs and the boot
	// catalog's time from SOURCE_DATE_EPOCH.
	if _, err := run.Run(ctx, command.Cmd{
		Name: "xorriso", Args: args,
		Env: []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(epoch.Unix(), 10)},
	}); err != nil {
		return fmt.Errorf("xorriso: %w", err)
	}
	return nil
}
