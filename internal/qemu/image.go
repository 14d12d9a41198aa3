package qemu

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nodebake/nodebake/internal/diskimage"
)

// qcow2Magic opens every qcow2 file.
var qcow2Magic = []byte("QFI\xfb")

// CheckImage refuses what is not a nodebake image before QEMU boots it
// (firmware given a disk it cannot boot tries the network, forever): a
// regular file, and a raw one must hold the partitions nodebake writes, a
// .qcow2 one a qcow2 header, an ISO ISO 9660's identifier; or a PXE
// folder with every file of one. Its errors wrap diskimage.ErrNotImage.
func CheckImage(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %v", diskimage.ErrNotImage, err)
	}
	switch {
	case fi.IsDir():
		return checkPXE(path)
	case fi.Mode().IsRegular() && Kind(path) == KindISO:
		return nil
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w: not a regular file", path, diskimage.ErrNotImage)
	}
	if !strings.HasSuffix(path, ".qcow2") {
		img, err := diskimage.Open(path)
		if err != nil {
			return err
		}
		return img.Close()
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, len(qcow2Magic))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, qcow2Magic) {
		return fmt.Errorf("%s: %w: no qcow2 header", path, diskimage.ErrNotImage)
	}
	return nil
}
