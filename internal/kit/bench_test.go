package kit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/profile"
	"github.com/nodebake/nodebake/internal/rootfs"
)

// BenchmarkKitBuild bakes the default kit, programs and images, cold (an
// empty kit cache and an empty Go build cache; modules already downloaded)
// and then warm, and prints both times and the sizes of the programs and
// of the image archive. The images' iptables comes from the build host's
// root here (ci/deps.sh installs it). `make bench` runs it.
func BenchmarkKitBuild(b *testing.B) {
	if testing.Short() {
		b.Skip("builds the whole kit twice")
	}
	p := &profile.Profile{Spec: profile.Spec{Kit: &profile.Kit{}}}
	profile.SetDefaults(p)
	ctx := context.Background()
	builder := &Builder{
		Run:   &command.Runner{},
		Cache: &cache.Cache{Dir: b.TempDir()},
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Epoch: time.Unix(*p.Spec.SourceDateEpoch, 0),
		Env:   []string{"GOCACHE=" + b.TempDir()},
	}
	// The kit as a build bakes it, into a throwaway tree; the images'
	// iptables from the host's root.
	buildKit := func() ([]Artifact, string) {
		into := Into{Tree: rootfs.NewTree(b.TempDir()), Root: "/", SourceDir: filepath.Join("..", "..")}
		baked, err := builder.Bake(ctx, p.Spec.Kit, into)
		if err != nil {
			b.Fatal(err)
		}
		return baked.Programs, filepath.Join(into.Tree.(*rootfs.Tree).Root, ImagesDir)
	}
	for i := 0; i < b.N; i++ {
		start := time.Now()
		arts, archives := buildKit()
		cold := time.Since(start)
		start = time.Now()
		buildKit()
		warm := time.Since(start)
		imagesSize := archivesSize(b, archives)
		var size int64
		for _, a := range arts {
			size += a.Size
		}
		b.ReportMetric(cold.Seconds(), "cold-s")
		b.ReportMetric(warm.Seconds(), "warm-s")
		b.ReportMetric(float64(size)/(1<<20), "kit-MiB")
		b.ReportMetric(float64(imagesSize)/(1<<20), "images-MiB")
		fmt.Printf("\n%-34s %10.1f s\n", "kit build, cold (empty caches)", cold.Seconds())
		fmt.Printf("%-34s %10.1f s\n", "kit build, warm (cached)", warm.Seconds())
		fmt.Printf("%-34s %10.1f MiB in %d binaries\n", "kit programs", float64(size)/(1<<20), len(arts))
		fmt.Printf("%-34s %10.1f MiB\n", "kit images (OCI archives)", float64(imagesSize)/(1<<20))
	}
}

// archivesSize is the size of the image archives (*.tar) in dir.
func archivesSize(b *testing.B, dir string) int64 {
	tars, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil || len(tars) == 0 {
		b.Fatalf("no image archives in %s: %v", dir, err)
	}
	var size int64
	for _, t := range tars {
		fi, err := os.Stat(t)
		if err != nil {
			b.Fatal(err)
		}
		size += fi.Size()
	}
	return size
}
