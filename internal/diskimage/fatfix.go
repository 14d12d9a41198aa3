package diskimage

import (
	"encoding/binary"
	"fmt"
	"io"
)

// fixFAT32 corrects three things go-diskfs v1.9's FAT32 writer gets wrong,
// which fsck.vfat reports:
//   - a FAT too small for the clusters, at some sizes;
//   - the ".." entry of a folder in the root folder must name cluster 0,
//     not the root's cluster;
//   - the FSInfo sector leaves the free cluster count "unknown".
//
// rw reads and writes the partition, from its first byte.
func fixFAT32(rw interface {
	io.ReaderAt
	io.WriterAt
}) error {
	bs := make([]byte, 512)
	if _, err := rw.ReadAt(bs, 0); err != nil {
		return fmt.Errorf("reading boot sector: %w", err)
	}
	le := binary.LittleEndian
	var (
		bps      = int64(le.Uint16(bs[11:]))
		spc      = int64(bs[13])
		reserved = int64(le.Uint16(bs[14:]))
		fats     = int64(bs[16])
		total    = int64(le.Uint32(bs[32:]))
		fatSize  = int64(le.Uint32(bs[36:]))
		rootClus = le.Uint32(bs[44:])
		fsinfo   = int64(le.Uint16(bs[48:]))
		backup   = int64(le.Uint16(bs[50:]))
	)
	if bps == 0 || spc == 0 || fats == 0 || string(bs[82:87]) != "FAT32" {
		return fmt.Errorf("not a FAT32 boot sector")
	}
	fat := make([]byte, fatSize*bps)
	if _, err := rw.ReadAt(fat, reserved*bps); err != nil {
		return fmt.Errorf("reading FAT: %w", err)
	}
	dataStart := (reserved + fats*fatSize) * bps
	clusterBytes := spc * bps
	clusters := (total - reserved - fats*fatSize) / spc
	// go-diskfs can size the FAT with room for fewer entries than the data
	// area has clusters (it does for a 64 MiB partition). Shrink the file
	// system to the clusters the FAT can name: the few left at the end
	// go unused.
	if room := int64(len(fat)/4) - 2; clusters > room {
		clusters = room
		total = reserved + fats*fatSize + clusters*spc
		le.PutUint32(bs[32:], uint32(total))
		for _, sector := range []int64{0, backup} {
			if _, err := rw.WriteAt(bs, sector*bps); err != nil {
				return fmt.Errorf("writing boot sector: %w", err)
			}
		}
	}
	entry := func(n uint32) uint32 { return le.Uint32(fat[4*n:]) & 0x0FFFFFFF }
	offset := func(n uint32) int64 { return dataStart + int64(n-2)*clusterBytes }

	// Walk the root folder's cluster chain for its subfolders.
	for c := rootClus; c >= 2 && c < 0x0FFFFFF8; c = entry(c) {
		dir := make([]byte, clusterBytes)
		if _, err := rw.ReadAt(dir, offset(c)); err != nil {
			return err
		}
		for i := 0; i+32 <= len(dir); i += 32 {
			e := dir[i : i+32]
			if e[0] == 0 {
				break
			}
			if e[0] == 0xE5 || e[11] == 0x0F || e[11]&0x10 == 0 || e[0] == '.' {
				continue
			}
			sub := uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:]))
			dotdot := make([]byte, 32)
			if _, err := rw.ReadAt(dotdot, offset(sub)+32); err != nil {
				return err
			}
			if string(dotdot[:11]) != "..         " {
				return fmt.Errorf("folder at cluster %d has no '..' entry", sub)
			}
			le.PutUint16(dotdot[20:], 0)
			le.PutUint16(dotdot[26:], 0)
			if _, err := rw.WriteAt(dotdot, offset(sub)+32); err != nil {
				return err
			}
		}
	}

	var free, next uint32
	for n := uint32(2); int64(n) < clusters+2; n++ {
		if entry(n) == 0 {
			if free == 0 {
				next = n
			}
			free++
		}
	}
	for _, sector := range []int64{fsinfo, backup + fsinfo} {
		info := make([]byte, 8)
		le.PutUint32(info[0:], free)
		le.PutUint32(info[4:], next)
		if _, err := rw.WriteAt(info, sector*bps+488); err != nil {
			return fmt.Errorf("writing FSInfo: %w", err)
		}
	}
	return nil
}
