package diskformat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/gzip"

	"github.com/nodebake/nodebake/internal/command"
)

// writeGCE writes what GCE imports: a gzipped tar holding one file,
// disk.raw, in GNU tar's oldgnu format with its holes kept (GCE's own
// recipe is tar --format=oldgnu -Sczf). GNU tar writes the archive, as
// only it writes oldgnu sparse entries; the gzip is klauspost's, with no
// name and no time in its header.
func writeGCE(ctx context.Context, run *command.Runner, raw, dst string, o Options) error {
	dir, done, err := scratch(dst)
	if err != nil {
		return err
	}
	defer done()
	abs, err := filepath.Abs(raw)
	if err != nil {
		return err
	}
	if err := os.Symlink(abs, filepath.Join(dir, "disk.raw")); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	if _, err := run.Run(ctx, command.Cmd{Name: "tar", Args: []string{
		"--create", "--format=oldgnu", "--sparse", "--dereference",
		"--mtime=@" + fmt.Sprint(o.Epoch.Unix()), "--owner=0", "--group=0", "--numeric-owner", "--mode=0644",
		"--directory", dir, "--file=-", "disk.raw",
	}, Stdout: gz}); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}
