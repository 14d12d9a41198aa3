package kit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
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
	epoch := time.Unix(profile.DefaultSourceDateEpoch, 0)
	r := recipes[profile.ComponentCrictl]
	version := "v1.36.0"

	var sums []string
	var kitCache *cache.Cache
	for i := 0; i < 2; i++ {
		var events bytes.Buffer
		kitCache = &cache.Cache{Dir: t.TempDir()}
		b := &Builder{
			Run: &command.Runner{}, Cache: kitCache, Log: slog.New(slog.NewJSONHandler(&events, nil)), Epoch: epoch,
		}
		if i == 1 {
			b.Env = []string{"GOCACHE=" + t.TempDir()}
		}
		crictl := []goComponent{{profile.ComponentCrictl, r, version}}
		if err := b.startTally("kit programs", "test", crictl); err != nil {
			t.Fatal(err)
		}
		arts, err := b.buildGo(ctx, profile.ComponentCrictl, r, version, "test")
		if err != nil {
			t.Fatal(err)
		}
		// The progress a person follows: the program starting, then
		// built, each with the count.
		want := []string{"progress crictl 0/1", "built crictl 1/1"}
		if got := progressEvents(t, &events); !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
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
	// From a warm cache nothing is counted, and nothing is built.
	var events bytes.Buffer
	b := &Builder{Run: &command.Runner{}, Cache: kitCache, Log: slog.New(slog.NewJSONHandler(&events, nil)), Epoch: epoch}
	if err := b.startTally("kit programs", "test", []goComponent{{profile.ComponentCrictl, r, version}}); err != nil {
		t.Fatal(err)
	}
	if b.tally.total != 0 {
		t.Errorf("a warm cache counts %d programs to build", b.tally.total)
	}
	if _, err := b.buildGo(ctx, profile.ComponentCrictl, r, version, "test"); err != nil {
		t.Fatal(err)
	}
	if got := progressEvents(t, &events); len(got) != 0 {
		t.Errorf("a warm build reported %q", got)
	}
	t.Logf("crictl %s sha256 %s", version, sums[0])
	if sums[0] != sums[1] {
		t.Errorf("two builds of crictl %s differ: %s and %s", version, sums[0], sums[1])
	}
}

// progressEvents are the "progress" and "built" events of a JSON log, as
// "MSG BINARY DONE/TOTAL".
func progressEvents(t *testing.T, log *bytes.Buffer) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var e struct {
			Msg, Binary string
			Done, Total *int
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if e.Msg != "progress" && e.Msg != "built" {
			continue
		}
		if e.Done == nil || e.Total == nil {
			t.Errorf("%s: no done and total", l)
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %d/%d", e.Msg, e.Binary, *e.Done, *e.Total))
	}
	return out
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

// TestBatchIsTheSameBytes compiles three CNI plugins in one go build
// (Prebuild) and one of them alone (buildGo of a one-program recipe), and
// compares: a program of a batch is the same bytes as the program built
// alone, so the lock's sha256 holds however the kit was compiled. The
// batch reports its programs as one start and one "built" each. It
// needs the Go module proxy.
func TestBatchIsTheSameBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles three CNI plugins; run without -short")
	}
	ctx := context.Background()
	epoch := time.Unix(profile.DefaultSourceDateEpoch, 0)
	version := "v1.9.1" // the default profile's
	full := recipes[profile.ComponentCNIPlugins]
	three := full
	three.binaries = []binary{{"plugins/main/loopback", "loopback"}, {"plugins/ipam/static", "static"}, {"plugins/meta/tuning", "tuning"}}
	one := full
	one.binaries = three.binaries[:1]

	var events bytes.Buffer
	batched := &Builder{Run: &command.Runner{}, Cache: &cache.Cache{Dir: t.TempDir()}, Log: slog.New(slog.NewJSONHandler(&events, nil)), Epoch: epoch}
	cs := []goComponent{{profile.ComponentCNIPlugins, three, version}}
	if err := batched.startTally("kit programs", "test", cs); err != nil {
		t.Fatal(err)
	}
	if err := batched.Prebuild(ctx, "test", cs); err != nil {
		t.Fatal(err)
	}
	want := []string{"progress loopback,static,tuning 0/3", "built loopback 1/3", "built static 2/3", "built tuning 3/3"}
	if got := progressEvents(t, &events); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	// Every program of the batch is in the cache: buildGo builds nothing.
	events.Reset()
	arts, err := batched.buildGo(ctx, profile.ComponentCNIPlugins, three, version, "test")
	if err != nil {
		t.Fatal(err)
	}
	if got := progressEvents(t, &events); len(got) != 0 || len(arts) != 3 {
		t.Errorf("after the batch, buildGo reported %q and gave %d programs", got, len(arts))
	}

	alone := &Builder{Run: &command.Runner{}, Cache: &cache.Cache{Dir: t.TempDir()}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Epoch: epoch}
	lone, err := alone.buildGo(ctx, profile.ComponentCNIPlugins, one, version, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(lone) != 1 || lone[0].SHA256 != arts[0].SHA256 {
		t.Errorf("loopback alone %+v, in a batch %+v", lone, arts[0])
	}
	// A CNI plugin run with no CNI_COMMAND names itself and its
	// version.
	out, _ := exec.Command(arts[2].Path).CombinedOutput()
	if !strings.Contains(string(out), "tuning") || !strings.Contains(string(out), version) {
		t.Errorf("tuning: %q", out)
	}
}

// TestExecName: the names go build gives the programs of a batch.
func TestExecName(t *testing.T) {
	for path, want := range map[string]string{
		"k8s.io/kubernetes/cmd/kubelet":               "kubelet",
		"go.etcd.io/etcd/server/v3":                   "server",
		"github.com/opencontainers/runc":              "runc",
		"nodebake.dev/kitbuild/main_flanneld":         "main_flanneld",
		"github.com/containerd/containerd/v2/cmd/ctr": "ctr",
		"example.com/v":                               "v",
	} {
		if got := execName(path); got != want {
			t.Errorf("execName(%q) = %q, want %q", path, got, want)
		}
	}
}
