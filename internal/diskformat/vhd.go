package diskformat

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/nodebake/nodebake/internal/command"
)

// VHD's footer, the last 512 bytes of a fixed VHD (Microsoft's Virtual
// Hard Disk Image Format Specification): the fields qemu-img stamps
// with the time and a random UUID, and the checksum over them.
const (
	footerSize      = 512
	footerTimestamp = 24 // seconds since 2000-01-01 UTC, big-endian
	footerDiskType  = 60
	footerChecksum  = 64 // one's complement of the sum of every other byte
	footerUUID      = 68
	diskTypeFixed   = 2
)

// vhdEpoch is where a VHD's timestamps count from.
var vhdEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// mib is Azure's unit: a VHD's virtual size must be a whole number of it.
const mib = 1 << 20

// writeVHD writes a fixed VHD whose virtual size is exactly the raw
// image's (force_size: no rounding to a CHS geometry, which would break
// Azure's whole-MiB rule), its footer stamped from the epoch and seed.
func writeVHD(ctx context.Context, run *command.Runner, raw, dst string, o Options) error {
	size, err := sizeOf(raw)
	if err != nil {
		return err
	}
	if size%mib != 0 {
		// Every layout is whole MiB; an image that is not came from
		// elsewhere and would need padding past its backup GPT.
		return fmt.Errorf("%s: %d bytes is not a whole number of MiB, as Azure requires of a VHD", raw, size)
	}
	if err := convert(ctx, run, raw, dst, "vpc", "subformat=fixed,force_size=on"); err != nil {
		return err
	}
	return stampFooter(dst, size, o)
}

// stampFooter sets the footer's timestamp and UUID, and its checksum.
func stampFooter(path string, size int64, o Options) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	foot := make([]byte, footerSize)
	if _, err := f.ReadAt(foot, size); err != nil {
		return fmt.Errorf("%s: reading the VHD footer: %w", path, err)
	}
	if string(foot[:8]) != "conectix" || binary.BigEndian.Uint32(foot[footerDiskType:]) != diskTypeFixed {
		return fmt.Errorf("%s: qemu-img wrote no fixed VHD footer at byte %d", path, size)
	}
	secs := o.Epoch.Sub(vhdEpoch) / time.Second
	if secs < 0 || secs > 1<<32-1 {
		return fmt.Errorf("%s: the epoch %s does not fit a VHD timestamp (2000 to 2136)", path, o.Epoch.Format(time.RFC3339))
	}
	binary.BigEndian.PutUint32(foot[footerTimestamp:], uint32(secs))
	uuid := o.id("vhd-uuid", 16)
	uuid[6] = uuid[6]&0x0f | 0x50 // a name-based UUID (version 5, RFC 4122 variant)
	uuid[8] = uuid[8]&0x3f | 0x80
	copy(foot[footerUUID:], uuid)
	binary.BigEndian.PutUint32(foot[footerChecksum:], footerSum(foot))
	if _, err := f.WriteAt(foot, size); err != nil {
		return err
	}
	return f.Close()
}

// footerSum is the checksum a footer must carry.
func footerSum(foot []byte) uint32 {
	var sum uint32
	for i, b := range foot {
		if i < footerChecksum || i >= footerChecksum+4 {
			sum += uint32(b)
		}
	}
	return ^sum
}
