package kit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/profile"
)

// BenchmarkKitBuild builds the default kit cold (an empty kit cache and an
// empty Go build cache; modules already downloaded) and then warm, and
// prints both times and the kit's size. `make bench` runs it.
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
	for i := 0; i < b.N; i++ {
		start := time.Now()
		arts, err := builder.Build(ctx, p.Spec.Kit)
		if err != nil {
			b.Fatal(err)
		}
		cold := time.Since(start)
		start = time.Now()
		if _, err := builder.Build(ctx, p.Spec.Kit); err != nil {
			b.Fatal(err)
		}
		warm := time.Since(start)
		var size int64
		for _, a := range arts {
			size += a.Size
		}
		b.ReportMetric(cold.Seconds(), "cold-s")
		b.ReportMetric(warm.Seconds(), "warm-s")
		b.ReportMetric(float64(size)/(1<<20), "kit-MiB")
		fmt.Printf("\n%-34s %10.1f s\n", "kit build, cold (empty caches)", cold.Seconds())
		fmt.Printf("%-34s %10.1f s\n", "kit build, warm (cached)", warm.Seconds())
		fmt.Printf("%-34s %10.1f MiB in %d binaries\n", "kit size", float64(size)/(1<<20), len(arts))
	}
}
