package diskimage

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/nodebake/nodebake/internal/command"
)

// ESPFile is one file on the EFI system partition.
type ESPFile struct {
	Path string // absolute, with forward slashes
	Data []byte
}

// Contents are what goes into the partitions.
type Contents struct {
	// RootDir is the tree of root slot A.
	RootDir string
	// StateDir is the tree that seeds the state partition.
	StateDir string
	ESP      []ESPFile
	Epoch    time.Time
	// BIOSDir, when set, is the ESP folder SYSLINUX is installed in, with
	// its configuration: the disk then boots on BIOS firmware as well as
	// UEFI.
	BIOSDir string
	// RootImage, when set, is RootDir's squashfs, made before
	// (SquashfsArgs): it is written as it is.
	RootImage string
}

// Write creates the image at path (which must not exist) as a sparse file
// and writes the partition table and every filesystem into it.
func Write(ctx context.Context, run *command.Runner, dst string, l Layout, c Contents) error {
	if err := writeWithDiskfs(ctx, run, dst, l, c); err != nil {
		return err
	}
	if c.BIOSDir != "" {
		if err := installBIOSBoot(ctx, run, dst, l, c.BIOSDir, c.Epoch); err != nil {
			return err
		}
	}
	if err := writeState(ctx, run, dst, l, c.StateDir, c.Epoch); err != nil {
		return fmt.Errorf("writing state filesystem: %w", err)
	}
	return digHoles(ctx, run, dst)
}

// digHoles makes every block of zeros of the disk a hole. What reads
// holes (GNU tar's sparse archive in the gce output) then reads the same
// file whatever wrote it or copied it: cp --sparse=always, which the
// build cache copies with, makes the same holes.
func digHoles(ctx context.Context, run *command.Runner, dst string) error {
	if _, err := run.Run(ctx, command.Cmd{Name: "fallocate", Args: []string{"--dig-holes", dst}}); err != nil {
		return fmt.Errorf("making the disk's blocks of zeros holes: %w", err)
	}
	return nil
}

// writeWithDiskfs writes the partition table, the ESP and root slot A.
func writeWithDiskfs(ctx context.Context, run *command.Runner, dst string, l Layout, c Contents) (err error) {
	d, err := diskfs.Create(dst, l.Size, diskfs.SectorSize512)
	if err != nil {
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	defer func() {
		if cerr := d.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", dst, cerr)
		}
	}()
	if err := writeTable(d, l, c.BIOSDir != ""); err != nil {
		return fmt.Errorf("writing partition table: %w", err)
	}
	if err := writeESP(d, l, c.ESP, c.Epoch); err != nil {
		return fmt.Errorf("writing ESP: %w", err)
	}
	if err := writeRoot(ctx, run, d, l, c, dst+".root.sqfs"); err != nil {
		return fmt.Errorf("writing root filesystem: %w", err)
	}
	return nil
}

func writeTable(d *disk.Disk, l Layout, bios bool) error {
	table := &gpt.Table{
		LogicalSectorSize:  SectorSize,
		PhysicalSectorSize: SectorSize,
		ProtectiveMBR:      true,
		GUID:               l.DiskGUID,
	}
	for _, p := range l.Partitions {
		var attrs uint64
		if bios && p.Name == RoleESP {
			attrs = attrLegacyBootable
		}
		table.Partitions = append(table.Partitions, &gpt.Partition{
			Attributes: attrs,
			Index:      p.Number,
			Start:      uint64(p.Start / SectorSize),
			End:        uint64((p.Start+p.Size)/SectorSize - 1),
			Type:       gpt.Type(p.Type),
			Name:       p.Name,
			GUID:       p.GUID,
		})
	}
	return d.Partition(table)
}

func writeESP(d *disk.Disk, l Layout, files []ESPFile, epoch time.Time) error {
	return writeFAT(d, l.Part(RoleESP).Number, l.Part(RoleESP).Start, "ESP", files, epoch)
}

// WriteFAT writes files into a new FAT32 filesystem image at dst, with no
// partition table, just large enough for them: an ISO's El Torito EFI
// boot image.
func WriteFAT(dst, label string, files []ESPFile, epoch time.Time) (err error) {
	// FAT32 needs 65525 clusters; go-diskfs makes 512-byte ones below
	// 260 MiB. Each file rounds up to a cluster, each folder takes one.
	size := int64(40 << 20)
	for _, f := range files {
		size += int64(len(f.Data)) + 4096
	}
	size = (size + 1<<20 - 1) &^ (1<<20 - 1)
	d, err := diskfs.Create(dst, size, diskfs.SectorSize512)
	if err != nil {
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	defer func() {
		if cerr := d.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", dst, cerr)
		}
	}()
	return writeFAT(d, 0, 0, label, files, epoch)
}

// writeFAT makes a FAT32 filesystem on partition n of d (0: the whole
// disk), which starts at byte off, and writes files into it.
func writeFAT(d *disk.Disk, n int, off int64, label string, files []ESPFile, epoch time.Time) error {
	// go-diskfs stamps FAT directory entries with timestamp.GetTime, which
	// reads SOURCE_DATE_EPOCH from the environment.
	prev, had := os.LookupEnv("SOURCE_DATE_EPOCH")
	os.Setenv("SOURCE_DATE_EPOCH", strconv.FormatInt(epoch.Unix(), 10))
	defer func() {
		if had {
			os.Setenv("SOURCE_DATE_EPOCH", prev)
		} else {
			os.Unsetenv("SOURCE_DATE_EPOCH")
		}
	}()
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{
		Partition:    n,
		FSType:       filesystem.TypeFat32,
		VolumeLabel:  label,
		Reproducible: true,
	})
	if err != nil {
		return err
	}
	files = slices.Clone(files)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		if err := fs.Mkdir(path.Dir(f.Path)); err != nil {
			return fmt.Errorf("creating %s: %w", path.Dir(f.Path), err)
		}
		w, err := fs.OpenFile(f.Path, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("creating %s: %w", f.Path, err)
		}
		if _, err := w.Write(f.Data); err != nil {
			w.Close()
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	rw, err := d.Backend.Writable()
	if err != nil {
		return err
	}
	return fixFAT32(section{rw, off})
}

// section reads and writes a backend from an offset on.
type section struct {
	rw interface {
		io.ReaderAt
		io.WriterAt
	}
	off int64
}

func (s section) ReadAt(b []byte, off int64) (int, error)  { return s.rw.ReadAt(b, s.off+off) }
func (s section) WriteAt(b []byte, off int64) (int, error) { return s.rw.WriteAt(b, s.off+off) }

// writeRoot writes rootDir as a squashfs into root slot A. mksquashfs makes
// the filesystem (go-diskfs v1.9's squashfs writer corrupts the directory
// table of a tree this size; see README) with every timestamp fixed, and
// it is copied into the partition through go-diskfs's backend.
func writeRoot(ctx context.Context, run *command.Runner, d *disk.Disk, l Layout, c Contents, tmp string) error {
	part := l.Part(RoleRootA)
	sqfs := c.RootImage
	if sqfs == "" {
		sqfs = tmp
		defer os.Remove(tmp)
		if _, err := run.Run(ctx, command.Cmd{Name: "mksquashfs", Args: SquashfsArgs(c.RootDir, tmp, c.Epoch)}); err != nil {
			return err
		}
	}
	f, err := os.Open(sqfs)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > part.Size {
		return fmt.Errorf("%w: the root filesystem is %d MiB, root slot A is %d MiB (raise spec.disk.rootSize)",
			ErrTooLarge, fi.Size()>>20, part.Size>>20)
	}
	// go-diskfs's WritePartitionContents insists on filling the whole
	// partition; write through its backend at the partition's offset
	// instead, so the rest of the slot stays a hole.
	w, err := d.Backend.Writable()
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.NewOffsetWriter(w, part.Start), f); err != nil {
		return fmt.Errorf("copying the root filesystem into its partition: %w", err)
	}
	return nil
}

// writeState makes the ext4 state filesystem with mke2fs, straight into
// its partition of the image (-E offset), so the image stays sparse. The
// UUID, hash seed and times are fixed, so the bytes are reproducible:
// mke2fs -d copies each file's change time (ctime), which no one can set,
// so debugfs sets it to the epoch afterwards.
func writeState(ctx context.Context, run *command.Runner, image string, l Layout, stateDir string, epoch time.Time) error {
	part := l.Part(RoleState)
	ts := strconv.FormatInt(epoch.Unix(), 10)
	if _, err := run.Run(ctx, command.Cmd{
		Name: "mke2fs",
		Args: []string{
			"-q", "-F", "-t", "ext4", "-b", "4096", "-L", RoleState,
			"-U", l.StateUUID,
			"-E", "offset=" + strconv.FormatInt(part.Start, 10) + ",hash_seed=" + l.StateUUID +
				",root_owner=0:0,nodiscard,lazy_itable_init=1,lazy_journal_init=1",
			"-d", stateDir,
			image, strconv.FormatInt(part.Size/1024, 10) + "k",
		},
		Env: []string{"E2FSPROGS_FAKE_TIME=" + ts},
	}); err != nil {
		return err
	}
	var script strings.Builder
	err := filepath.WalkDir(stateDir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(stateDir, p)
		for _, field := range []string{"atime", "ctime"} {
			fmt.Fprintf(&script, "sif %q %s @%s\n", "/"+filepath.ToSlash(strings.TrimPrefix(rel, ".")), field, ts)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var stderr strings.Builder
	if _, err := run.Run(ctx, command.Cmd{
		Name:   "debugfs",
		Args:   []string{"-w", "-f", "-", fmt.Sprintf("%s?offset=%d", image, part.Start)},
		Stdin:  strings.NewReader(script.String()),
		Stderr: &stderr,
		Env:    []string{"E2FSPROGS_FAKE_TIME=" + ts},
	}); err != nil {
		return err
	}
	// debugfs reports a failed request on standard error and exits 0;
	// the only line it prints there on success is its banner.
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, "debugfs ") {
			return fmt.Errorf("debugfs: %s", line)
		}
	}
	return nil
}
