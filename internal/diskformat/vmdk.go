package diskformat

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/nodebake/nodebake/internal/command"
)

// cidRE is the content ID in a VMDK's embedded descriptor, which
// qemu-img makes at random and prints without leading zeros.
var cidRE = regexp.MustCompile(`(?m)^CID=[0-9a-f]{1,8}$`)

// writeVMDK writes a stream-optimized VMDK for a SCSI (LSI Logic)
// controller, as vSphere imports. The descriptor names its extent by the
// file's own name, so it is made under its final name in a scratch
// folder and renamed to dst.
func writeVMDK(ctx context.Context, run *command.Runner, raw, dst string, o Options) error {
	dir, done, err := scratch(dst)
	if err != nil {
		return err
	}
	defer done()
	made := filepath.Join(dir, o.base(".vmdk"))
	if err := convert(ctx, run, raw, made, "vmdk", "subformat=streamOptimized,adapter_type=lsilogic"); err != nil {
		return err
	}
	if err := stampCID(made, o); err != nil {
		return err
	}
	return os.Rename(made, dst)
}

// stampCID sets the descriptor's content ID from the seed, as eight hex
// digits, and writes the descriptor back into its area, padded with
// zeros as qemu-img leaves it.
func stampCID(path string, o Options) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// The sparse extent header: "KDMV", then the descriptor's offset and
	// size in sectors at bytes 28 and 36 (little-endian).
	head := make([]byte, 512)
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.HasPrefix(head, []byte("KDMV")) {
		return fmt.Errorf("%s: qemu-img wrote no sparse VMDK header", path)
	}
	off, size := int64(binary.LittleEndian.Uint64(head[28:]))*512, int64(binary.LittleEndian.Uint64(head[36:]))*512
	if off == 0 || size == 0 || size > 1<<20 {
		return fmt.Errorf("%s: the VMDK header names no embedded descriptor", path)
	}
	area := make([]byte, size)
	if _, err := f.ReadAt(area, off); err != nil {
		return err
	}
	text, _, _ := bytes.Cut(area, []byte{0})
	if cidRE.Find(text) == nil {
		return fmt.Errorf("%s: no CID in the VMDK's descriptor", path)
	}
	text = cidRE.ReplaceAll(text, []byte("CID="+hex.EncodeToString(o.id("vmdk-cid", 4))))
	if int64(len(text)) > size {
		return fmt.Errorf("%s: the descriptor outgrew its %d bytes", path, size)
	}
	clear(area)
	copy(area, text)
	if _, err := f.WriteAt(area, off); err != nil {
		return err
	}
	return f.Close()
}
