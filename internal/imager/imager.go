package imager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nodebake/nodebake/internal/aptsource"
	"github.com/nodebake/nodebake/internal/bootloader"
	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskformat"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/kit"
	"github.com/nodebake/nodebake/internal/lock"
	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/profile"
	"github.com/nodebake/nodebake/internal/rootfs"
	"github.com/nodebake/nodebake/internal/workdir"
)

// Request is one build.
type Request struct {
	Profile   *profile.Profile
	SourceDir string // holds overlays/ and systemd/
	OutDir    string // overrides the profile's spec.outputs.dir when set
	CacheDir  string
	// HostRoot is where the host's apt sources are read ("/" normally).
	HostRoot string
	// Lock pins url and file sources and fetched images (the profile's
	// lock, when there is one).
	Lock *lock.Lock
	// Locked fails the build when any input differs from Lock: at the
	// lock step, once every input is resolved and before the disk is
	// written, so no output is published.
	Locked bool
	// LockOnly resolves every input and stops: nothing is written, and
	// Result.Lock holds what was resolved (`imagebuild lock`).
	LockOnly bool
}

// Result names the outputs of a build.
type Result struct {
	// Images are the disk image in each of the profile's formats, in
	// the profile's order.
	Images   []Image
	Manifest string
	Digest   string
	// Lock is every input the build resolved.
	Lock *lock.Lock `json:"-"`
}

// Image is the disk image in one format.
type Image struct {
	Format string
	Path   string
}

// Path is the output in the given format, "" when it is not built.
func (r Result) Path(format string) string {
	for _, i := range r.Images {
		if i.Format == format {
			return i.Path
		}
	}
	return ""
}

// Outputs are the final paths of a profile's outputs in dir.
func Outputs(p *profile.Profile, dir string) Result {
	base := filepath.Join(dir, p.Metadata.Name)
	r := Result{Manifest: base + ".manifest.json", Digest: p.Digest()}
	for _, f := range p.Spec.Outputs.Formats {
		r.Images = append(r.Images, Image{Format: f, Path: base + diskformat.Ext(f)})
	}
	return r
}

// imager is one build: what it was asked, and what each step made for
// the next ones.
type imager struct {
	req    Request
	p      *profile.Profile
	log    *slog.Logger
	run    *command.Runner
	kit    *kit.Builder
	epoch  time.Time
	layout diskimage.Layout
	work   string // the build's private folder
	out    Result

	base     rootfs.BaseSpec
	baseTar  string
	tree     *rootfs.Tree   // the root being assembled
	root     *rootfs.Result // the finished root
	baked    *kit.Baked     // nil without a kit
	boot     bootloader.Config
	esp      []diskimage.ESPFile
	cmdline  string
	resolved *lock.Lock
	rootImg  string // the root's squashfs, once the disk is written
	key      string // the build cache's key, once known
	hit      *hit   // the build the cache holds, if it does
}

// Execute builds the image of req.Profile, which must already be
// validated. Nothing is written at an output path unless every step
// succeeds.
func Execute(ctx context.Context, log *slog.Logger, req Request) (*Result, error) {
	wd, err := workdir.New("nodebake-build-")
	if err != nil {
		return nil, err
	}
	defer wd.Remove()
	im := newImager(log, req, wd.Path)
	build := []step{
		{"base system", im.baseSystem},
		{"assemble root", im.assemble},
		{"kit", im.bakeKit},
		{"finish root", im.finishRoot},
		{"bootloader", im.bootloader},
		{"manifest", im.manifest},
		{"lock", im.lock},
		{"fix timestamps", im.fixTimestamps},
		{"write disk", im.writeDisk},
		{"publish", im.publish},
		{"keep in cache", im.storeBuild},
	}
	var steps []step
	switch {
	case req.LockOnly:
		// Everything up to the lock: every input is resolved, and no
		// disk is written.
		last := slices.IndexFunc(build, func(s step) bool { return s.name == "lock" })
		steps = append([]step{{"resolve apt sources", im.aptSources}}, build[:last+1]...)
	default:
		// The rest depends on the cache: a build it holds is published
		// from it.
		steps = []step{
			{"resolve apt sources", im.aptSources},
			{"build cache", func(ctx context.Context) error {
				if err := im.cachedBuild(ctx); err != nil {
					return err
				}
				if im.hit != nil {
					steps = append(steps, step{"disk from cache", im.fromCache}, step{"publish", im.publish})
				} else {
					steps = append(steps, build...)
				}
				return nil
			}},
		}
	}
	if err := runSteps(ctx, log, &steps); err != nil {
		return nil, err
	}
	im.out.Lock = im.resolved
	return &im.out, nil
}

func newImager(log *slog.Logger, req Request, work string) *imager {
	p := req.Profile
	outDir := req.OutDir
	if outDir == "" {
		outDir = p.Spec.Outputs.Dir
	}
	run := &command.Runner{Log: log}
	epoch := time.Unix(*p.Spec.SourceDateEpoch, 0).UTC()
	sizes := p.DiskSizes()
	im := &imager{
		req: req, p: p, log: log, run: run, epoch: epoch, work: work,
		layout: diskimage.Plan(p.Digest(), sizes.ESP, sizes.Root, sizes.State),
		out:    Outputs(p, outDir),
		kit:    &kit.Builder{Run: run, Cache: &cache.Cache{Dir: req.CacheDir}, Log: log, Epoch: epoch, Resolve: req.LockOnly},
	}
	if req.Lock != nil && !req.LockOnly {
		im.kit.Pins, im.kit.ImagePins = req.Lock.DownloadSHA256, req.Lock.ImageDigest
	}
	return im
}

func (im *imager) aptSources(context.Context) error {
	b := im.p.Spec.Base
	var entries []aptsource.Entry
	if b.Mirror != "" {
		entries = aptsource.ForMirror(b.Mirror, b.Suite)
	} else {
		var err error
		if entries, err = aptsource.FromHost(im.req.HostRoot, b.Suite); err != nil {
			return err
		}
	}
	im.base = rootfs.BaseSpec{Suite: b.Suite, Packages: b.Packages, Sources: aptsource.Render(entries), Epoch: im.epoch.Unix()}
	return nil
}

func (im *imager) baseSystem(ctx context.Context) (err error) {
	im.baseTar, err = rootfs.Base(ctx, im.run, im.kit.Cache, im.base, im.log)
	return err
}

func (im *imager) assemble(ctx context.Context) (err error) {
	im.tree, err = rootfs.Assemble(ctx, im.run, im.p, im.req.SourceDir, im.baseTar, im.work)
	return err
}

// bakeKit installs the kit into the assembled root: after the root, since
// kube-proxy's and flannel's images carry the node's own iptables.
func (im *imager) bakeKit(ctx context.Context) (err error) {
	if im.p.Spec.Kit == nil {
		return nil
	}
	if im.baked, err = im.kit.Bake(ctx, im.p.Spec.Kit, kit.Into{Tree: im.tree, Root: im.tree.Root, SourceDir: im.req.SourceDir}); err != nil {
		return err
	}
	return rootfs.Enable(ctx, im.run, im.tree, im.baked.Units...)
}

func (im *imager) finishRoot(context.Context) (err error) {
	im.root, err = rootfs.Finish(im.tree, im.work)
	return err
}

func (im *imager) bootloader(context.Context) error {
	cfg := bootloader.Config{
		Title:    fmt.Sprintf("nodebake %s (Debian %s, Linux %s)", im.p.Metadata.Name, im.p.Spec.Base.Suite, im.root.KernelVersion),
		RootDir:  im.root.Root,
		Kernel:   im.root.Kernel,
		Initrd:   im.root.Initrd,
		RootUUID: im.layout.Part(diskimage.RoleRootA).GUID, StateUUID: im.layout.Part(diskimage.RoleState).GUID,
		Cmdline: im.p.Spec.Kernel.Cmdline,
	}
	files, err := bootloader.Files(cfg)
	if err != nil {
		return err
	}
	for _, f := range files {
		im.esp = append(im.esp, diskimage.ESPFile{Path: f.Path, Data: f.Data})
	}
	im.cmdline = bootloader.Cmdline(cfg)
	if err := im.root.MoveBootFiles(im.work); err != nil {
		return err
	}
	cfg.Kernel, cfg.Initrd = im.root.Kernel, im.root.Initrd
	im.boot = cfg
	return nil
}

// manifest writes the image's record into the root and the work folder.
func (im *imager) manifest(context.Context) error {
	p, r := im.p, im.root
	m := &manifest.Manifest{
		SchemaVersion: manifest.SchemaVersion, Name: p.Metadata.Name,
		ProfileDigest: p.Digest(), Suite: p.Spec.Base.Suite, BaseKey: im.base.Key(),
		SourceDateEpoch: im.epoch.Unix(), KernelVersion: r.KernelVersion, Cmdline: im.cmdline,
		Disk: im.layout, Sysctls: p.Spec.Node.Sysctls, Modules: p.Spec.Node.Modules,
		EnabledUnits: rootfs.EnabledUnits(r.Root), Packages: r.Packages, Files: r.Added,
	}
	if im.baked != nil {
		m.Kit = &manifest.Kit{KubernetesVersion: p.Spec.Kit.KubernetesVersion, Images: im.baked.Images}
		for _, a := range im.baked.Programs {
			m.Kit.Components = append(m.Kit.Components, a.Program)
		}
	}
	data := m.Marshal()
	dest := filepath.Join(r.Root, manifest.Path)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(dest, data, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(im.work, "manifest.json"), data, 0o644)
}

// lock gathers what the parts resolved, and with --locked compares it
// with the lock.
func (im *imager) lock(context.Context) error {
	l := &lock.Lock{
		APIVersion: lock.APIVersion, Kind: lock.Kind, Profile: im.p.Metadata.Name, Suite: im.p.Spec.Base.Suite,
		Packages: im.root.LockPackages(),
	}
	if im.baked != nil {
		l.Kit = im.baked.Lock
	}
	im.resolved = l
	if !im.req.Locked {
		return nil
	}
	return lock.Compare(im.req.Lock, l)
}

func (im *imager) fixTimestamps(context.Context) error {
	return errors.Join(rootfs.ClampTimes(im.root.Root, im.epoch), rootfs.ClampTimes(im.root.State, im.epoch))
}

func (im *imager) rawPath() string { return filepath.Join(im.work, "disk.raw") }

func (im *imager) writeDisk(ctx context.Context) error {
	sqfs, err := rootSquashfs(ctx, im.run, im.kit.Cache, im.root.Root, im.epoch)
	if err != nil {
		return fmt.Errorf("the root filesystem: %w", err)
	}
	im.rootImg = sqfs
	return diskimage.Write(ctx, im.run, im.rawPath(), im.layout, diskimage.Contents{
		RootDir: im.root.Root, RootImage: sqfs, StateDir: im.root.State, ESP: im.esp, Epoch: im.epoch,
		BIOSDir: bootloader.SyslinuxDir,
	})
}

func (im *imager) publish(ctx context.Context) error {
	live, known := im.writeLive, map[string]string(nil)
	if im.hit != nil {
		live, known = im.copyLive, im.hit.knownSums()
	}
	return publish(ctx, im.run, im.work, im.rawPath(), im.out, diskformat.Options{
		Name: im.p.Metadata.Name, Epoch: im.epoch, Seed: im.p.Digest(), Firmware: im.p.Spec.Outputs.OVAFirmware,
	}, live, known)
}
