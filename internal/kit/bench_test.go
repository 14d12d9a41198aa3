package kit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/profile"
	"github.com/nodebake/nodebake/internal/rootfs"
)

// BenchmarkKitBuild bakes the default kit, programs and images, cold (an
// empty kit cache and an empty Go build cache; modules already downloaded)
// and then warm, and prints both times, the peak memory of the cold bake
// and the sizes of the programs and of the image archives. Then, as the
// reference the cold kit is measured against, it compiles the same Go
// programs with nothing else: go build alone, one per module and set of
// flags (all Kubernetes' programs in one), in one fresh shared build
// cache. The images' iptables comes from the build host's root here
// (ci/deps.sh installs it). `make bench` runs it.
func BenchmarkKitBuild(b *testing.B) {
	if testing.Short() {
		b.Skip("builds the whole kit twice")
	}
	p := &profile.Profile{Spec: profile.Spec{Kit: &profile.Kit{}}}
	profile.SetDefaults(p)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	epoch := time.Unix(*p.Spec.SourceDateEpoch, 0)
	builder := &Builder{
		Run:   &command.Runner{},
		Cache: &cache.Cache{Dir: b.TempDir()},
		Log:   quiet,
		Epoch: epoch,
		Env:   []string{"GOCACHE=" + b.TempDir()},
	}
	// The kit as a build bakes it, into a throwaway tree; the images'
	// iptables from the host's root.
	buildKit := func() (*Baked, string) {
		into := Into{Tree: rootfs.NewTree(b.TempDir()), Root: "/", SourceDir: filepath.Join("..", "..")}
		baked, err := builder.Bake(ctx, p.Spec.Kit, into)
		if err != nil {
			b.Fatal(err)
		}
		return baked, filepath.Join(into.Tree.(*rootfs.Tree).Root, ImagesDir)
	}
	for i := 0; i < b.N; i++ {
		stop := watchMemory()
		start := time.Now()
		baked, archives := buildKit()
		cold := time.Since(start)
		peak, largest := stop()
		start = time.Now()
		buildKit()
		warm := time.Since(start)

		// The reference: the kit's Go programs and its images', and
		// nothing else, from an empty build cache.
		goVersion, err := builder.GoVersion(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var cs []goComponent
		for _, name := range profile.ComponentNames {
			if c, ok := p.Spec.Kit.Components[name]; ok && c.Source == profile.SourceGo {
				cs = append(cs, goComponent{name, recipes[name], c.Version})
			}
		}
		for _, img := range baked.Images {
			if c, ok, err := imageComponent(p.Spec.Kit.KubernetesVersion, img.Ref); err != nil {
				b.Fatal(err)
			} else if ok {
				cs = append(cs, c)
			}
		}
		ref := &Builder{Run: &command.Runner{}, Cache: &cache.Cache{Dir: b.TempDir()}, Log: quiet, Epoch: epoch,
			Env: []string{"GOCACHE=" + b.TempDir()}}
		start = time.Now()
		if err := ref.Prebuild(ctx, goVersion, cs); err != nil {
			b.Fatal(err)
		}
		reference := time.Since(start)

		imagesSize := archivesSize(b, archives)
		var size int64
		for _, a := range baked.Programs {
			size += a.Size
		}
		b.ReportMetric(cold.Seconds(), "cold-s")
		b.ReportMetric(warm.Seconds(), "warm-s")
		b.ReportMetric(reference.Seconds(), "gobuild-s")
		b.ReportMetric(cold.Seconds()/reference.Seconds(), "cold/gobuild")
		b.ReportMetric(float64(peak)/(1<<30), "peak-GiB")
		b.ReportMetric(float64(size)/(1<<20), "kit-MiB")
		b.ReportMetric(float64(imagesSize)/(1<<20), "images-MiB")
		fmt.Printf("\n%-44s %10.1f s\n", "kit build, cold (empty caches)", cold.Seconds())
		fmt.Printf("%-44s %10.1f s\n", "its Go programs by go build alone (reference)", reference.Seconds())
		fmt.Printf("%-44s %10.2f\n", "cold kit / reference", cold.Seconds()/reference.Seconds())
		fmt.Printf("%-44s %10.1f s\n", "kit build, warm (cached)", warm.Seconds())
		fmt.Printf("%-44s %10.2f GiB (largest process %.2f GiB)\n", "peak memory of the cold build", float64(peak)/(1<<30), float64(largest)/(1<<30))
		fmt.Printf("%-44s %10.1f MiB in %d binaries\n", "kit programs", float64(size)/(1<<20), len(baked.Programs))
		fmt.Printf("%-44s %10.1f MiB\n", "kit images (OCI archives)", float64(imagesSize)/(1<<20))
	}
}

// watchMemory samples, twice a second, the resident memory of every
// process this one started and theirs (the go commands, compilers,
// linkers, gcc), until stop, which returns the peak of their sum and the
// largest one process had.
func watchMemory() (stop func() (peak, largest int64)) {
	done := make(chan struct{})
	var mu sync.Mutex
	var peak, largest int64
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			sum, big := descendantsRSS(os.Getpid())
			mu.Lock()
			peak, largest = max(peak, sum), max(largest, big)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (int64, int64) {
		close(done)
		mu.Lock()
		defer mu.Unlock()
		return peak, largest
	}
}

// descendantsRSS is the resident memory of pid's descendants, summed, and
// the largest of them, from /proc.
func descendantsRSS(pid int) (sum, largest int64) {
	entries, _ := os.ReadDir("/proc")
	parent, rss := map[int]int{}, map[int]int64{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so the
		// fields are counted after its closing parenthesis.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		statm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "statm"))
		if len(f) < 2 || err != nil {
			continue
		}
		m := strings.Fields(string(statm))
		pp, _ := strconv.Atoi(f[1])
		pages, _ := strconv.ParseInt(m[1], 10, 64)
		parent[p], rss[p] = pp, pages*int64(os.Getpagesize())
	}
	for p := range rss {
		for a := parent[p]; a > 1; a = parent[a] {
			if a == pid {
				sum += rss[p]
				largest = max(largest, rss[p])
				break
			}
		}
	}
	return sum, largest
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

// TestDescendantsRSS finds a child's memory, and no memory without one.
func TestDescendantsRSS(t *testing.T) {
	if sum, _ := descendantsRSS(os.Getpid()); sum != 0 {
		t.Errorf("%d bytes with no child", sum)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	time.Sleep(200 * time.Millisecond)
	if sum, largest := descendantsRSS(os.Getpid()); sum <= 0 || largest != sum {
		t.Errorf("sleep: %d bytes in all, %d the largest", sum, largest)
	}
}
