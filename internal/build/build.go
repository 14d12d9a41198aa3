package build

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
	"github.com/nodebake/nodebake/internal/atomicfile"
	"github.com/nodebake/nodebake/internal/bootloader"
	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/kit"
	"github.com/nodebake/nodebake/internal/lock"
	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/profile"
	"github.com/nodebake/nodebake/internal/rootfs"
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

// FirstbootUnit is the first-boot agent's unit, under systemd/ in the
// source folder, baked and enabled in every image with a kit.
const FirstbootUnit = "firstboot.service"

// Result names the outputs of a build.
type Result struct {
	Raw      string
	Qcow2    string
	Manifest string
	Digest   string
	// Lock is every input the build resolved.
	Lock *lock.Lock `json:"-"`
}

// Outputs are the final paths of a profile's outputs in dir.
func Outputs(p *profile.Profile, dir string) Result {
	base := filepath.Join(dir, p.Metadata.Name)
	r := Result{Manifest: base + ".manifest.json", Digest: p.Digest()}
	for _, f := range p.Spec.Outputs.Formats {
		switch f {
		case profile.FormatRaw:
			r.Raw = base + ".raw"
		case profile.FormatQcow2:
			r.Qcow2 = base + ".qcow2"
		}
	}
	return r
}

// Execute builds the image of req.Profile, which must already be
// validated. Nothing is written at an output path unless every step
// succeeds.
func Execute(ctx context.Context, log *slog.Logger, req Request) (*Result, error) {
	p := req.Profile
	outDir := req.OutDir
	if outDir == "" {
		outDir = p.Spec.Outputs.Dir
	}
	out := Outputs(p, outDir)
	run := &command.Runner{Log: log}
	c := &cache.Cache{Dir: req.CacheDir}
	epoch := time.Unix(*p.Spec.SourceDateEpoch, 0).UTC()
	digest := p.Digest()
	sizes := p.DiskSizes()
	layout := diskimage.Plan(digest, sizes.ESP, sizes.Root, sizes.State)

	work, err := os.MkdirTemp("", "nodebake-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	rawTmp := filepath.Join(work, "disk.raw")

	var (
		baseSpec  rootfs.BaseSpec
		baseTar   string
		tree      *rootfs.Result
		esp       []diskimage.ESPFile
		cmdline   string
		artifacts []kit.Artifact
		imageRefs []string
		baked     []manifest.Image
		// networkManifest is the pod network's, rendered for the profile.
		networkManifest []byte
	)
	kb := &kit.Builder{Run: run, Cache: c, Log: log, Epoch: epoch, Resolve: req.LockOnly}
	if req.Lock != nil && !req.LockOnly {
		kb.Pins, kb.ImagePins = req.Lock.DownloadSHA256, req.Lock.ImageDigest
	}
	var resolved *lock.Lock
	steps := []step{
		{"resolve apt sources", func(ctx context.Context) error {
			var entries []aptsource.Entry
			if p.Spec.Base.Mirror != "" {
				entries = aptsource.ForMirror(p.Spec.Base.Mirror, p.Spec.Base.Suite)
			} else if entries, err = aptsource.FromHost(req.HostRoot, p.Spec.Base.Suite); err != nil {
				return err
			}
			baseSpec = rootfs.BaseSpec{
				Suite: p.Spec.Base.Suite, Packages: p.Spec.Base.Packages,
				Sources: aptsource.Render(entries), Epoch: epoch.Unix(),
			}
			return nil
		}},
		{"base system", func(ctx context.Context) error {
			baseTar, err = rootfs.Base(ctx, run, c, baseSpec, log)
			return err
		}},
		{"kit", func(ctx context.Context) error {
			if p.Spec.Kit == nil {
				return nil
			}
			if artifacts, err = kb.Build(ctx, p.Spec.Kit); err != nil {
				return err
			}
			agent, err := kb.Firstboot(ctx, req.SourceDir)
			if err != nil {
				return err
			}
			artifacts = append(artifacts, agent)
			if imageRefs, err = kit.ImageRefs(ctx, run, artifacts, p.Spec.Kit); err != nil {
				return err
			}
			networkManifest, err = kit.NetworkManifest(p.Spec.Kit)
			return err
		}},
		{"assemble root", func(ctx context.Context) error {
			t, err := rootfs.Assemble(ctx, run, p, req.SourceDir, baseTar, work)
			if err != nil {
				return err
			}
			if p.Spec.Kit != nil {
				pause, err := kit.PauseImage(imageRefs)
				if err != nil {
					return err
				}
				// The images are built here, not in the kit step:
				// kube-proxy's carries the node's own iptables.
				imgs, err := kb.Images(ctx, p.Spec.Kit, imageRefs, t.Root)
				if err != nil {
					return err
				}
				archive, entries, err := kb.Archive(ctx, imgs)
				if err != nil {
					return err
				}
				sources := map[string]string{}
				for _, img := range imgs {
					sources[img.Ref] = img.Source
				}
				for _, e := range entries {
					baked = append(baked, manifest.Image{Ref: e.Ref, Digest: e.Digest, Source: sources[e.Ref]})
				}
				cfg := kit.Config{SandboxImage: pause, ImageArchive: archive, Images: entries, NetworkManifest: networkManifest}
				if err := kit.Install(t, artifacts, cfg); err != nil {
					return fmt.Errorf("installing the kit: %w", err)
				}
				unit, err := os.ReadFile(filepath.Join(req.SourceDir, "systemd", FirstbootUnit))
				if err != nil {
					return fmt.Errorf("the first-boot unit: %w", err)
				}
				if err := t.WriteFile("/usr/lib/systemd/system/"+FirstbootUnit, unit, 0o644, "systemd:"+FirstbootUnit); err != nil {
					return err
				}
				if err := rootfs.Enable(ctx, run, t, append(kit.Units, FirstbootUnit)...); err != nil {
					return err
				}
			}
			tree, err = rootfs.Finish(t, work)
			return err
		}},
		{"bootloader", func(ctx context.Context) error {
			cfg := bootloader.Config{
				Title:    fmt.Sprintf("nodebake %s (Debian %s, Linux %s)", p.Metadata.Name, p.Spec.Base.Suite, tree.KernelVersion),
				RootDir:  tree.Root,
				Kernel:   tree.Kernel,
				Initrd:   tree.Initrd,
				RootUUID: layout.Part(diskimage.RoleRootA).GUID, StateUUID: layout.Part(diskimage.RoleState).GUID,
				Cmdline: p.Spec.Kernel.Cmdline,
			}
			files, err := bootloader.Files(cfg)
			if err != nil {
				return err
			}
			for _, f := range files {
				esp = append(esp, diskimage.ESPFile{Path: f.Path, Data: f.Data})
			}
			cmdline = bootloader.Cmdline(cfg)
			// The kernel and initramfs boot from the ESP; the root keeps
			// only their modules and config.
			return errors.Join(os.Remove(tree.Kernel), os.Remove(tree.Initrd))
		}},
		{"manifest", func(ctx context.Context) error {
			m := &manifest.Manifest{
				SchemaVersion: manifest.SchemaVersion, Name: p.Metadata.Name,
				ProfileDigest: digest, Suite: p.Spec.Base.Suite, BaseKey: baseSpec.Key(),
				SourceDateEpoch: epoch.Unix(), KernelVersion: tree.KernelVersion, Cmdline: cmdline,
				Disk: layout, Sysctls: p.Spec.Node.Sysctls, Modules: p.Spec.Node.Modules,
				EnabledUnits: rootfs.EnabledUnits(tree.Root), Packages: tree.Packages, Files: tree.Added,
			}
			if p.Spec.Kit != nil {
				m.Kit = &manifest.Kit{KubernetesVersion: p.Spec.Kit.KubernetesVersion, Images: baked}
				for _, a := range artifacts {
					m.Kit.Components = append(m.Kit.Components, a.Record())
				}
			}
			data := m.Marshal()
			dest := filepath.Join(tree.Root, manifest.Path)
			if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(dest, data, 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(work, "manifest.json"), data, 0o644)
		}},
		{"lock", func(ctx context.Context) error {
			resolved, err = resolvedLock(ctx, p, kb, tree, artifacts, baked)
			if err != nil || !req.Locked {
				return err
			}
			return lock.Compare(req.Lock, resolved)
		}},
		{"fix timestamps", func(ctx context.Context) error {
			return errors.Join(rootfs.ClampTimes(tree.Root, epoch), rootfs.ClampTimes(tree.State, epoch))
		}},
		{"write disk", func(ctx context.Context) error {
			return diskimage.Write(ctx, run, rawTmp, layout, diskimage.Contents{
				RootDir: tree.Root, StateDir: tree.State, ESP: esp, Epoch: epoch,
			})
		}},
		{"publish", func(ctx context.Context) error {
			return publish(ctx, run, work, rawTmp, out)
		}},
	}
	if req.LockOnly {
		// Everything up to the lock: every input is resolved, and no
		// disk is written.
		last := slices.IndexFunc(steps, func(s step) bool { return s.name == "lock" })
		steps = steps[:last+1]
	}
	if err := runSteps(ctx, log, steps); err != nil {
		return nil, err
	}
	out.Lock = resolved
	return &out, nil
}

// resolvedLock records every input the build resolved.
func resolvedLock(ctx context.Context, p *profile.Profile, kb *kit.Builder, tree *rootfs.Result, arts []kit.Artifact, baked []manifest.Image) (*lock.Lock, error) {
	l := &lock.Lock{APIVersion: lock.APIVersion, Kind: lock.Kind, Profile: p.Metadata.Name, Suite: p.Spec.Base.Suite}
	for _, pkg := range tree.Packages {
		l.Packages = append(l.Packages, lock.Package{Name: pkg.Name, Version: pkg.Version})
	}
	if p.Spec.Kit == nil {
		return l, nil
	}
	goVersion, err := kb.GoVersion(ctx)
	if err != nil {
		return nil, err
	}
	l.Go = goVersion
	for _, m := range kb.Modules() {
		l.Modules = append(l.Modules, lock.Module{Path: m.Path, Version: m.Version, Sum: m.Sum})
	}
	for _, d := range kb.Downloads() {
		l.Downloads = append(l.Downloads, lock.Download{Component: d.Component, Source: d.Source, SHA256: d.SHA256})
	}
	for _, a := range arts {
		if a.Name == "firstboot" {
			continue // this project's own program, not an input
		}
		l.Components = append(l.Components, lock.Component{Name: a.Name, Source: a.Source, SHA256: a.SHA256})
	}
	for _, img := range baked {
		l.Images = append(l.Images, lock.Image{Ref: img.Ref, Digest: img.Digest, Source: img.Source})
	}
	return l, nil
}

// publish converts and moves the finished outputs into place. Each is
// first complete under a temporary name in the output folder, then renamed.
func publish(ctx context.Context, run *command.Runner, work, raw string, out Result) error {
	if err := os.MkdirAll(filepath.Dir(out.Manifest), 0o755); err != nil {
		return err
	}
	// A build killed while publishing leaves its temporary files behind;
	// they are never at an output path, and are cleared here.
	for _, p := range []string{out.Raw, out.Qcow2} {
		if p != "" {
			os.Remove(atomicfile.TempPath(p))
		}
	}
	type move struct{ tmp, dst string }
	var moves []move
	defer func() {
		for _, m := range moves {
			os.Remove(m.tmp)
		}
	}()
	if out.Qcow2 != "" {
		tmp := atomicfile.TempPath(out.Qcow2)
		if err := diskimage.ConvertQcow2(ctx, run, raw, tmp); err != nil {
			return err
		}
		moves = append(moves, move{tmp, out.Qcow2})
	}
	if out.Raw != "" {
		tmp := atomicfile.TempPath(out.Raw)
		if err := os.Rename(raw, tmp); err != nil {
			// The work folder is on another filesystem: copy, keeping holes.
			if err := diskimage.CopySparse(ctx, run, raw, tmp); err != nil {
				return err
			}
		}
		moves = append(moves, move{tmp, out.Raw})
	}
	data, err := os.ReadFile(filepath.Join(work, "manifest.json"))
	if err != nil {
		return err
	}
	for _, m := range moves {
		if err := atomicfile.Commit(m.tmp, m.dst); err != nil {
			return err
		}
	}
	moves = nil
	// The manifest goes last: when it is there, so is its image.
	return atomicfile.Write(out.Manifest, data, 0o644)
}
