package imager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nodebake/nodebake/internal/atomicfile"
	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskformat"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/liveboot"
	"github.com/nodebake/nodebake/internal/manifest"
)

// liveWriter writes a live output (diskformat.Live) at a temporary path.
type liveWriter func(ctx context.Context, format, tmp string) error

// publish converts and moves the finished outputs into place. Each is
// first complete under a temporary name in the output folder, then
// renamed; the manifest, which lists them with their sha256, goes last.
// known are the sha256 of outputs copied from the build cache, by their
// names in the manifest: those are not read again.
func publish(ctx context.Context, run *command.Runner, work, raw string, out Result, o diskformat.Options, live liveWriter, known map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(out.Manifest), 0o755); err != nil {
		return err
	}
	// A build killed while publishing leaves its temporary files behind;
	// they are never at an output path, and are cleared here.
	for _, img := range out.Images {
		os.RemoveAll(atomicfile.TempPath(img.Path))
		os.RemoveAll(atomicfile.TempPath(img.Path) + ".d")
	}
	type move struct {
		format, tmp, dst string
	}
	var moves []move
	defer func() {
		for _, m := range moves {
			os.RemoveAll(m.tmp)
		}
	}()
	// Every conversion reads the raw disk, so it moves last; an OVA
	// holds the VMDK when that is built too.
	for _, f := range diskformat.All[1:] {
		dst := out.Path(f)
		if dst == "" {
			continue
		}
		tmp := atomicfile.TempPath(dst)
		if f == diskformat.OVA {
			o.VMDK = tmpOf(out, diskformat.VMDK)
		}
		start := time.Now()
		write := func() error { return diskformat.Write(ctx, run, f, raw, tmp, o) }
		if diskformat.Live(f) {
			write = func() error { return live(ctx, f, tmp) }
		}
		if err := write(); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("writing %s: %w", filepath.Base(dst), err)
		}
		run.Log.Info("converted", "format", f, "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
		moves = append(moves, move{f, tmp, dst})
	}
	if dst := out.Path(diskformat.Raw); dst != "" {
		tmp := atomicfile.TempPath(dst)
		if err := os.Rename(raw, tmp); err != nil {
			// The work folder is on another filesystem: copy, keeping holes.
			if err := diskimage.CopySparse(ctx, run, raw, tmp); err != nil {
				return err
			}
		}
		moves = append(moves, move{diskformat.Raw, tmp, dst})
	}
	data, err := os.ReadFile(filepath.Join(work, "manifest.json"))
	if err != nil {
		return err
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return err
	}
	// The outputs are hashed side by side: the raw disk alone is
	// gigabytes of mostly zeros. A PXE folder is listed file by file.
	type file struct{ format, path, name string }
	var files []file
	for _, mv := range moves {
		if mv.format != diskformat.PXE {
			files = append(files, file{mv.format, mv.tmp, filepath.Base(mv.dst)})
			continue
		}
		for _, name := range liveboot.Files() {
			files = append(files, file{mv.format, filepath.Join(mv.tmp, name), filepath.Base(mv.dst) + "/" + name})
		}
	}
	m.Outputs = make([]manifest.Output, len(files))
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() {
			fi, err := os.Stat(f.path)
			if err != nil {
				errs[i] = err
				return
			}
			sum, ok := known[f.name]
			if !ok {
				sum, err = cache.FileSHA256(f.path)
			}
			m.Outputs[i] = manifest.Output{Format: f.format, File: f.name, Size: fi.Size(), SHA256: sum}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	for _, mv := range moves {
		if err := atomicfile.Commit(mv.tmp, mv.dst); err != nil {
			return err
		}
	}
	moves = nil
	// The manifest goes last: when it is there, so is every image it
	// lists.
	return atomicfile.Write(out.Manifest, m.Marshal(), 0o644)
}

// tmpOf is the temporary path of the output in format f, "" when it is
// not built.
func tmpOf(out Result, f string) string {
	if p := out.Path(f); p != "" {
		return atomicfile.TempPath(p)
	}
	return ""
}
