package kit

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nodebake/nodebake/internal/images"
	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/profile"
)

// Image is one container image of the kit, ready to be built or
// fetched.
type Image struct {
	Ref    string
	Source string // such as go:k8s.io/kubernetes@v1.37.2
	Input  images.Input
}

// imagePath is the PATH in every built image; kubeadm's manifests name
// commands (kube-apiserver, etcd) without a folder.
const imagePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// imageRecipe is how an image that kubeadm names is built from Go sources.
type imageRecipe struct {
	recipe
	// moduleVersion maps the image's tag to its module's version.
	moduleVersion func(kubeVersion, tag string) (string, error)
	entrypoint    []string
	// iptables adds the iptables (nf_tables) userspace from the node's root.
	iptables bool
	// kubernetes: kubeadm lists the image, tagged with its own version,
	// for every cluster (kube-apiserver and the rest).
	kubernetes bool
}

// sameAsKubernetes is the module version of the images kubeadm tags with
// the Kubernetes version itself.
func sameAsKubernetes(kubeVersion, tag string) (string, error) {
	if tag != kubeVersion {
		return "", fmt.Errorf("tag %s is not the Kubernetes version %s", tag, kubeVersion)
	}
	return tag, nil
}

var etcdTagRE = regexp.MustCompile(`^(\d+\.\d+\.\d+)-\d+$`)

func kubernetesImage(cmd string, iptables bool) imageRecipe {
	r := kubernetesRecipe(cmd)
	r.dir = "/usr/local/bin"
	return imageRecipe{recipe: r, moduleVersion: sameAsKubernetes, iptables: iptables, kubernetes: true}
}

// imageRecipes are keyed by the image's repository below the registry.
var imageRecipes = map[string]imageRecipe{
	"kube-apiserver":          kubernetesImage("kube-apiserver", false),
	"kube-controller-manager": kubernetesImage("kube-controller-manager", false),
	"kube-scheduler":          kubernetesImage("kube-scheduler", false),
	"kube-proxy":              kubernetesImage("kube-proxy", true),
	// etcd's images are tagged 3.7.0-0: the etcd version and an image
	// revision.
	"etcd": {
		recipe: recipe{
			module:   "go.etcd.io/etcd/server/v3",
			binaries: []binary{{"", "etcd"}},
			dir:      "/usr/local/bin",
			ldflags:  func(string, time.Time) []string { return nil },
		},
		moduleVersion: func(_, tag string) (string, error) {
			m := etcdTagRE.FindStringSubmatch(tag)
			if m == nil {
				return "", fmt.Errorf("etcd tag %q is not VERSION-REVISION", tag)
			}
			return "v" + m[1], nil
		},
	},
	"coredns/coredns": {
		recipe: recipe{
			module:   "github.com/coredns/coredns",
			binaries: []binary{{"", "coredns"}},
			dir:      "",
			ldflags:  func(string, time.Time) []string { return nil },
		},
		moduleVersion: func(_, tag string) (string, error) {
			if !strings.HasPrefix(tag, "v") {
				return "", fmt.Errorf("coredns tag %q is not a version", tag)
			}
			return tag, nil
		},
		entrypoint: []string{"/coredns"},
	},
	// agnhost, Kubernetes' own end-to-end test image (DNS lookups,
	// connections, a web server), from the pinned Kubernetes module: a
	// profile adds it as an extra image to test a cluster offline.
	"e2e-test-images/agnhost": {
		recipe: recipe{
			module:   "k8s.io/kubernetes",
			binaries: []binary{{"test/images/agnhost", "agnhost"}},
			dir:      "",
			ldflags:  kubernetesLdflags,
			replaces: kubernetesReplaces,
		},
		moduleVersion: func(kubeVersion, _ string) (string, error) { return kubeVersion, nil },
		entrypoint:    []string{"/agnhost"},
	},
	// flanneld and the program its DaemonSet's init container runs to
	// write the CNI configuration; flanneld writes iptables rules. The
	// Tencent Cloud VPC backend is left out of flanneld: its SDK is not on
	// the Go module proxy. The other backends (vxlan, the default, host-gw,
	// ipip, ipsec, udp, wireguard, extension) stay.
	"flannel-io/flannel": {
		recipe: recipe{
			module:   "github.com/flannel-io/flannel",
			binaries: []binary{{"", "flanneld"}, {"cmd/install_conf", "install-conf"}},
			// The udp backend's proxy is C: built with cgo and linked
			// statically, as upstream does.
			cgo:  true,
			tags: []string{"netgo", "osusergo"},
			dropImports: map[string][]string{
				"flanneld": {"github.com/flannel-io/flannel/pkg/backend/tencentvpc"},
			},
			dir: "/opt/bin",
			ldflags: func(v string, _ time.Time) []string {
				return []string{"-X", "github.com/flannel-io/flannel/pkg/version.Version=" + v}
			},
		},
		moduleVersion: func(_, tag string) (string, error) { return tag, nil },
		iptables:      true,
	},
}

// FlannelImage is the reference of flannel's image at version, the name
// upstream's manifest uses.
func FlannelImage(version string) string { return "ghcr.io/flannel-io/flannel:" + version }

// splitRef splits registry.k8s.io/coredns/coredns:v1.14.6 into its
// repository below the registry and its tag.
func splitRef(ref string) (repo, tag string, err error) {
	colon := strings.LastIndex(ref, ":")
	slash := strings.Index(ref, "/")
	if colon < 0 || slash < 0 || colon < slash {
		return "", "", fmt.Errorf("image %q has no registry and tag", ref)
	}
	return ref[slash+1 : colon], ref[colon+1:], nil
}

// Images prepares every image in refs (as kubeadm and the pod network
// name them) and every extra image k lists: images built here have their
// programs built and their specs ready; the others are pinned to a digest
// from the profile or the lock (or, for `imagebuild lock`, resolved now).
// root is the node's assembled root, where the iptables userspace in
// kube-proxy's and flannel's images comes from.
func (b *Builder) Images(ctx context.Context, k *profile.Kit, refs []string, root string) ([]Image, error) {
	goVersion, err := b.goVersion(ctx)
	if err != nil {
		return nil, err
	}
	sources := map[string]profile.ImageSource{}
	all := append([]string(nil), refs...)
	for _, s := range k.Images {
		// An image kubeadm needs must have the tag it wants: a
		// different one would sit unused while kubeadm pulled its own.
		for _, ref := range refs {
			repo := ref[:strings.LastIndex(ref, ":")+1]
			if strings.HasPrefix(s.Ref, repo) && !strings.Contains(s.Ref[len(repo):], "/") && s.Ref != ref {
				return nil, fmt.Errorf("image %s: kubeadm %s and its pod network want %s", s.Ref, k.KubernetesVersion, ref)
			}
		}
		sources[s.Ref] = s
		if !slices.Contains(all, s.Ref) {
			all = append(all, s.Ref)
		}
	}
	var gos []goComponent
	for _, ref := range all {
		if src, ok := sources[ref]; ok && src.Source != profile.ImageSourceBuild {
			continue
		}
		if c, ok, err := imageComponent(k.KubernetesVersion, ref); err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		} else if ok {
			gos = append(gos, c)
		}
	}
	if err := b.startTally("kit images", goVersion, gos); err != nil {
		return nil, err
	}
	defer func() { b.tally = nil }()
	var out []Image
	for _, ref := range all {
		src, ok := sources[ref]
		if !ok {
			src = profile.ImageSource{Ref: ref, Source: profile.ImageSourceBuild}
		}
		var img Image
		if src.Source == profile.ImageSourceBuild {
			img, err = b.image(ctx, k.KubernetesVersion, ref, root, goVersion)
		} else {
			img, err = b.fetchedImage(ctx, k, src)
		}
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		out = append(out, img)
	}
	return out, nil
}

// fetchedImage is an image pulled from a registry or read from a layout,
// pinned to a digest.
func (b *Builder) fetchedImage(ctx context.Context, k *profile.Kit, src profile.ImageSource) (Image, error) {
	in := images.Input{Ref: src.Ref, Digest: src.Digest}
	if src.Source == profile.ImageSourceOCILayout {
		in.Layout = src.Path
	} else {
		in.Registry = k.RegistryMirror
	}
	if in.Digest == "" && b.ImagePins != nil {
		in.Digest = b.ImagePins(src.Ref)
	}
	if in.Digest == "" {
		if !b.Resolve {
			return Image{}, images.ErrUnpinned
		}
		d, err := images.Resolve(ctx, in, images.Options{Transport: b.transport()})
		if err != nil {
			return Image{}, err
		}
		in.Digest = d
	}
	return Image{Ref: src.Ref, Source: in.Source(), Input: in}, nil
}

func (b *Builder) transport() http.RoundTripper {
	if b.HTTP != nil {
		return b.HTTP.Transport
	}
	return nil
}

func (b *Builder) image(ctx context.Context, kubeVersion, ref, root, goVersion string) (Image, error) {
	repo, tag, err := splitRef(ref)
	if err != nil {
		return Image{}, err
	}
	spec := images.Spec{Ref: ref, Env: []string{imagePath}, Epoch: b.Epoch}
	if repo == "pause" {
		path, err := b.Pause(ctx, kubeVersion, tag)
		if err != nil {
			return Image{}, err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return Image{}, err
		}
		// As upstream: the program alone, run as nobody.
		spec.Files = []images.File{{Path: "/pause", Data: data, Mode: 0o755}}
		spec.Entrypoint = []string{"/pause"}
		spec.User = "65535:65535"
		return Image{Ref: ref, Source: "c:k8s.io/kubernetes@" + kubeVersion + "/build/pause", Input: images.Input{Ref: ref, Spec: &spec}}, nil
	}
	c, _, err := imageComponent(kubeVersion, ref)
	if err != nil {
		return Image{}, err
	}
	r := imageRecipes[repo]
	arts, err := b.buildGo(ctx, c.name, c.r, c.version, goVersion)
	if err != nil {
		return Image{}, err
	}
	for _, a := range arts {
		data, err := os.ReadFile(a.Path)
		if err != nil {
			return Image{}, err
		}
		spec.Files = append(spec.Files, images.File{Path: a.Dest, Data: data, Mode: 0o755})
	}
	if r.iptables {
		files, err := IptablesFiles(root)
		if err != nil {
			return Image{}, fmt.Errorf("iptables userspace: %w", err)
		}
		spec.Files = append(spec.Files, files...)
	}
	spec.Entrypoint = r.entrypoint
	return Image{Ref: ref, Source: "go:" + r.module + "@" + c.version, Input: images.Input{Ref: ref, Spec: &spec}}, nil
}

// knownImageComponents are the Go components of the images known before
// kubeadm is built to list them: Kubernetes' own, tagged with its
// version, and the extras k builds. The kit compiles their programs with
// its own, in one batch where they share a module.
func knownImageComponents(k *profile.Kit) ([]goComponent, error) {
	if k.KubernetesVersion == "" {
		return nil, nil
	}
	// Kubernetes' images the profile takes from elsewhere.
	elsewhere := map[string]bool{}
	for _, s := range k.Images {
		if repo, tag, err := splitRef(s.Ref); err == nil && s.Source != profile.ImageSourceBuild && tag == k.KubernetesVersion {
			elsewhere[repo] = true
		}
	}
	var out []goComponent
	for _, repo := range slices.Sorted(maps.Keys(imageRecipes)) {
		if r := imageRecipes[repo]; r.kubernetes && !elsewhere[repo] {
			out = append(out, goComponent{"image:" + repo, r.recipe, k.KubernetesVersion})
		}
	}
	for _, s := range k.Images {
		if s.Source != profile.ImageSourceBuild {
			continue
		}
		c, ok, err := imageComponent(k.KubernetesVersion, s.Ref)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.Ref, err)
		}
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// imageComponent is the Go component that builds an image's programs;
// ok is false for pause, compiled from C.
func imageComponent(kubeVersion, ref string) (goComponent, bool, error) {
	repo, tag, err := splitRef(ref)
	if err != nil {
		return goComponent{}, false, err
	}
	if repo == "pause" {
		return goComponent{}, false, nil
	}
	r, ok := imageRecipes[repo]
	if !ok {
		return goComponent{}, false, fmt.Errorf("no recipe builds %s; give it another source", repo)
	}
	version, err := r.moduleVersion(kubeVersion, tag)
	if err != nil {
		return goComponent{}, false, err
	}
	return goComponent{"image:" + repo, r.recipe, version}, true, nil
}

// Archive is one archive of baked images (one of manifest.Archives),
// built and cached.
type Archive struct {
	Name    string
	Path    string // the OCI archive, in the cache
	Entries []images.Entry
}

// controlPlaneRepos are the repositories of the images of kubeadm's
// static pods, below the registry.
var controlPlaneRepos = map[string]bool{
	"kube-apiserver": true, "kube-controller-manager": true, "kube-scheduler": true, "etcd": true,
}

// nodeRepos are the repositories of the images every node runs before
// it can be Ready: the pods' sandbox, kube-proxy's DaemonSet and the pod
// network's.
var nodeRepos = map[string]bool{
	"pause": true, "kube-proxy": true, "flannel-io/flannel": true,
}

// archiveFor is the archive an image goes in (refs are kubeadm's and
// the pod network's; an extra image that only shares a repository's
// name is not one of them): the control plane's for the images of
// kubeadm's static pods, the node's for what a node runs before it is
// Ready, the workloads' for every other.
func archiveFor(ref string, refs []string) string {
	repo, _, err := splitRef(ref)
	switch {
	case err != nil || !slices.Contains(refs, ref):
		return manifest.ArchiveWorkloads
	case controlPlaneRepos[repo]:
		return manifest.ArchiveControlPlane
	case nodeRepos[repo]:
		return manifest.ArchiveNode
	}
	return manifest.ArchiveWorkloads
}

// Archives builds the images into one OCI archive for each archive they
// go in (archiveFor; refs are kubeadm's and the pod network's), each
// cached by every input of its images, in manifest.Archives' order.
func (b *Builder) Archives(ctx context.Context, imgs []Image, refs []string) ([]Archive, error) {
	var out []Archive
	for _, name := range manifest.Archives {
		var some []Image
		for _, img := range imgs {
			if archiveFor(img.Ref, refs) == name {
				some = append(some, img)
			}
		}
		if len(some) == 0 {
			continue
		}
		path, entries, err := b.archive(ctx, name, some)
		if err != nil {
			return nil, fmt.Errorf("the %s images' archive: %w", name, err)
		}
		out = append(out, Archive{Name: name, Path: path, Entries: entries})
	}
	return out, nil
}

// archive builds imgs into one OCI archive, cached by every input of
// every image, and returns its path and what it holds.
func (b *Builder) archive(ctx context.Context, name string, imgs []Image) (string, []images.Entry, error) {
	inputs := make([]images.Input, len(imgs))
	for i, img := range imgs {
		inputs[i] = img.Input
	}
	key := images.Key(inputs, b.Epoch)
	path, ok, err := b.Cache.Lookup("images", key)
	if err != nil {
		return "", nil, err
	}
	if !ok {
		start := time.Now()
		tmp, err := b.Cache.TempPath("images", key)
		if err != nil {
			return "", nil, err
		}
		f, err := os.Create(tmp)
		if err != nil {
			return "", nil, err
		}
		_, err = images.BuildArchive(ctx, f, inputs, b.Epoch, images.Options{Transport: b.transport()})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp)
			return "", nil, err
		}
		if path, err = b.Cache.Commit("images", key, tmp); err != nil {
			return "", nil, err
		}
		b.Log.Info("built image archive", "archive", name, "images", len(imgs), "seconds", time.Since(start).Round(time.Second).Seconds())
	}
	entries, err := images.ReadArchive(path)
	if err != nil {
		return "", nil, err
	}
	if len(entries) != len(imgs) {
		return "", nil, fmt.Errorf("%s holds %d images, not %d", path, len(entries), len(imgs))
	}
	return path, entries, nil
}
