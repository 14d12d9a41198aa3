package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Input is one image of an archive and where it comes from: built from a
// Spec, pulled from a registry by digest, or read from an OCI layout folder
// or an image tarball (`docker save`).
type Input struct {
	Ref  string // the name the node knows it by, such as registry.k8s.io/etcd:3.7.0-0
	Spec *Spec  // build

	// Digest pins a pulled or read image's manifest.
	Digest string
	// Registry pulls Ref's repository from this host instead of its own:
	// a mirror.
	Registry string
	// Layout is an OCI layout folder or an image tarball.
	Layout string
}

// Source is how the lock and the manifest name where the image came from.
func (in Input) Source() string {
	switch {
	case in.Spec != nil:
		return "build"
	case in.Layout != "":
		return "oci-layout:" + in.Layout
	default:
		repo, err := in.repository()
		if err != nil {
			return "registry:" + in.Ref
		}
		return "registry:" + repo.Name()
	}
}

// repository is where Ref is pulled from: its own registry or the mirror.
func (in Input) repository() (name.Repository, error) {
	tag, err := name.NewTag(in.Ref, name.StrictValidation)
	if err != nil {
		return name.Repository{}, fmt.Errorf("image reference %q: %w", in.Ref, err)
	}
	repo := tag.Context()
	if in.Registry != "" {
		reg, err := name.NewRegistry(in.Registry)
		if err != nil {
			return name.Repository{}, fmt.Errorf("registry %q: %w", in.Registry, err)
		}
		repo.Registry = reg
	}
	return repo, nil
}

// ErrUnpinned is returned for a fetched image with no digest.
var ErrUnpinned = errors.New("no digest pins it: set digest in the profile or run `imagebuild lock`")

// Options are what fetching images needs.
type Options struct {
	// Transport reaches registries; nil is http.DefaultTransport.
	Transport http.RoundTripper
}

func (o Options) remote(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx)}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	return opts
}

// Resolve finds the digest an unpinned registry or layout input has now,
// for `imagebuild lock`.
func Resolve(ctx context.Context, in Input, o Options) (string, error) {
	if in.Spec != nil {
		img, err := Build(*in.Spec)
		if err != nil {
			return "", err
		}
		return Digest(img)
	}
	if in.Layout != "" {
		img, err := fromLayout(in)
		if err != nil {
			return "", err
		}
		return Digest(img)
	}
	repo, err := in.repository()
	if err != nil {
		return "", err
	}
	tag, _ := name.NewTag(in.Ref, name.StrictValidation)
	desc, err := remote.Head(repo.Tag(tag.TagStr()), o.remote(ctx)...)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", in.Ref, err)
	}
	return desc.Digest.String(), nil
}

// load builds or fetches the image of in and checks it has its pinned
// digest.
func load(ctx context.Context, in Input, o Options) (v1.Image, error) {
	var (
		img v1.Image
		err error
	)
	switch {
	case in.Spec != nil:
		return Build(*in.Spec)
	case in.Digest == "":
		return nil, fmt.Errorf("image %s: %w", in.Ref, ErrUnpinned)
	case in.Layout != "":
		img, err = fromLayout(in)
	default:
		var repo name.Repository
		if repo, err = in.repository(); err == nil {
			// Pulled by digest: the registry cannot substitute other
			// content, and every blob is checked as it is read.
			img, err = remote.Image(repo.Digest(in.Digest), o.remote(ctx)...)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", in.Ref, err)
	}
	d, err := Digest(img)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", in.Ref, err)
	}
	if d != in.Digest {
		return nil, fmt.Errorf("image %s: digest is %s, but %s is pinned", in.Ref, d, in.Digest)
	}
	return img, nil
}

// fromLayout reads in's image from an OCI layout folder (by the pinned
// digest, else by its reference annotation) or an image tarball.
func fromLayout(in Input) (v1.Image, error) {
	fi, err := os.Stat(in.Layout)
	if err != nil {
		return nil, err
	}
	tag, err := name.NewTag(in.Ref, name.StrictValidation)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return tarball.ImageFromPath(in.Layout, &tag)
	}
	p, err := layout.FromPath(in.Layout)
	if err != nil {
		return nil, err
	}
	index, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := index.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if in.Digest != "" && d.Digest.String() == in.Digest {
			return p.Image(d.Digest)
		}
	}
	for _, d := range m.Manifests {
		ann := d.Annotations
		if in.Digest == "" && (ann["io.containerd.image.name"] == tag.String() || ann["org.opencontainers.image.ref.name"] == tag.TagStr() || ann["org.opencontainers.image.ref.name"] == tag.String()) {
			return p.Image(d.Digest)
		}
	}
	if in.Digest != "" {
		return nil, fmt.Errorf("%s holds no image %s", in.Layout, in.Digest)
	}
	return nil, fmt.Errorf("%s holds no image named %s", in.Layout, in.Ref)
}
