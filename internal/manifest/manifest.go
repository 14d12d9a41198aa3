// Package manifest describes a built image: what it was built from, how
// its disk is laid out, and every package and file in it. The same JSON
// is written next to the image and inside it at Path.
package manifest

import (
	"encoding/json"
	"fmt"

	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/kit"
	"github.com/nodebake/nodebake/internal/rootfs"
)

// Path is where the manifest is inside the image.
const Path = "/usr/share/nodebake/manifest.json"

// SchemaVersion identifies the manifest format.
const SchemaVersion = "nodebake.dev/manifest/v1alpha1"

// Manifest is the record of one image.
type Manifest struct {
	SchemaVersion   string             `json:"schemaVersion"`
	Name            string             `json:"name"`
	ProfileDigest   string             `json:"profileDigest"`
	Suite           string             `json:"suite"`
	BaseKey         string             `json:"baseKey"`
	SourceDateEpoch int64              `json:"sourceDateEpoch"`
	KernelVersion   string             `json:"kernelVersion"`
	Cmdline         string             `json:"cmdline"`
	Disk            diskimage.Layout   `json:"disk"`
	Sysctls         map[string]string  `json:"sysctls"`
	Modules         []string           `json:"modules"`
	EnabledUnits    []string           `json:"enabledUnits"`
	Kit             *Kit               `json:"kit,omitempty"`
	Packages        []rootfs.Package   `json:"packages"`
	Files           []rootfs.AddedFile `json:"files"`
}

// Kit is the Kubernetes kit in the image.
type Kit struct {
	KubernetesVersion string         `json:"kubernetesVersion"`
	Components        []kit.Artifact `json:"components"`
	// Images are the baked images: what kubeadm needs for
	// KubernetesVersion, and the pod network's.
	Images []Image `json:"images"`
}

// Image is one baked container image.
type Image struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	Source string `json:"source"` // such as go:k8s.io/kubernetes@v1.37.2
}

// Marshal is the manifest's canonical JSON, indented, with a newline.
func (m *Manifest) Marshal() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("manifest: encoding cannot fail: %v", err))
	}
	return append(b, '\n')
}

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
