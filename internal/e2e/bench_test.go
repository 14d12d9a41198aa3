package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskformat"
)

// BenchmarkWarmBuild builds the default profile with warm caches and
// reports the build time, the image sizes, and the time and size of the
// same root tree compressed by mksquashfs -comp zstd -Xcompression-level
// 3, the reference the warm build's time is measured against. The warm
// build publishes the build the cache holds; a second figure is the same
// build with no cached build, which runs every step (the base, the kit
// and the root filesystem from the cache). `make bench` runs it.
func BenchmarkWarmBuild(b *testing.B) {
	needIntegration(b)
	warm := b.TempDir()
	if r := run(b, "build", "-p", "profiles/default.yaml", "-o", warm); r.code != 0 {
		b.Fatalf("warming the cache: %s", r.stderr)
	}
	var out string
	var elapsed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = b.TempDir()
		start := time.Now()
		r := run(b, "build", "-p", "profiles/default.yaml", "-o", out)
		if r.code != 0 {
			b.Fatalf("build: %s", r.stderr)
		}
		if !strings.Contains(r.stderr, "build found in cache") {
			b.Fatalf("the warm build did not find the build it follows in the cache:\n%s", tail(r.stderr, 4000))
		}
		elapsed += time.Since(start)
	}
	b.StopTimer()
	warmSeconds := elapsed.Seconds() / float64(b.N)

	// Every step: a cache of its own sharing everything but the builds.
	shared, own := cache.DefaultDir(), b.TempDir()
	for _, kind := range []string{"base", "kit", "images", "squashfs"} {
		if err := os.Symlink(filepath.Join(shared, kind), filepath.Join(own, kind)); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	if r := run(b, "build", "-p", "profiles/default.yaml", "-o", b.TempDir(), "--cache-dir", own); r.code != 0 {
		b.Fatalf("build with no cached build: %s", r.stderr)
	} else if strings.Contains(r.stderr, "build found in cache") {
		b.Fatalf("a cache with no builds found one:\n%s", r.stderr)
	}
	stepsSeconds := time.Since(start).Seconds()

	raw := filepath.Join(out, "default.raw")
	fi, err := os.Stat(raw)
	if err != nil {
		b.Fatal(err)
	}
	allocated := fi.Sys().(*syscall.Stat_t).Blocks * 512
	qfi, err := os.Stat(filepath.Join(out, "default.qcow2"))
	if err != nil {
		b.Fatal(err)
	}

	// The reference: the image's own root tree, extracted and compressed
	// again by mksquashfs at zstd level 3.
	rep := inspectImage(b, raw)
	tree := filepath.Join(b.TempDir(), "root")
	tool(b, "unsquashfs", "-q", "-o", fmt.Sprint(rep.Partitions[1].Start), "-d", tree, raw)
	ref := filepath.Join(b.TempDir(), "ref.sqfs")
	start = time.Now()
	tool(b, "mksquashfs", tree, ref, "-noappend", "-quiet", "-no-progress", "-comp", "zstd", "-Xcompression-level", "3")
	refSeconds := time.Since(start).Seconds()
	rfi, err := os.Stat(ref)
	if err != nil {
		b.Fatal(err)
	}

	// The kit's programs (from the manifest) and its image archive (from
	// the extracted root).
	var m struct {
		Kit struct {
			Components []struct{ Size int64 } `json:"components"`
			Images     []struct{ Ref string } `json:"images"`
		} `json:"kit"`
	}
	data, err := os.ReadFile(filepath.Join(out, "default.manifest.json"))
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		b.Fatal(err)
	}
	var kitBytes int64
	for _, c := range m.Kit.Components {
		kitBytes += c.Size
	}
	tars, err := filepath.Glob(filepath.Join(tree, "usr/share/nodebake/images/*.tar"))
	if err != nil || len(tars) == 0 {
		b.Fatalf("no image archives in the tree: %v", err)
	}
	var imagesBytes int64
	for _, t := range tars {
		fi, err := os.Stat(t)
		if err != nil {
			b.Fatal(err)
		}
		imagesBytes += fi.Size()
	}

	b.ReportMetric(float64(kitBytes)/(1<<20), "kit-programs-MiB")
	b.ReportMetric(float64(imagesBytes)/(1<<20), "kit-images-MiB")
	b.ReportMetric(warmSeconds, "warm-build-s")
	b.ReportMetric(float64(allocated)/(1<<20), "raw-allocated-MiB")
	b.ReportMetric(float64(qfi.Size())/(1<<20), "qcow2-MiB")
	b.ReportMetric(float64(rfi.Size())/(1<<20), "ref-squashfs-MiB")
	b.ReportMetric(refSeconds, "ref-squashfs-s")
	b.ReportMetric(warmSeconds/refSeconds, "warm/ref")
	b.ReportMetric(stepsSeconds, "every-step-build-s")
	b.ReportMetric(stepsSeconds/refSeconds, "every-step/ref")
	b.ReportMetric(float64(allocated)/float64(rfi.Size()), "raw/ref")
	fmt.Printf("\n%-34s %10.2f s\n", "warm build, default profile", warmSeconds)
	fmt.Printf("%-34s %10.1f s\n", "the same, every step run", stepsSeconds)
	fmt.Printf("%-34s %10.1f MiB (apparent %d MiB)\n", "raw image, allocated", float64(allocated)/(1<<20), fi.Size()>>20)
	fmt.Printf("%-34s %10.1f MiB\n", "qcow2 image", float64(qfi.Size())/(1<<20))
	fmt.Printf("%-34s %10.1f MiB in %.1f s\n", "reference: mksquashfs zstd -3", float64(rfi.Size())/(1<<20), refSeconds)
	fmt.Printf("%-34s %10.2f\n", "warm build / reference (time)", warmSeconds/refSeconds)
	fmt.Printf("%-34s %10.2f\n", "every step / reference (time)", stepsSeconds/refSeconds)
	fmt.Printf("%-34s %10.2f\n", "raw allocated / reference", float64(allocated)/float64(rfi.Size()))
	fmt.Printf("%-34s %10.1f MiB in %d programs\n", "kit programs", float64(kitBytes)/(1<<20), len(m.Kit.Components))
	fmt.Printf("%-34s %10.1f MiB in %d images (OCI archives, zstd layers)\n", "kit images", float64(imagesBytes)/(1<<20), len(m.Kit.Images))
	benchFormats(b, raw)
	benchLive(b)
}

// benchFormats converts the default image into every other format, one
// after another as a build does, and prints each one's size and time.
func benchFormats(b *testing.B, raw string) {
	dir := b.TempDir()
	o := diskformat.Options{Name: "default", Epoch: time.Unix(1767225600, 0).UTC(), Seed: "bench"}
	for _, f := range diskformat.All[1:] {
		if diskformat.Live(f) {
			continue // benchLive's
		}
		dst := filepath.Join(dir, "default"+diskformat.Ext(f))
		if f == diskformat.OVA {
			o.VMDK = filepath.Join(dir, "default.vmdk")
		}
		start := time.Now()
		if err := diskformat.Write(context.Background(), &command.Runner{}, f, raw, dst, o); err != nil {
			b.Fatal(err)
		}
		secs := time.Since(start).Seconds()
		fi, err := os.Stat(dst)
		if err != nil {
			b.Fatal(err)
		}
		allocated := fi.Sys().(*syscall.Stat_t).Blocks * 512
		b.ReportMetric(secs, f+"-s")
		b.ReportMetric(float64(fi.Size())/(1<<20), f+"-MiB")
		fmt.Printf("%-34s %10.1f MiB (allocated %d MiB) in %.1f s\n", "output "+f, float64(fi.Size())/(1<<20), allocated>>20, secs)
	}
}

// benchLive builds the default profile again, warm, with the live formats
// only, and prints each one's size and the time the build took to write
// it (its "converted" log line).
func benchLive(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(repoRoot(b), "profiles", "default.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	var p map[string]any
	if err := yaml.Unmarshal(data, &p); err != nil {
		b.Fatal(err)
	}
	spec := p["spec"].(map[string]any)
	outputs, _ := spec["outputs"].(map[string]any)
	if outputs == nil {
		outputs = map[string]any{}
		spec["outputs"] = outputs
	}
	outputs["formats"] = []string{diskformat.ISO, diskformat.PXE}
	if data, err = yaml.Marshal(p); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	profile := filepath.Join(dir, "default.yaml")
	if err := os.WriteFile(profile, data, 0o644); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	r := run(b, "build", "-p", profile, "--source-dir", repoRoot(b), "-o", out)
	if r.code != 0 {
		b.Fatalf("build with the live formats: %s", r.stderr)
	}
	secs := map[string]string{}
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "msg=converted") {
			f := logField(l, "format")
			secs[f] = logField(l, "seconds")
		}
	}
	var m struct {
		Outputs []struct {
			Format string `json:"format"`
			Size   int64  `json:"size"`
		} `json:"outputs"`
	}
	if data, err = os.ReadFile(filepath.Join(out, "default.manifest.json")); err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		b.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, o := range m.Outputs {
		sizes[o.Format] += o.Size
	}
	for _, f := range []string{diskformat.ISO, diskformat.PXE} {
		if secs[f] == "" || sizes[f] == 0 {
			b.Fatalf("no %s output in the build (seconds %q, %d bytes)", f, secs[f], sizes[f])
		}
		fmt.Printf("%-34s %10.1f MiB in %s s\n", "output "+f, float64(sizes[f])/(1<<20), secs[f])
	}
}

// logField is a field's value in one slog text line.
func logField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
