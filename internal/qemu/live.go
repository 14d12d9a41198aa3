package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nodebake/nodebake/internal/bootloader"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/liveboot"
)

// What a VM boots: a disk image, an ISO as its CD-ROM, or a PXE folder
// over its network.
const (
	KindDisk = "disk"
	KindISO  = "iso"
	KindPXE  = "pxe"
)

// isoMagic is ISO 9660's standard identifier, in the first volume
// descriptor at byte 32769.
var isoMagic = []byte("CD001")

const isoMagicAt = 32769

// Kind tells what path holds: a folder with an iPXE script is a PXE
// folder, a file with ISO 9660's identifier an ISO, anything else a disk
// image (which CheckImage checks).
func Kind(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return KindDisk
	}
	if fi.IsDir() {
		return KindPXE
	}
	f, err := os.Open(path)
	if err != nil {
		return KindDisk
	}
	defer f.Close()
	head := make([]byte, len(isoMagic))
	if _, err := f.ReadAt(head, isoMagicAt); err == nil && bytes.Equal(head, isoMagic) {
		return KindISO
	}
	return KindDisk
}

// checkPXE refuses a folder that is not a nodebake PXE folder.
func checkPXE(dir string) error {
	for _, name := range liveboot.Files() {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: %w: a PXE folder holds %s", dir, diskimage.ErrNotImage, strings.Join(liveboot.Files(), ", "))
		}
	}
	return nil
}

// cdromArgs attach iso as the VM's CD-ROM, first in the boot order.
func cdromArgs(iso string) []string {
	return []string{
		"-drive", "if=none,id=cd0,media=cdrom,readonly=on,format=raw,file=" + qemuPath(iso),
		"-device", "ide-cd,bus=ide.0,drive=cd0,bootindex=0",
	}
}

// PXE boots: the guest's firmware runs iPXE (Debian's ipxe-qemu, the ROM
// of QEMU's virtio NIC), which gets an address and pxeChain from QEMU's
// own DHCP and TFTP. The chain script sets base-url to pxeServer, which
// QEMU forwards, one socat per connection, to an HTTP server on the
// host's loopback that serves the PXE folder. The user network stays
// restricted: the guest reaches nothing else.
const (
	pxeChain  = "chain.ipxe"
	pxeServer = "10.0.2.100:80"
)

// pxeBoot serves dir over HTTP on the loopback until ctx ends, and
// returns the user network's options that boot from it.
func pxeBoot(ctx context.Context, dir, workDir, kernelArgs string) (string, error) {
	if !command.Available("socat") {
		return "", errors.New("a PXE boot forwards the guest's HTTP with socat: install package socat")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	tftp := filepath.Join(workDir, "tftp")
	if err := os.MkdirAll(tftp, 0o755); err != nil {
		return "", err
	}
	script := fmt.Sprintf("#!ipxe\nset %s http://%s/\n", bootloader.IPXEBaseURL, pxeServer)
	if kernelArgs != "" {
		script += fmt.Sprintf("set %s %s\n", bootloader.IPXEArgs, kernelArgs)
	}
	script += fmt.Sprintf("chain ${%s}%s\n", bootloader.IPXEBaseURL, liveboot.PXEScript)
	if err := os.WriteFile(filepath.Join(tftp, pxeChain), []byte(script), 0o644); err != nil {
		return "", err
	}
	host, port, _ := strings.Cut(pxeServer, ":")
	return fmt.Sprintf(",tftp=%s,bootfile=%s,guestfwd=tcp:%s:%s-cmd:socat - TCP:127.0.0.1:%d",
		qemuPath(tftp), pxeChain, host, port, ln.Addr().(*net.TCPAddr).Port), nil
}

// qemuPath escapes a path for a QEMU option's value.
func qemuPath(p string) string { return strings.ReplaceAll(p, ",", ",,") }

// blankDisk makes a new, empty qcow2 disk of size bytes: a live boot's
// disk, for its state.
func blankDisk(ctx context.Context, run *command.Runner, path string, size int64) error {
	part := path + ".part"
	os.Remove(part)
	if _, err := run.Run(ctx, command.Cmd{Name: "qemu-img", Args: []string{"create", "-q", "-f", "qcow2", part, strconv.FormatInt(size, 10)}}); err != nil {
		return fmt.Errorf("creating a blank disk: %w", err)
	}
	return os.Rename(part, path)
}

// errPXENetwork is returned for a PXE boot without QEMU's user network,
// whose DHCP and TFTP it boots from.
var errPXENetwork = errors.New("a PXE boot needs the user network (not --no-network, --link or --tap)")
