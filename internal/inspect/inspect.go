// Package inspect reads a built image back, without mounting it, and
// summarizes what is in it.
package inspect

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/nodebake/nodebake/internal/bootloader"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/manifest"
)

// maxSmallFile bounds each configuration file read from an image: an
// image is input, and an os-release may claim gigabytes.
const maxSmallFile = 1 << 20

// Report is what inspect prints.
type Report struct {
	Image        string                    `json:"image"`
	DiskGUID     string                    `json:"diskGUID"`
	Partitions   []diskimage.PartitionInfo `json:"partitions"`
	OSRelease    map[string]string         `json:"osRelease"`
	Kernel       Kernel                    `json:"kernel"`
	Manifest     Summary                   `json:"manifest"`
	Sysctls      map[string]string         `json:"sysctls"`
	Modules      []string                  `json:"modules"`
	EnabledUnits []string                  `json:"enabledUnits"`
	Kit          *Kit                      `json:"kit,omitempty"`
}

// Kit is the Kubernetes kit the image carries.
type Kit struct {
	KubernetesVersion string           `json:"kubernetesVersion"`
	Components        []Component      `json:"components"`
	Images            []manifest.Image `json:"images"`
}

// Component is one program of the kit, as the manifest records it.
type Component struct {
	Component string `json:"component"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Path      string `json:"path"`
	SHA256    string `json:"sha256"`
}

// Kernel is what the boot loader starts.
type Kernel struct {
	Version string `json:"version"`
	Cmdline string `json:"cmdline"`
}

// Summary is the gist of the image's manifest.
type Summary struct {
	Name          string `json:"name"`
	ProfileDigest string `json:"profileDigest"`
	Suite         string `json:"suite"`
	Packages      int    `json:"packages"`
	Files         int    `json:"files"`
}

// Image reads the image at path.
func Image(path string) (*Report, error) {
	img, err := diskimage.Open(path)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	r := &Report{Image: path, DiskGUID: img.DiskGUID(), Partitions: img.Partitions()}

	osr, err := img.ReadRootFile("/usr/lib/os-release", maxSmallFile)
	if err != nil {
		return nil, err
	}
	r.OSRelease = parseKeyValues(osr, "=")

	data, err := img.ReadRootFile(manifest.Path, manifest.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", diskimage.ErrNotImage, err)
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return nil, err
	}
	r.Manifest = Summary{Name: m.Name, ProfileDigest: m.ProfileDigest, Suite: m.Suite, Packages: len(m.Packages), Files: len(m.Files)}
	r.Kernel.Version = m.KernelVersion
	if m.Kit != nil {
		r.Kit = &Kit{KubernetesVersion: m.Kit.KubernetesVersion, Images: m.Kit.Images}
		for _, a := range m.Kit.Components {
			r.Kit.Components = append(r.Kit.Components, Component{Component: a.Component, Name: a.Name, Version: a.Version, Path: a.Dest, SHA256: a.SHA256})
		}
	}

	entry, err := img.ReadESPFile(bootloader.EntryPath, maxSmallFile)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(entry), "\n") {
		if v, ok := strings.CutPrefix(line, "options "); ok {
			r.Kernel.Cmdline = v
		}
	}

	sysctl, err := img.ReadRootFile("/etc/sysctl.d/90-nodebake.conf", maxSmallFile)
	if err != nil {
		return nil, err
	}
	r.Sysctls = parseKeyValues(sysctl, "=")
	modules, err := img.ReadRootFile("/etc/modules-load.d/nodebake.conf", maxSmallFile)
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(modules), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			r.Modules = append(r.Modules, l)
		}
	}
	if r.EnabledUnits, err = enabledUnits(img); err != nil {
		return nil, err
	}
	return r, nil
}

func enabledUnits(img *diskimage.Image) ([]string, error) {
	dirs, err := img.ListRootDir("/etc/systemd/system")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if !strings.HasSuffix(d, ".wants") && !strings.HasSuffix(d, ".requires") {
			continue
		}
		units, err := img.ListRootDir("/etc/systemd/system/" + d)
		if err != nil {
			return nil, err
		}
		for _, u := range units {
			seen[u] = true
		}
	}
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	sort.Strings(out)
	return out, nil
}

func parseKeyValues(data []byte, sep string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, sep)
		if ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return out
}

// WriteText prints the report for a person.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Image:      %s\n", r.Image)
	fmt.Fprintf(w, "OS:         %s\n", r.OSRelease["PRETTY_NAME"])
	fmt.Fprintf(w, "Kernel:     %s\n", r.Kernel.Version)
	fmt.Fprintf(w, "Cmdline:    %s\n", r.Kernel.Cmdline)
	fmt.Fprintf(w, "Profile:    %s (digest %s)\n", r.Manifest.Name, r.Manifest.ProfileDigest)
	fmt.Fprintf(w, "Manifest:   %d packages, %d files added by the builder\n", r.Manifest.Packages, r.Manifest.Files)
	fmt.Fprintf(w, "Disk GUID:  %s\n\nPartitions:\n", r.DiskGUID)
	for _, p := range r.Partitions {
		fmt.Fprintf(w, "  %d  %-7s %8d MiB  %s  %s\n", p.Number, p.Name, p.Size>>20, p.GUID, p.TypeName)
	}
	fmt.Fprintln(w, "\nSysctls:")
	keys := make([]string, 0, len(r.Sysctls))
	for k := range r.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, r.Sysctls[k])
	}
	fmt.Fprintf(w, "\nModules: %s\n\nEnabled units:\n", strings.Join(r.Modules, ", "))
	for _, u := range r.EnabledUnits {
		fmt.Fprintf(w, "  %s\n", u)
	}
	if r.Kit == nil {
		fmt.Fprintln(w, "\nKit: none")
		return
	}
	fmt.Fprintf(w, "\nKubernetes: %s\n\nComponents:\n", r.Kit.KubernetesVersion)
	for _, c := range r.Kit.Components {
		fmt.Fprintf(w, "  %-24s %-8s %-34s %s\n", c.Name, c.Version, c.Path, c.SHA256)
	}
	fmt.Fprintln(w, "\nImages:")
	for _, img := range r.Kit.Images {
		fmt.Fprintf(w, "  %-52s %-13s %s\n", img.Ref, img.Archive, img.Digest)
	}
}
