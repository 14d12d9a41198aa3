package imager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskformat"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/liveboot"
)

// writeLive writes the live output in format f (iso or pxe) at the
// temporary path tmp. The live media boot the disk's root squashfs and a
// squashfs of the state partition's seed, made here once.
func (im *imager) writeLive(ctx context.Context, f, tmp string) error {
	state := filepath.Join(im.work, "state.squashfs")
	if _, err := os.Stat(state); err != nil {
		if _, err := im.run.Run(ctx, command.Cmd{Name: "mksquashfs", Args: diskimage.SquashfsArgs(im.root.State, state, im.epoch)}); err != nil {
			return fmt.Errorf("the state seed: %w", err)
		}
	}
	m := liveboot.Media{Boot: im.boot, Root: im.rootImg, State: state, Seed: im.p.Digest()}
	switch f {
	case diskformat.ISO:
		return liveboot.WriteISO(ctx, im.run, tmp, m, im.epoch)
	case diskformat.PXE:
		return liveboot.WritePXE(tmp, m)
	}
	return fmt.Errorf("%q is not a live format", f)
}
