package imager

import (
	"context"
	"os"
	"path/filepath"

	"github.com/nodebake/nodebake/internal/atomicfile"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskimage"
)

// publish converts and moves the finished outputs into place. Each is
// first complete under a temporary name in the output folder, then renamed.
func publish(ctx context.Context, run *command.Runner, work, raw string, out Result) error {
	if err := os.MkdirAll(filepath.Dir(out.Manifest), 0o755); err != nil {
		return err
	}
	// A build killed while publishing leaves its temporary files behind;
	// they are never at an output path, and are cleared here.
	for _, p := range []string{out.Raw, out.Qcow2} {
		if p != "" {
			os.Remove(atomicfile.TempPath(p))
		}
	}
	type move struct{ tmp, dst string }
	var moves []move
	defer func() {
		for _, m := range moves {
			os.Remove(m.tmp)
		}
	}()
	if out.Qcow2 != "" {
		tmp := atomicfile.TempPath(out.Qcow2)
		if err := diskimage.ConvertQcow2(ctx, run, raw, tmp); err != nil {
			return err
		}
		moves = append(moves, move{tmp, out.Qcow2})
	}
	if out.Raw != "" {
		tmp := atomicfile.TempPath(out.Raw)
		if err := os.Rename(raw, tmp); err != nil {
			// The work folder is on another filesystem: copy, keeping holes.
			if err := diskimage.CopySparse(ctx, run, raw, tmp); err != nil {
				return err
			}
		}
		moves = append(moves, move{tmp, out.Raw})
	}
	data, err := os.ReadFile(filepath.Join(work, "manifest.json"))
	if err != nil {
		return err
	}
	for _, m := range moves {
		if err := atomicfile.Commit(m.tmp, m.dst); err != nil {
			return err
		}
	}
	moves = nil
	// The manifest goes last: when it is there, so is its image.
	return atomicfile.Write(out.Manifest, data, 0o644)
}
