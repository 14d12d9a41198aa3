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
	Dir     string   `json:"dir"`
	Formats []string `json:"formats"`
}

// Output formats.
const (
	FormatRaw   = "raw"
	FormatQcow2 = "qcow2"
)
