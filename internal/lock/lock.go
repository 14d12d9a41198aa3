// Package lock is a profile's lockfile: every input a build resolved
// (Debian package versions, Go modules with their go.sum hashes, the
// sha256 of every kit program, whether built here or downloaded, and the
// digest of every image), so that `imagebuild build --locked` can refuse a
// build whose inputs drifted.
package lock

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/nodebake/nodebake/internal/atomicfile"
	"github.com/nodebake/nodebake/internal/inputfile"
)

const (
	APIVersion = "nodebake.dev/v1alpha1"
	Kind       = "Lock"
)

// Lock is every resolved input of one profile's build.
type Lock struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Profile is the profile's metadata.name.
	Profile  string    `json:"profile"`
	Suite    string    `json:"suite"`
	Packages []Package `json:"packages"`
	// Kit is what the kit resolved; its fields are the lock's own.
	Kit
}

// Kit is every input the Kubernetes kit resolved, as the kit reports it.
type Kit struct {
	// Go is the toolchain that built the kit; a different one builds
	// different binaries.
	Go         string      `json:"go,omitempty"`
	Modules    []Module    `json:"modules,omitempty"`
	Downloads  []Download  `json:"downloads,omitempty"`
	Components []Component `json:"components,omitempty"`
	Images     []Image     `json:"images,omitempty"`
}

// Package is one Debian package in the image.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Module is one Go module built into the kit, with its go.sum hash.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Sum     string `json:"sum"`
}

// Download is a url or file source's content, pinned by sha256.
type Download struct {
	Component string `json:"component"`
	Source    string `json:"source"`
	SHA256    string `json:"sha256"`
}

// Component is one program of the kit.
type Component struct {
	Name   string `json:"name"` // the program, such as kubelet
	Source string `json:"source"`
	SHA256 string `json:"sha256"`
}

// Image is one baked image.
type Image struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	Source string `json:"source"`
}

// Path is where the lock of the profile at profilePath is: beside it,
// named like it with .lock for its extension (profiles/default.lock).
func Path(profilePath string) string {
	return strings.TrimSuffix(profilePath, filepath.Ext(profilePath)) + ".lock"
}

// Read loads a lock file.
func Read(path string) (*Lock, error) {
	data, err := inputfile.Read(path, 16<<20)
	if err != nil {
		return nil, err
	}
	var l Lock
	if err := yaml.UnmarshalStrict(data, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if l.APIVersion != APIVersion || l.Kind != Kind {
		return nil, fmt.Errorf("%s: apiVersion %q kind %q, want %s %s", path, l.APIVersion, l.Kind, APIVersion, Kind)
	}
	return &l, nil
}

// Write stores the lock atomically, sorted, with a header.
func (l *Lock) Write(path string) error {
	l.sort()
	data, err := yaml.Marshal(l)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("# Written by `imagebuild lock`; `imagebuild build --locked` refuses any drift.\n")
	b.Write(data)
	return atomicfile.Write(path, b.Bytes(), 0o644)
}

func (l *Lock) sort() {
	sort.Slice(l.Packages, func(i, j int) bool { return l.Packages[i].Name < l.Packages[j].Name })
	sort.Slice(l.Modules, func(i, j int) bool {
		return l.Modules[i].Path+"@"+l.Modules[i].Version < l.Modules[j].Path+"@"+l.Modules[j].Version
	})
	sort.Slice(l.Downloads, func(i, j int) bool { return l.Downloads[i].Component < l.Downloads[j].Component })
	sort.Slice(l.Components, func(i, j int) bool { return l.Components[i].Name < l.Components[j].Name })
	sort.Slice(l.Images, func(i, j int) bool { return l.Images[i].Ref < l.Images[j].Ref })
}

// DownloadSHA256 is the sha256 the lock pins for a url or file
// component, or "".
func (l *Lock) DownloadSHA256(component string) string {
	if l == nil {
		return ""
	}
	for _, d := range l.Downloads {
		if d.Component == component {
			return d.SHA256
		}
	}
	return ""
}

// ImageDigest is the digest the lock pins for an image, or "".
func (l *Lock) ImageDigest(ref string) string {
	if l == nil {
		return ""
	}
	for _, img := range l.Images {
		if img.Ref == ref {
			return img.Digest
		}
	}
	return ""
}

// DriftError lists every input that differs from its lock.
type DriftError struct{ Drifts []string }

func (e *DriftError) Error() string {
	return "inputs drifted from the lock:\n  " + strings.Join(e.Drifts, "\n  ")
}

// Compare reports every input of got that differs from want, the lock:
// each named, with both values.
func Compare(want, got *Lock) error {
	var d []string
	add := func(format string, args ...any) { d = append(d, fmt.Sprintf(format, args...)) }
	if want.Profile != got.Profile {
		add("profile: %q in the lock, %q built", want.Profile, got.Profile)
	}
	if want.Go != got.Go {
		add("go toolchain: %s in the lock, %s resolved", want.Go, got.Go)
	}
	if want.Suite != got.Suite {
		add("suite: %s in the lock, %s resolved", want.Suite, got.Suite)
	}
	compareSet(&d, "package", pairs(want.Packages, func(p Package) (string, string) { return p.Name, p.Version }),
		pairs(got.Packages, func(p Package) (string, string) { return p.Name, p.Version }))
	compareSet(&d, "go module", pairs(want.Modules, func(m Module) (string, string) { return m.Path + "@" + m.Version, m.Sum }),
		pairs(got.Modules, func(m Module) (string, string) { return m.Path + "@" + m.Version, m.Sum }))
	compareSet(&d, "download", pairs(want.Downloads, func(x Download) (string, string) { return x.Component, x.Source + " sha256:" + x.SHA256 }),
		pairs(got.Downloads, func(x Download) (string, string) { return x.Component, x.Source + " sha256:" + x.SHA256 }))
	compareSet(&d, "component", pairs(want.Components, func(c Component) (string, string) { return c.Name, c.Source + " sha256:" + c.SHA256 }),
		pairs(got.Components, func(c Component) (string, string) { return c.Name, c.Source + " sha256:" + c.SHA256 }))
	compareSet(&d, "image", pairs(want.Images, func(i Image) (string, string) { return i.Ref, i.Digest }),
		pairs(got.Images, func(i Image) (string, string) { return i.Ref, i.Digest }))
	if len(d) == 0 {
		return nil
	}
	return &DriftError{Drifts: d}
}

func pairs[T any](items []T, kv func(T) (string, string)) map[string]string {
	m := make(map[string]string, len(items))
	for _, it := range items {
		k, v := kv(it)
		m[k] = v
	}
	return m
}

func compareSet(d *[]string, kind string, want, got map[string]string) {
	keys := make([]string, 0, len(want)+len(got))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, inWant := want[k]
		g, inGot := got[k]
		switch {
		case !inGot:
			*d = append(*d, fmt.Sprintf("%s %s: %s in the lock, not in the build", kind, k, w))
		case !inWant:
			*d = append(*d, fmt.Sprintf("%s %s: %s in the build, not in the lock", kind, k, g))
		case w != g:
			*d = append(*d, fmt.Sprintf("%s %s: %s in the lock, %s resolved", kind, k, w, g))
		}
	}
}

// IsDrift reports whether err is a drift from the lock.
func IsDrift(err error) bool {
	var d *DriftError
	return errors.As(err, &d)
}
