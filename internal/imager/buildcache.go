package imager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskformat"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/kit"
	"github.com/nodebake/nodebake/internal/liveboot"
	"github.com/nodebake/nodebake/internal/lock"
	"github.com/nodebake/nodebake/internal/manifest"
)

// The build cache: a build whose inputs are those of a build the cache
// holds publishes that build's outputs, and runs none of the steps in
// between. An entry is a folder:
//
//	manifest.json  the published manifest, every output's sha256 in it
//	lock.json      what the build resolved
//	disk.raw       the raw disk, sparse
//	live/iso       the ISO, when the profile builds one
//	live/pxe/      the PXE folder, likewise
//
// The other formats are made again from the raw disk: a conversion is
// fast, and the bit-for-bit rebuild test checks that it is
// deterministic.
const (
	buildKind = "builds"
	// buildKeep is how many builds the cache keeps, the last used: the
	// default profile's is 0.5 GB of data, a test image with every
	// format about 1.5 GB.
	buildKeep = 3
	// buildKeyVersion changes when what the key covers changes.
	buildKeyVersion = "nodebake-build-v1"
)

// hostTools are the host's programs the steps run, by the arguments that
// print their versions; the key holds each one's answer. mmdebstrap is
// not among them: the base's digest stands for what it made.
var hostTools = [][]string{
	{"tar", "--version"},          // assemble
	{"systemctl", "--version"},    // enabling units
	{"mksquashfs", "-version"},    // the root and the state seed
	{"mke2fs", "-V"},              // the state partition
	{"fallocate", "--version"},    // the disk's holes
	{"unshare", "--version"},      // containerd's root, prepared
	{"syslinux", "--version"},     // BIOS boot
	{"mcopy", "--version"},        // syslinux writes the FAT with mtools
	{"cp", "--version"},           // sparse copies
	{"qemu-img", "--version"},     // the other formats
	{"xorriso", "-version"},       // the ISO
	{"gcc", "-dumpfullversion"},   // the kit's pause
	{"strip", "--version"},        // the kit's pause
	{"go", "env", "GOVERSION"},    // the kit and the first-boot agent
	{"go", "env", "GOAMD64"},      // likewise
	{"go", "env", "GOEXPERIMENT"}, // likewise
}

// hostFiles are files of the host's packages that go into an image as
// they are.
var hostFiles = append(diskimage.HostFiles(), liveboot.HostFiles()...)

// inputsKey is the build cache's key: everything the steps read. It
// holds:
//   - imagebuild itself (its executable's sha256): the code of every
//     step, the kit's pinned modules and recipes, the node preset and
//     the initramfs scripts;
//   - the profile (its digest: formats, sizes, epoch, kit) and the lock
//     the build resolves against;
//   - the base: its key (suite, packages and the apt sources read from
//     the host) and the sha256 of the cached tarball, which stands for
//     the packages the mirror had when it was made;
//   - every file the steps read from the source folder: the overlays and
//     unit files the profile names and, with a kit, the first-boot unit
//     and the agent's sources;
//   - the host's tools (hostTools), by version, and its files that go
//     into the image (hostFiles).
//
// ok is false when the cache holds no base for the profile: then the
// build runs its steps, and is cached under the key computed after.
func (im *imager) inputsKey(ctx context.Context) (key string, ok bool, err error) {
	c := im.kit.Cache
	baseSum, err := c.Digest("base", im.base.Key())
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	} else if err != nil {
		return "", false, err
	}
	exe, err := os.Executable()
	if err != nil {
		return "", false, err
	}
	self, err := cache.FileSHA256(exe)
	if err != nil {
		return "", false, fmt.Errorf("hashing imagebuild itself: %w", err)
	}
	var lockJSON []byte
	if im.req.Lock != nil {
		if lockJSON, err = json.Marshal(im.req.Lock); err != nil {
			return "", false, err
		}
	}
	sources, err := im.sourceFiles()
	if err != nil {
		return "", false, err
	}
	parts := [][]byte{
		[]byte(buildKeyVersion), []byte(self),
		[]byte(im.p.Digest()), lockJSON,
		[]byte(im.base.Key()), []byte(baseSum),
		sources,
	}
	parts = append(parts, toolVersions(ctx, im.run)...)
	for _, f := range hostFiles {
		sum, err := cache.FileSHA256(f)
		if err != nil {
			sum = "absent" // the step that needs it fails, naming it
		}
		parts = append(parts, []byte(f), []byte(sum))
	}
	return cache.Key(parts...), true, nil
}

// sourceFiles digests what the steps read from the source folder: each
// overlay's files, links and modes as applyOverlays copies them, the
// unit files, and with a kit the first-boot unit and the agent's sources.
func (im *imager) sourceFiles() ([]byte, error) {
	dir := im.req.SourceDir
	var b strings.Builder
	for _, name := range im.p.Spec.Overlays {
		src := filepath.Join(dir, "overlays", name)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			switch {
			case d.IsDir():
				fmt.Fprintf(&b, "overlay %q %q dir\n", name, rel)
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, "overlay %q %q link %q\n", name, rel, target)
			default:
				info, err := d.Info()
				if err != nil {
					return err
				}
				sum, err := cache.FileSHA256(p)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, "overlay %q %q %v %s\n", name, rel, info.Mode()&0o111 != 0, sum)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("overlay %s: %w", name, err)
		}
	}
	units := slices.Clone(im.p.Spec.Units.Files)
	if im.p.Spec.Kit != nil {
		units = append(units, kit.FirstbootUnit)
		src, err := kit.SourceHash(dir)
		if err != nil {
			return nil, fmt.Errorf("the first-boot agent's sources: %w", err)
		}
		fmt.Fprintf(&b, "agent %s\n", src)
	}
	for _, name := range units {
		sum, err := cache.FileSHA256(filepath.Join(dir, "systemd", name))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "unit %q %s\n", name, sum)
	}
	return []byte(b.String()), nil
}

// toolVersions are hostTools' answers, asked side by side; a tool that
// is missing or fails has none, and the step that runs it fails.
func toolVersions(ctx context.Context, run *command.Runner) [][]byte {
	out := make([][]byte, len(hostTools))
	var wg sync.WaitGroup
	for i, t := range hostTools {
		wg.Go(func() {
			v, err := run.Run(ctx, command.Cmd{Name: t[0], Args: t[1:]})
			if err != nil {
				v = []byte("no answer")
			}
			out[i] = append([]byte(strings.Join(t, " ")+"\n"), v...)
		})
	}
	wg.Wait()
	return out
}

// hit is a build the cache holds.
type hit struct {
	dir      string
	manifest *manifest.Manifest
	lock     *lock.Lock
}

// cachedBuild looks the build's inputs up in the cache. On a hit, the
// rest of the build is fromCache and publish; with --locked the cached
// build's lock is compared as the build's own would be.
func (im *imager) cachedBuild(ctx context.Context) error {
	key, ok, err := im.inputsKey(ctx)
	if err != nil || !ok {
		return err
	}
	im.key = key
	c := im.kit.Cache
	dir, ok, err := c.Lookup(buildKind, key)
	if err != nil {
		return err
	} else if !ok {
		im.log.Info("build not in cache", "key", key[:12])
		return nil
	}
	h, err := readHit(dir)
	if err != nil {
		// An entry this version cannot read is no entry.
		im.log.Warn("ignoring a cached build", "key", key[:12], "error", err)
		return nil
	}
	if im.req.Locked {
		if err := lock.Compare(im.req.Lock, h.lock); err != nil {
			return err
		}
	}
	c.Touch(buildKind, key)
	im.hit = h
	im.log.Info("build found in cache", "key", key[:12])
	return nil
}

func readHit(dir string) (*hit, error) {
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return nil, err
	}
	data, err = os.ReadFile(filepath.Join(dir, "lock.json"))
	if err != nil {
		return nil, err
	}
	l := &lock.Lock{}
	if err := json.Unmarshal(data, l); err != nil {
		return nil, fmt.Errorf("lock.json: %w", err)
	}
	return &hit{dir: dir, manifest: m, lock: l}, nil
}

// fromCache puts the cached build where publish takes a build's: the raw
// disk and the manifest in the work folder.
func (im *imager) fromCache(ctx context.Context) error {
	if err := diskimage.CopySparse(ctx, im.run, filepath.Join(im.hit.dir, "disk.raw"), im.rawPath()); err != nil {
		return err
	}
	im.resolved = im.hit.lock
	m := *im.hit.manifest
	m.Outputs = nil
	return os.WriteFile(filepath.Join(im.work, "manifest.json"), m.Marshal(), 0o644)
}

// copyLive is publish's live writer on a hit: the cached output.
func (im *imager) copyLive(ctx context.Context, f, tmp string) error {
	return diskimage.CopySparse(ctx, im.run, filepath.Join(im.hit.dir, "live", f), tmp)
}

// knownSums are the sha256 of the outputs a hit copies as they are, by
// their names in the manifest: publish need not read them again.
func (h *hit) knownSums() map[string]string {
	sums := map[string]string{}
	for _, o := range h.manifest.Outputs {
		if o.Format == diskformat.Raw || diskformat.Live(o.Format) {
			sums[o.File] = o.SHA256
		}
	}
	return sums
}

// storeBuild keeps the published build in the cache. A build that cannot
// be kept is still a build: the failure is a warning.
func (im *imager) storeBuild(ctx context.Context) error {
	if im.key == "" {
		// The base was built in this run: its digest is known now.
		key, ok, err := im.inputsKey(ctx)
		if err != nil || !ok {
			return err
		}
		im.key = key
	}
	if err := im.keep(ctx); err != nil {
		im.log.Warn("keeping the build in the cache", "error", err)
	}
	return nil
}

func (im *imager) keep(ctx context.Context) error {
	c := im.kit.Cache
	tmp, err := c.TempDir(buildKind)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	raw := im.out.Path(diskformat.Raw)
	if raw == "" {
		raw = im.rawPath() // not published: still in the work folder
	}
	copies := [][2]string{{raw, "disk.raw"}, {im.out.Manifest, "manifest.json"}}
	for _, f := range []string{diskformat.ISO, diskformat.PXE} {
		if p := im.out.Path(f); p != "" {
			copies = append(copies, [2]string{p, filepath.Join("live", f)})
		}
	}
	if err := os.Mkdir(filepath.Join(tmp, "live"), 0o755); err != nil {
		return err
	}
	for _, cp := range copies {
		if err := diskimage.CopySparse(ctx, im.run, cp[0], filepath.Join(tmp, cp[1])); err != nil {
			return err
		}
	}
	data, err := json.Marshal(im.resolved)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "lock.json"), data, 0o644); err != nil {
		return err
	}
	if _, err := c.Commit(buildKind, im.key, tmp); err != nil {
		return err
	}
	im.log.Info("build kept in cache", "key", im.key[:12])
	return c.Prune(buildKind, buildKeep)
}
