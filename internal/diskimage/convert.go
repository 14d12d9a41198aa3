package diskimage

import (
	"context"

	"github.com/nodebake/nodebake/internal/command"
)

// ConvertQcow2 writes a qcow2 copy of a raw image with qemu-img.
func ConvertQcow2(ctx context.Context, run *command.Runner, raw, dst string) error {
	_, err := run.Run(ctx, command.Cmd{Name: "qemu-img", Args: []string{"convert", "-f", "raw", "-O", "qcow2", raw, dst}})
	return err
}

// CopySparse copies a raw image, or a folder of files, keeping holes and
// making more of blocks of zeros.
func CopySparse(ctx context.Context, run *command.Runner, src, dst string) error {
	_, err := run.Run(ctx, command.Cmd{Name: "cp", Args: []string{"--recursive", "--sparse=always", src, dst}})
	return err
}
