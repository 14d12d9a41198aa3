// Package manifest describes a built image: what it was built from, how
// its disk is laid out, and every package and file in it. The same JSON
// is written next to the image and inside it at Path.
//
// It holds plain data, as package lock does: the on-node agent reads it,
// and must not link the builder that writes it.
package manifest

import (
	"encoding/json"
	"fmt"

	"github.com/nodebake/nodebake/internal/diskimage"
)

// Path is where the manifest is inside the image.
const Path = "/usr/share/nodebake/manifest.json"

// NetworkPath is where the pod network's manifest is in the image: the
// kit writes it, and the agent applies it on a control plane's init.
const NetworkPath = "/usr/share/nodebake/network.yaml"

// ImagesDir is where the baked images are in the image, one OCI archive
// for each of the archives below, ARCHIVE.tar, with ARCHIVE.list, its
// "REFERENCE DIGEST" lines.
const ImagesDir = "/usr/share/nodebake/images"

// The archives the baked images are split into, by the nodes that need
// them and when: a worker never imports the control plane's, and its
// kubelet waits only for the node's.
const (
	// ArchiveNode holds what the kubelet runs on every node before the
	// node can be Ready: pause, kube-proxy and the pod network's images.
	// The build imports it into the image's containerd root;
	// nodebake-images.service checks it on every boot, first, and imports
	// what is missing; the kubelet requires that unit.
	ArchiveNode = "node"
	// ArchiveWorkloads holds what pods run once the node is Ready:
	// CoreDNS and the profile's extras. The build imports it too;
	// nodebake-images-workloads.service checks it on every boot, after
	// the node's, while the kubelet starts; the pod network is switched
	// on once it is in (CNIUnit), so that nothing is scheduled onto the
	// node before its images are.
	ArchiveWorkloads = "workloads"
	// ArchiveControlPlane holds the images of kubeadm's static pods:
	// etcd, kube-apiserver, kube-controller-manager and kube-scheduler.
	// The agent imports it (ImportUnit) before kubeadm init or a
	// control-plane join, and only then.
	ArchiveControlPlane = "control-plane"
)

// Archives are the archives in the order they are built and imported.
var Archives = []string{ArchiveNode, ArchiveWorkloads, ArchiveControlPlane}

// ImportUnit is the systemd unit that imports an archive's images into
// containerd; it is done once they are there at their digests, pinned.
func ImportUnit(archive string) string {
	if archive == ArchiveNode {
		return "nodebake-images.service"
	}
	return "nodebake-images-" + archive + ".service"
}

// CNIDir is the folder containerd loads the pod network's CNI config
// from: a copy of /etc/cni/net.d, where pod networks write theirs, that
// CNIUnit makes once the node's and the workloads' images are in. Until
// then containerd finds no config, and the kubelet keeps the node
// NotReady, so no pod is scheduled onto it that would pull an image the
// node is still importing.
const CNIDir = "/run/nodebake/cni/net.d"

// CNIUnit copies /etc/cni/net.d to CNIDir; nodebake-cni.path starts it
// again whenever /etc/cni/net.d changes.
const CNIUnit = "nodebake-cni.service"

// SchemaVersion identifies the manifest format.
const SchemaVersion = "nodebake.dev/manifest/v1alpha1"

// Manifest is the record of one image.
type Manifest struct {
	SchemaVersion   string            `json:"schemaVersion"`
	Name            string            `json:"name"`
	ProfileDigest   string            `json:"profileDigest"`
	Suite           string            `json:"suite"`
	BaseKey         string            `json:"baseKey"`
	SourceDateEpoch int64             `json:"sourceDateEpoch"`
	KernelVersion   string            `json:"kernelVersion"`
	Cmdline         string            `json:"cmdline"`
	Disk            diskimage.Layout  `json:"disk"`
	Sysctls         map[string]string `json:"sysctls"`
	Modules         []string          `json:"modules"`
	EnabledUnits    []string          `json:"enabledUnits"`
	Kit             *Kit              `json:"kit,omitempty"`
	Packages        []Package         `json:"packages"`
	Files           []File            `json:"files"`
	// Outputs are the image's files by format. Only the manifest next to
	// them has this: the one inside the image is written before them.
	Outputs []Output `json:"outputs,omitempty"`
}

// Output is the image in one format.
type Output struct {
	Format string `json:"format"`
	File   string `json:"file"` // the name, next to this manifest
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Package is one installed Debian package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

// File is one file the builder added to the root, beyond the packages.
type File struct {
	Path   string `json:"path"`
	Source string `json:"source"`
	SHA256 string `json:"sha256,omitempty"`
	Mode   string `json:"mode"`
	Link   string `json:"link,omitempty"`
}

// Program is one program of the kit.
type Program struct {
	Component string `json:"component"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Source    string `json:"source"` // such as go:k8s.io/kubernetes@v1.37.2
	Dest      string `json:"dest"`   // path in the image
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
}

// Kit is the Kubernetes kit in the image.
type Kit struct {
	KubernetesVersion string    `json:"kubernetesVersion"`
	Components        []Program `json:"components"`
	// Images are the baked images: what kubeadm needs for
	// KubernetesVersion, and the pod network's.
	Images []Image `json:"images"`
}

// Image is one baked container image.
type Image struct {
	Ref     string `json:"ref"`
	Digest  string `json:"digest"`
	Source  string `json:"source"`  // such as go:k8s.io/kubernetes@v1.37.2
	Archive string `json:"archive"` // one of Archives
}

// Marshal is the manifest's canonical JSON, indented, with a newline.
func (m *Manifest) Marshal() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("manifest: encoding cannot fail: %v", err))
	}
	return append(b, '\n')
}

// MaxSize bounds a manifest read from an image: the default image's is
// about 40 KB.
const MaxSize = 16 << 20

// Parse decodes a manifest.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decoding manifest: %w", err)
	}
	if m.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("manifest schema %q, want %q", m.SchemaVersion, SchemaVersion)
	}
	return &m, nil
}
