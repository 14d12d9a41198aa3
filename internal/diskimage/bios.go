package diskimage

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nodebake/nodebake/internal/command"
)

// SYSLINUX from Debian's syslinux (the installer, which writes through
// mtools) and syslinux-common (the MBR code).
const (
	gptMBR = "/usr/lib/syslinux/mbr/gptmbr.bin"
	// mbrCode is the boot code area of the protective MBR, before the
	// disk signature and the partition table, which stay as they are.
	mbrCode = 440
	// attrLegacyBootable is GPT attribute bit 2, "legacy BIOS bootable":
	// gptmbr.bin boots the partition that has it.
	attrLegacyBootable = 1 << 2
)

// HostFiles are the host's files a disk holds as they are.
func HostFiles() []string { return []string{gptMBR} }

// installBIOSBoot makes the disk boot on BIOS firmware too: SYSLINUX's
// boot sector and ldlinux.sys on the ESP's FAT (in dir, which holds its
// configuration), and gptmbr.bin in the protective MBR, which chains to
// the partition marked legacy BIOS bootable. mtools stamps what it
// writes with SOURCE_DATE_EPOCH, so the disk stays reproducible.
func installBIOSBoot(ctx context.Context, run *command.Runner, dst string, l Layout, dir string, epoch time.Time) error {
	code, err := os.ReadFile(gptMBR)
	if err != nil {
		return fmt.Errorf("SYSLINUX's GPT MBR (package syslinux-common): %w", err)
	}
	if len(code) != mbrCode {
		return fmt.Errorf("%s: %d bytes, want the %d of an MBR's boot code", gptMBR, len(code), mbrCode)
	}
	esp := l.Part(RoleESP).Start
	if _, err := run.Run(ctx, command.Cmd{
		Name: "syslinux", Args: []string{"--install", "--offset", strconv.FormatInt(esp, 10), "--directory", dir, dst},
		Env: []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(epoch.Unix(), 10)},
	}); err != nil {
		return fmt.Errorf("installing SYSLINUX on the ESP: %w", err)
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// The installer writes its boot code into the FAT's boot sector
	// only; its backup must match, or fsck.vfat reports the difference.
	bs := make([]byte, SectorSize)
	if _, err := f.ReadAt(bs, esp); err != nil {
		return err
	}
	backup := int64(binary.LittleEndian.Uint16(bs[50:]))
	if backup == 0 || backup == 0xffff {
		return fmt.Errorf("the ESP's FAT32 boot sector names no backup")
	}
	if _, err := f.WriteAt(bs, esp+backup*SectorSize); err != nil {
		return err
	}
	if _, err := f.WriteAt(code, 0); err != nil {
		return err
	}
	return f.Close()
}
