package nodecheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/sandbox"
)

// Image is a nodebake raw image read offline as a Target: its manifest
// says what it bakes, and its own kubeadm, copied out, judges the config.
// That kubeadm is the image's, not this host's, so it runs confined
// (package sandbox): no network, none of the host's files, not as root,
// and bounded in memory and time.
type Image struct {
	name string
	m    *manifest.Manifest
	dir  string // holds the kubeadm copy; Scratch
	bin  string // the copy, in dir
}

// maxKubeadm bounds the kubeadm read out of an image (v1.37's is 75 MB).
const maxKubeadm = 512 << 20

// inSandbox are where the image's kubeadm and the config it checks are,
// as it sees them.
const (
	sandboxKubeadm = "/usr/bin/kubeadm"
	sandboxConfig  = "/run/kubeadm/config.yaml"
)

var _ Target = (*Image)(nil)

// OpenImage reads the image at path. Close removes what it copied out.
func OpenImage(path string) (*Image, error) {
	img, err := diskimage.Open(path)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	data, err := img.ReadRootFile(manifest.Path, manifest.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Kit == nil {
		return nil, fmt.Errorf("%s has no Kubernetes kit", path)
	}
	bin, err := img.ReadRootFile("/usr/bin/kubeadm", maxKubeadm)
	if err != nil {
		return nil, fmt.Errorf("%s: reading its kubeadm: %w", path, err)
	}
	dir, err := os.MkdirTemp("", "nodebake-validate-")
	if err != nil {
		return nil, err
	}
	binPath := filepath.Join(dir, "kubeadm")
	if err := os.WriteFile(binPath, bin, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Image{name: filepath.Base(path), m: m, dir: dir, bin: binPath}, nil
}

// kubeadm is the image's kubeadm in a sandbox that also holds files.
func (i *Image) kubeadm(files ...sandbox.File) *kubeadm.Kubeadm {
	sb := &sandbox.Sandbox{
		Runner: &command.Runner{},
		Files:  append([]sandbox.File{{Host: i.bin, Path: sandboxKubeadm, Exec: true}}, files...),
	}
	return &kubeadm.Kubeadm{Run: sb, Bin: sandboxKubeadm}
}

// Close removes the image's kubeadm copy.
func (i *Image) Close() error { return os.RemoveAll(i.dir) }

// Scratch is a private folder for Input.Scratch.
func (i *Image) Scratch() string { return i.dir }

// Name is the image file's name.
func (i *Image) Name() string { return i.name }

// BakedVersion is the kit's version, from the manifest.
func (i *Image) BakedVersion(context.Context) (string, error) {
	return i.m.Kit.KubernetesVersion, nil
}

// ValidateKubeadm runs the image's own kubeadm config validate.
func (i *Image) ValidateKubeadm(ctx context.Context, path string) error {
	return i.kubeadm(sandbox.File{Host: path, Path: sandboxConfig}).Validate(ctx, sandboxConfig)
}

// MissingImages asks the image's kubeadm which images version needs and
// finds them in the manifest's baked images.
func (i *Image) MissingImages(ctx context.Context, version string) ([]string, error) {
	refs, err := i.kubeadm().Images(ctx, version)
	if err != nil {
		return nil, fmt.Errorf("listing kubeadm's images: %w", err)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%w: %s's kubeadm lists no images for %s", ErrNoImages, i.name, version)
	}
	var missing []string
	for _, ref := range refs {
		if !slices.ContainsFunc(i.m.Kit.Images, func(b manifest.Image) bool { return b.Ref == ref }) {
			missing = append(missing, ref)
		}
	}
	return missing, nil
}
