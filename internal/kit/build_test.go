package kit

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/profile"
)

// TestComponentBuildIsReproducible builds crictl twice from its pinned
// module, the second time with an empty Go build cache and an empty kit
// cache, and compares the binaries. It needs the Go module proxy.
func TestComponentBuildIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds crictl twice; run without -short")
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	epoch := time.Unix(profile.DefaultSourceDateEpoch, 0)
	r := recipes[profile.ComponentCrictl]
	version := "v1.36.0"

	var sums []string
	for i := 0; i < 2; i++ {
		b := &Builder{
			Run: &command.Runner{}, Cache: &cache.Cache{Dir: t.TempDir()}, Log: log, Epoch: epoch,
		}
		if i == 1 {
			b.Env = []string{"GOCACHE=" + t.TempDir()}
		}
		arts, err := b.buildGo(ctx, profile.ComponentCrictl, r, version, "test")
		if err != nil {
			t.Fatal(err)
		}
		if len(arts) != 1 || arts[0].Dest != "/usr/bin/crictl" {
			t.Fatalf("artifacts %+v", arts)
		}
		sums = append(sums, arts[0].SHA256)
		out, err := (&command.Runner{}).Run(ctx, command.Cmd{Name: arts[0].Path, Args: []string{"--version"}})
		if err != nil || string(out) != "crictl version v1.36.0\n" {
			t.Errorf("crictl --version: %q %v", out, err)
		}
	}
	t.Logf("crictl %s sha256 %s", version, sums[0])
	if sums[0] != sums[1] {
		t.Errorf("two builds of crictl %s differ: %s and %s", version, sums[0], sums[1])
	}
}

// TestPauseIsCompiledReproducibly compiles pause.c from the pinned
// Kubernetes module twice, into two empty caches, and runs it.
func TestPauseIsCompiledReproducibly(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Kubernetes module and gcc; run without -short")
	}
	ctx := context.Background()
	var sums []string
	for i := 0; i < 2; i++ {
		b := &Builder{Run: &command.Runner{}, Cache: &cache.Cache{Dir: t.TempDir()}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		path, err := b.Pause(ctx, "v1.37.2", "3.10.2")
		if err != nil {
			t.Fatal(err)
		}
		sum, err := cache.FileSHA256(path)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
		out, err := (&command.Runner{}).Run(ctx, command.Cmd{Name: path, Args: []string{"-v"}})
		if err != nil || string(out) != "pause.c v3.10.2\n" {
			t.Errorf("pause -v: %q %v", out, err)
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("two compiles of pause differ: %s and %s", sums[0], sums[1])
	}
}
