package inspect

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/bootloader"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/manifest"
)

// The fuzzed bytes overwrite the image's partition tables (the first 34
// sectors) and the start of root slot A, which for this small root holds
// the whole squashfs: superblock, inodes, folders and the id table.
const (
	gptBytes  = 34 * 512
	rootBytes = 64 << 10
)

// baseImage writes a small image inspect reads in full.
func baseImage(tb testing.TB) (string, diskimage.Layout) {
	dir := tb.TempDir()
	root, state := filepath.Join(dir, "root"), filepath.Join(dir, "state")
	m := &manifest.Manifest{SchemaVersion: manifest.SchemaVersion, Name: "fuzz", Suite: "bookworm", Kit: &manifest.Kit{KubernetesVersion: "v1.37.2"}}
	for p, data := range map[string][]byte{
		"usr/lib/os-release":                                   []byte("ID=debian\nVERSION_ID=12\n"),
		manifest.Path[1:]:                                      m.Marshal(),
		"etc/sysctl.d/90-nodebake.conf":                        []byte("net.ipv4.ip_forward=1\n"),
		"etc/modules-load.d/nodebake.conf":                     []byte("overlay\nbr_netfilter\n"),
		"etc/systemd/system/multi-user.target.wants/x.service": []byte("[Service]\n"),
	} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.MkdirAll(state, 0o755); err != nil {
		tb.Fatal(err)
	}
	img := filepath.Join(dir, "base.raw")
	l := diskimage.Plan("fuzz", 64<<20, 16<<20, 16<<20)
	if err := diskimage.Write(context.Background(), &command.Runner{}, img, l, diskimage.Contents{
		RootDir: root, StateDir: state, Epoch: time.Unix(1700000000, 0),
		ESP: []diskimage.ESPFile{{Path: bootloader.EntryPath, Data: []byte("title nodebake\noptions quiet\n")}},
	}); err != nil {
		tb.Fatal(err)
	}
	return img, l
}

// FuzzImage: inspect of an image whose partition tables and root
// filesystem are hostile never panics, and allocates a bounded amount.
func FuzzImage(f *testing.F) {
	img, l := baseImage(f)
	if _, err := Image(img); err != nil {
		f.Fatalf("the base image: %v", err)
	}
	rootStart := l.Part(diskimage.RoleRootA).Start
	file, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { file.Close() })
	orig := make([]byte, gptBytes+rootBytes)
	file.ReadAt(orig[:gptBytes], 0)
	file.ReadAt(orig[gptBytes:], rootStart)
	f.Add(orig)
	f.Add(orig[:gptBytes])
	f.Fuzz(func(t *testing.T, data []byte) {
		data = data[:min(len(data), len(orig))]
		gpt, root := data[:min(len(data), gptBytes)], data[min(len(data), gptBytes):]
		file.WriteAt(gpt, 0)
		file.WriteAt(root, rootStart)
		defer func() { // the next input starts from the base image
			file.WriteAt(orig[:gptBytes], 0)
			file.WriteAt(orig[gptBytes:], rootStart)
		}()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		Image(img)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 512<<20 {
			t.Fatalf("inspect allocated %d MiB for a hostile image", n>>20)
		}
	})
}
