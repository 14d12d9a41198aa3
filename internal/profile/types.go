// Package profile holds the declarative, versioned input of an image build:
// its types, its defaults (filled in one place), its validation and its
// digest.
package profile

// APIVersion and Kind identify a profile document.
const (
	APIVersion = "nodebake.dev/v1alpha1"
	Kind       = "Profile"
)

// Profile is one image to build.
type Profile struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
}

// Metadata names the profile; the name names the outputs.
type Metadata struct {
	Name string `json:"name"`
}

// Spec is everything that goes into the image.
type Spec struct {
	Base     Base     `json:"base"`
	Kernel   Kernel   `json:"kernel"`
	Disk     Disk     `json:"disk"`
	Node     Node     `json:"node"`
	Overlays []string `json:"overlays,omitempty"`
	Units    Units    `json:"units"`
	Outputs  Outputs  `json:"outputs"`
	// Kit is the Kubernetes node kit. Without it the image is the OS alone.
	Kit *Kit `json:"kit,omitempty"`
	// SourceDateEpoch is the timestamp, in seconds since 1970, given to every
	// file and filesystem in the image so that builds are reproducible.
	SourceDateEpoch *int64 `json:"sourceDateEpoch,omitempty"`
}

// Base is the Debian system the image starts from.
type Base struct {
	// Suite is a Debian suite name: bookworm or trixie.
	Suite string `json:"suite"`
	// Packages are installed on top of the node's required packages.
	Packages []string `json:"packages,omitempty"`
	// Mirror is an apt mirror URL. Empty means the build host's own apt
	// sources, rewritten for Suite.
	Mirror string `json:"mirror,omitempty"`
}

// Kernel holds the kernel command line, on top of the root and state
// arguments the builder adds itself.
type Kernel struct {
	Cmdline []string `json:"cmdline,omitempty"`
}

// Disk holds the partition sizes, as quantities such as "2GiB".
type Disk struct {
	ESPSize   string `json:"espSize"`
	RootSize  string `json:"rootSize"`
	StateSize string `json:"stateSize"`
}

// Node is the Kubernetes node preset: kernel parameters and modules.
type Node struct {
	Sysctls map[string]string `json:"sysctls,omitempty"`
	Modules []string          `json:"modules,omitempty"`
}

// Units names unit files under systemd/ to bake, and units to enable.
type Units struct {
	Files  []string `json:"files,omitempty"`
	Enable []string `json:"enable,omitempty"`
}

// Outputs says where the image goes and in which formats.
type Outputs struct {
	Dir string `json:"dir"`
	// Formats are any of diskformat.All: raw, qcow2, vhd (Azure), vmdk
	// (stream-optimized), ova (vSphere), gce (disk.raw in a tar.gz), iso
	// (a hybrid ISO for CD or USB stick) and pxe (a folder for iPXE).
	Formats []string `json:"formats"`
	// OVAFirmware is the firmware the OVA's descriptor declares: efi
	// (when empty) or bios. The disk boots on both.
	OVAFirmware string `json:"ovaFirmware,omitempty"`
}

// Kit is the pinned Kubernetes node kit baked into the image.
type Kit struct {
	// KubernetesVersion pins kubelet, kubeadm and kubectl, such as v1.37.2.
	KubernetesVersion string `json:"kubernetesVersion"`
	// Components maps a component name (see ComponentNames) to where it
	// comes from. Every component is present; defaults fill the rest.
	Components map[string]Component `json:"components"`
	// Network is the pod network baked with the kit.
	Network Network `json:"network"`
	// Images changes where an image kubeadm or the pod network needs comes
	// from (by its reference), or adds an image.
	Images []ImageSource `json:"images,omitempty"`
	// RegistryMirror is the host registry sources pull from instead of
	// each image's own registry.
	RegistryMirror string `json:"registryMirror,omitempty"`
}

// ImageSource is where one image comes from.
type ImageSource struct {
	Ref string `json:"ref"`
	// Source is "build" (from pinned Go sources; only the images kubeadm
	// and the pod network need), "registry" (pulled by digest) or
	// "oci-layout" (an OCI layout folder or an image tarball at Path).
	Source string `json:"source"`
	// Digest pins a registry or oci-layout image; without it, the lock
	// must.
	Digest string `json:"digest,omitempty"`
	Path   string `json:"path,omitempty"`
}

// Image sources.
const (
	ImageSourceBuild     = "build"
	ImageSourceRegistry  = "registry"
	ImageSourceOCILayout = "oci-layout"
)

// Network is the pod network: its plugin, the plugin's version and the
// pod CIDR its manifest is rendered for. kubeadm's podSubnet must match.
type Network struct {
	// Plugin is "flannel" (the default) or "none".
	Plugin  string `json:"plugin"`
	Version string `json:"version,omitempty"`
	PodCIDR string `json:"podCIDR,omitempty"`
}

// Pod network plugins.
const (
	NetworkFlannel = "flannel"
	NetworkNone    = "none"
)

// Component is one piece of the kit and its source.
type Component struct {
	// Source is "go" (the default: the Go module at Version, built here
	// reproducibly), "url" (downloaded from URL) or "file" (read from
	// Path). A url or file is the program itself or a .tar.gz holding it
	// (and, for containerd and the CNI plugins, its siblings).
	Source  string `json:"source"`
	Version string `json:"version"`
	URL     string `json:"url,omitempty"`
	Path    string `json:"path,omitempty"`
	// SHA256 pins a url or file source's content. Without it, the
	// profile's lock must pin it.
	SHA256 string `json:"sha256,omitempty"`
}

// Component names.
const (
	ComponentKubeadm    = "kubeadm"
	ComponentKubelet    = "kubelet"
	ComponentKubectl    = "kubectl"
	ComponentContainerd = "containerd"
	ComponentRunc       = "runc"
	ComponentCrictl     = "crictl"
	ComponentCNIPlugins = "cni-plugins"
	// ComponentFlannelCNI is flannel's CNI plugin, only in a kit whose
	// pod network is flannel.
	ComponentFlannelCNI = "flannel-cni"
)

// ComponentNames lists every kit component, in build order.
var ComponentNames = []string{
	ComponentKubeadm, ComponentKubelet, ComponentKubectl,
	ComponentContainerd, ComponentRunc, ComponentCrictl, ComponentCNIPlugins,
	ComponentFlannelCNI,
}

// Component sources.
const (
	SourceGo   = "go"
	SourceURL  = "url"
	SourceFile = "file"
)
