// Package diskformat writes a built raw disk image in the formats that
// clouds and hypervisors import: qcow2, a fixed VHD (Azure), a
// stream-optimized VMDK and an OVA holding it (vSphere), and a gzipped
// GNU tar holding disk.raw (GCE). It also names the live formats (an ISO,
// a PXE folder), which package liveboot writes.
//
// qemu-img and GNU tar do the conversions, as they are the standard
// tools for them. Each output is reproducible: what those tools stamp with
// the time or a random number (the VHD footer's timestamp and UUID, the
// VMDK's content ID) is set from the build's epoch and seed instead.
package diskformat

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nodebake/nodebake/internal/command"
)

// Formats, as a profile names them.
const (
	Raw   = "raw"
	Qcow2 = "qcow2"
	VHD   = "vhd"
	VMDK  = "vmdk"
	OVA   = "ova"
	GCE   = "gce"
	// ISO and PXE boot the live media (package liveboot): made from the
	// root's squashfs, not converted from the raw disk.
	ISO = "iso"
	PXE = "pxe"
)

// Firmwares an OVA's descriptor can declare.
const (
	FirmwareEFI  = "efi"
	FirmwareBIOS = "bios"
)

// All lists every format, in the order a build writes them.
var All = []string{Raw, Qcow2, VHD, VMDK, OVA, GCE, ISO, PXE}

// Live reports whether format f boots the live media rather than a disk.
func Live(f string) bool { return f == ISO || f == PXE }

// Ext is the file name extension of format f's output (a PXE output is a
// folder).
func Ext(f string) string {
	if f == GCE {
		return ".tar.gz"
	}
	return "." + f
}

// Options are what an output carries besides the disk's contents.
type Options struct {
	// Name is the image's name: the OVA's virtual machine and the base
	// name of the files inside it.
	Name string
	// Epoch is the build's SOURCE_DATE_EPOCH, for every timestamp.
	Epoch time.Time
	// Seed makes the identifiers a format needs (a UUID, a content ID),
	// the same for the same seed: the profile's digest.
	Seed string
	// Firmware is what the OVA declares: FirmwareEFI when empty, or
	// FirmwareBIOS.
	Firmware string
	// VMDK is an already written stream-optimized VMDK of the same disk
	// for an OVA to hold; one is made when it is empty.
	VMDK string
}

// id is n bytes derived from the seed and what they identify.
func (o Options) id(what string, n int) []byte {
	sum := sha256.Sum256([]byte(o.Seed + "/" + what))
	return sum[:n]
}

// Write writes the raw image at raw to dst in format f (not raw itself).
// dst is a temporary path the caller renames into place; its folder
// must hold nothing else of the caller's named dst + ".d".
func Write(ctx context.Context, run *command.Runner, f, raw, dst string, o Options) error {
	switch f {
	case Qcow2:
		return convert(ctx, run, raw, dst, "qcow2")
	case VHD:
		return writeVHD(ctx, run, raw, dst, o)
	case VMDK:
		return writeVMDK(ctx, run, raw, dst, o)
	case OVA:
		return writeOVA(ctx, run, raw, dst, o)
	case GCE:
		return writeGCE(ctx, run, raw, dst, o)
	}
	return fmt.Errorf("diskformat: no writer for format %q", f)
}

func convert(ctx context.Context, run *command.Runner, raw, dst, format string, opts ...string) error {
	args := []string{"convert", "-f", "raw", "-O", format}
	if len(opts) > 0 {
		args = append(args, "-o", opts[0])
	}
	_, err := run.Run(ctx, command.Cmd{Name: "qemu-img", Args: append(args, raw, dst)})
	return err
}

// scratch is a folder next to dst for files that must carry a name of
// their own while they are made; it is removed when done is called.
func scratch(dst string) (dir string, done func(), err error) {
	dir = dst + ".d"
	os.RemoveAll(dir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// sizeOf is a file's size.
func sizeOf(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// base is the name o gives the files inside an archive.
func (o Options) base(ext string) string {
	return filepath.Base(o.Name) + ext
}
