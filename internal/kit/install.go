package kit

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"os"
	"strings"
	"text/template"

	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/profile"
)

//go:embed files
var files embed.FS

// Tree is where the kit is installed: the image's root being assembled.
type Tree interface {
	WriteFile(path string, data []byte, mode os.FileMode, source string) error
	MkdirAll(path string) error
	// Path is where path of the image is on the build host.
	Path(path string) string
}

// Units are the kit's units, enabled in every image with a kit. The
// control plane's images are imported by their own unit, which is not
// enabled: the agent starts it for a control plane only.
var Units = []string{
	"containerd.service", manifest.ImportUnit(manifest.ArchiveNode), manifest.ImportUnit(manifest.ArchiveWorkloads),
	"kubelet.service", manifest.CNIUnit, cniPathUnit,
}

// cniPathUnit starts manifest.CNIUnit on every change of /etc/cni/net.d.
const cniPathUnit = "nodebake-cni.path"

// Config is what the kit's configuration files are rendered from.
type Config struct {
	SandboxImage string
	// Archives are the baked images' OCI archives (see
	// images.WriteArchive), each with the references and digests in it.
	Archives []Archive
	// NetworkManifest is the pod network's rendered manifest, if any.
	NetworkManifest []byte
}

// CNIDir is the folder containerd loads CNI configs from.
func (Config) CNIDir() string { return manifest.CNIDir }

// ImagesDir is where the baked image archives are in the image.
const ImagesDir = manifest.ImagesDir

// Install writes the artifacts and the kit's configuration into t.
func Install(t Tree, arts []Artifact, cfg Config) error {
	for _, a := range arts {
		data, err := os.ReadFile(a.Path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", a.Name, err)
		}
		if err := t.WriteFile(a.Dest, data, 0o755, "kit:"+a.Source); err != nil {
			return err
		}
	}
	containerdConfig, err := render("containerd-config.toml.tmpl", cfg)
	if err != nil {
		return err
	}
	cniUnit, err := render("nodebake-cni.service.tmpl", cfg)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name, dest string
		data       []byte
	}{
		{"containerd-config.toml.tmpl", "/etc/containerd/config.toml", containerdConfig},
		{"containerd.service", "/usr/lib/systemd/system/containerd.service", nil},
		{"kubelet.service", "/usr/lib/systemd/system/kubelet.service", nil},
		{"10-kubeadm.conf", "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", nil},
		{"crictl.yaml", "/etc/crictl.yaml", nil},
		{"nodebake-images.service", "/usr/lib/systemd/system/" + manifest.ImportUnit(manifest.ArchiveNode), nil},
		{"nodebake-images-workloads.service", "/usr/lib/systemd/system/" + manifest.ImportUnit(manifest.ArchiveWorkloads), nil},
		{"nodebake-images-control-plane.service", "/usr/lib/systemd/system/" + manifest.ImportUnit(manifest.ArchiveControlPlane), nil},
		{"import-images", "/usr/lib/nodebake/import-images", nil},
		{"nodebake-cni.service.tmpl", "/usr/lib/systemd/system/" + manifest.CNIUnit, cniUnit},
		{"nodebake-cni.path", "/usr/lib/systemd/system/" + cniPathUnit, nil},
		{"sync-cni", "/usr/lib/nodebake/sync-cni", nil},
	} {
		data := f.data
		if data == nil {
			if data, err = files.ReadFile("files/" + f.name); err != nil {
				return err
			}
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(f.dest, "/usr/lib/nodebake/") {
			mode = 0o755
		}
		if err := t.WriteFile(f.dest, data, mode, "kit:"+f.name); err != nil {
			return err
		}
	}
	if cfg.NetworkManifest != nil {
		if err := t.WriteFile(manifest.NetworkPath, cfg.NetworkManifest, 0o644, "kit:network"); err != nil {
			return err
		}
	}
	for _, a := range cfg.Archives {
		data, err := os.ReadFile(a.Path)
		if err != nil {
			return err
		}
		if err := t.WriteFile(ImagesDir+"/"+a.Name+".tar", data, 0o644, "kit:images"); err != nil {
			return err
		}
		if err := t.WriteFile(ImagesDir+"/"+a.Name+".list", archiveList(a), 0o644, "kit:images"); err != nil {
			return err
		}
	}
	// Folders the kubelet and containerd expect to exist; on the
	// read-only root they cannot make them.
	for _, dir := range []string{
		"/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
		"/etc/containerd/certs.d", "/etc/cni/net.d", "/etc/kubernetes/manifests",
	} {
		if err := t.MkdirAll(dir); err != nil {
			return err
		}
	}
	return nil
}

// archiveList is ARCHIVE.list: a "REFERENCE DIGEST" line for each image
// of a.
func archiveList(a Archive) []byte {
	var list strings.Builder
	for _, e := range a.Entries {
		fmt.Fprintf(&list, "%s %s\n", e.Ref, e.Digest)
	}
	return []byte(list.String())
}

func render(name string, data any) ([]byte, error) {
	src, err := files.ReadFile("files/" + name)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// ImageList runs the built kubeadm to list the images that
// `kubeadm init` needs for version; kubeadm answers offline when the
// version is given.
func ImageList(ctx context.Context, run *command.Runner, kubeadmBin, version string) ([]string, error) {
	images, err := (&kubeadm.Kubeadm{Run: run, Bin: kubeadmBin}).Images(ctx, version)
	if err != nil {
		return nil, fmt.Errorf("listing kubeadm's images: %w", err)
	}
	return images, nil
}

// ImageRefs are the images a kit bakes (before the profile's extras):
// those the built kubeadm lists for the Kubernetes version, then the pod
// network's.
func ImageRefs(ctx context.Context, run *command.Runner, arts []Artifact, k *profile.Kit) ([]string, error) {
	kubeadm := ""
	for _, a := range arts {
		if a.Name == "kubeadm" {
			kubeadm = a.Path
		}
	}
	if kubeadm == "" {
		return nil, fmt.Errorf("the kit has no kubeadm to list its images")
	}
	refs, err := ImageList(ctx, run, kubeadm, k.KubernetesVersion)
	if err != nil {
		return nil, err
	}
	if k.Network.Plugin == profile.NetworkFlannel {
		refs = append(refs, FlannelImage(k.Network.Version))
	}
	return refs, nil
}

// NetworkManifest is the pod network's manifest rendered for the kit, or
// nil for none.
func NetworkManifest(k *profile.Kit) ([]byte, error) {
	if k.Network.Plugin != profile.NetworkFlannel {
		return nil, nil
	}
	return render("flannel.yaml.tmpl", struct{ Version, PodCIDR, Image string }{k.Network.Version, k.Network.PodCIDR, FlannelImage(k.Network.Version)})
}

// PauseImage is the pause image in a kubeadm image list.
func PauseImage(images []string) (string, error) {
	for _, img := range images {
		if strings.Contains(img, "/pause:") {
			return img, nil
		}
	}
	return "", fmt.Errorf("kubeadm lists no pause image in %v", images)
}
