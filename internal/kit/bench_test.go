package kit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/profile"
)

// BenchmarkKitBuild builds the default kit, programs and images, cold (an
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
	buildKit := func() ([]Artifact, string) {
		arts, err := builder.Build(ctx, p.Spec.Kit)
		if err != nil {
			b.Fatal(err)
		}
		refs, err := ImageRefs(ctx, builder.Run, arts, p.Spec.Kit)
		if err != nil {
			b.Fatal(err)
		}
		imgs, err := builder.Images(ctx, p.Spec.Kit, refs, "/")
		if err != nil {
			b.Fatal(err)
		}
		archive, _, err := builder.Archive(ctx, imgs)
		if err != nil {
			b.Fatal(err)
		}
		return arts, archive
	}
	for i := 0; i < b.N; i++ {
		start := time.Now()
		arts, archive := buildKit()
		cold := time.Since(start)
		start = time.Now()
		buildKit()
		warm := time.Since(start)
		afi, err := os.Stat(archive)
		if err != nil {
			b.Fatal(err)
		}
		var size int64
		for _, a := range arts {
			size += a.Size
		}
		b.ReportMetric(cold.Seconds(), "cold-s")
		b.ReportMetric(warm.Seconds(), "warm-s")
		b.ReportMetric(float64(size)/(1<<20), "kit-MiB")
		b.ReportMetric(float64(afi.Size())/(1<<20), "images-MiB")
		fmt.Printf("\n%-34s %10.1f s\n", "kit build, cold (empty caches)", cold.Seconds())
		fmt.Printf("%-34s %10.1f s\n", "kit build, warm (cached)", warm.Seconds())
		fmt.Printf("%-34s %10.1f MiB in %d binaries\n", "kit programs", float64(size)/(1<<20), len(arts))
		fmt.Printf("%-34s %10.1f MiB\n", "kit images (OCI archive)", float64(afi.Size())/(1<<20))
	}
}
