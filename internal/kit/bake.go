package kit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nodebake/nodebake/internal/lock"
	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/profile"
)

// FirstbootUnit is the first-boot agent's unit, under systemd/ in the
// source folder, baked and enabled in every image with a kit.
const FirstbootUnit = "firstboot.service"

// Into is where Bake installs the kit, and what it installs from.
type Into struct {
	// Tree is the image's root being assembled.
	Tree Tree
	// Root is a folder holding the node's root filesystem (the tree's
	// own, in a build): kube-proxy's and flannel's images take their
	// iptables from it, so that the pods and the node write the same
	// tables.
	Root string
	// SourceDir is the nodebake checkout: the first-boot agent's
	// sources and its unit.
	SourceDir string
}

// Baked is what Bake put into an image.
type Baked struct {
	// Programs are the kit's programs, the first-boot agent last.
	Programs []Artifact
	// Images are the baked images, as the manifest lists them.
	Images []manifest.Image
	// Units are the units the image must enable.
	Units []string
	// Lock is every input the kit resolved.
	Lock lock.Kit
}

// Bake is the kit's one entry point. It builds or fetches the programs of
// k and the first-boot agent, builds or fetches every image kubeadm and
// the pod network need and the profile's extras, writes them as
// archives by the nodes that need them (Archives), and installs all of it with its configuration and units into
// the tree. It returns what went in, for the manifest and the lock.
func (b *Builder) Bake(ctx context.Context, k *profile.Kit, into Into) (*Baked, error) {
	t := into.Tree
	arts, err := b.Build(ctx, k)
	if err != nil {
		return nil, err
	}
	agent, err := b.Firstboot(ctx, into.SourceDir)
	if err != nil {
		return nil, err
	}
	arts = append(arts, agent)
	refs, err := ImageRefs(ctx, b.Run, arts, k)
	if err != nil {
		return nil, err
	}
	network, err := NetworkManifest(k)
	if err != nil {
		return nil, err
	}
	pause, err := PauseImage(refs)
	if err != nil {
		return nil, err
	}
	imgs, err := b.Images(ctx, k, refs, into.Root)
	if err != nil {
		return nil, err
	}
	archives, err := b.Archives(ctx, imgs, refs)
	if err != nil {
		return nil, err
	}
	cfg := Config{SandboxImage: pause, Archives: archives, NetworkManifest: network}
	if err := Install(t, arts, cfg); err != nil {
		return nil, fmt.Errorf("installing the kit: %w", err)
	}
	if err := b.seed(ctx, t, arts, archives); err != nil {
		return nil, err
	}
	unit, err := os.ReadFile(filepath.Join(into.SourceDir, "systemd", FirstbootUnit))
	if err != nil {
		return nil, fmt.Errorf("the first-boot unit: %w", err)
	}
	if err := t.WriteFile("/usr/lib/systemd/system/"+FirstbootUnit, unit, 0o644, "systemd:"+FirstbootUnit); err != nil {
		return nil, err
	}

	baked := &Baked{Programs: arts, Units: append(append([]string(nil), Units...), FirstbootUnit)}
	sources := map[string]string{}
	for _, img := range imgs {
		sources[img.Ref] = img.Source
	}
	for _, a := range archives {
		for _, e := range a.Entries {
			baked.Images = append(baked.Images, manifest.Image{Ref: e.Ref, Digest: e.Digest, Source: sources[e.Ref], Archive: a.Name})
		}
	}
	// In reference order, whatever archive each is in.
	slices.SortFunc(baked.Images, func(x, y manifest.Image) int { return strings.Compare(x.Ref, y.Ref) })
	if baked.Lock, err = b.lock(ctx, baked); err != nil {
		return nil, err
	}
	return baked, nil
}

// lock records what resolved the kit's inputs: the toolchain, the
// modules, the downloads, each program's sha256 and each image's digest.
func (b *Builder) lock(ctx context.Context, baked *Baked) (lock.Kit, error) {
	goVersion, err := b.goVersion(ctx)
	if err != nil {
		return lock.Kit{}, err
	}
	l := lock.Kit{Go: goVersion, Modules: b.Modules(), Downloads: b.Downloads()}
	for _, a := range baked.Programs {
		if a.Name == "firstboot" {
			continue // this project's own program, not an input
		}
		l.Components = append(l.Components, lock.Component{Name: a.Name, Source: a.Source, SHA256: a.SHA256})
	}
	for _, img := range baked.Images {
		l.Images = append(l.Images, lock.Image{Ref: img.Ref, Digest: img.Digest, Source: img.Source})
	}
	return l, nil
}
