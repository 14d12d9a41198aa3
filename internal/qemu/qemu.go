// Package qemu boots a disk image in QEMU with OVMF firmware, on a
// throwaway qcow2 overlay so the image itself is never written.
package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/workdir"
)

// Firmware locations from Debian's ovmf package.
var (
	ovmfCode = []string{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd"}
	ovmfVars = map[string]string{
		"/usr/share/OVMF/OVMF_CODE_4M.fd": "/usr/share/OVMF/OVMF_VARS_4M.fd",
		"/usr/share/OVMF/OVMF_CODE.fd":    "/usr/share/OVMF/OVMF_VARS.fd",
	}
)

// machine is QEMU's machine type, for boots and for the KVM probe.
const machine = "q35,smm=off"

// IgnitionFwCfg is the fw_cfg name Ignition-aware guests read.
const IgnitionFwCfg = "opt/com.coreos/config"

// Firmwares a VM boots with.
const (
	FirmwareUEFI = "uefi"
	FirmwareBIOS = "bios"
)

// ErrNoFirmware is returned when OVMF is not installed.
var ErrNoFirmware = errors.New("OVMF firmware not found (install package ovmf)")

// Forward is a TCP port forward from the host's loopback to the guest.
type Forward struct {
	Host  netip.AddrPort
	Guest uint16
}

// ParseForward parses "HOSTPORT:GUESTPORT" or "127.0.0.1:HOSTPORT:GUESTPORT".
// Only loopback host addresses are accepted.
func ParseForward(s string) (Forward, error) {
	parts := strings.Split(s, ":")
	addr := "127.0.0.1"
	switch len(parts) {
	case 2:
	case 3:
		addr, parts = parts[0], parts[1:]
	default:
		return Forward{}, fmt.Errorf("forward %q: want [ADDR:]HOSTPORT:GUESTPORT", s)
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.IsLoopback() {
		return Forward{}, fmt.Errorf("forward %q: the host address must be a loopback address", s)
	}
	hp, err1 := strconv.ParseUint(parts[0], 10, 16)
	gp, err2 := strconv.ParseUint(parts[1], 10, 16)
	if err1 != nil || err2 != nil || gp == 0 {
		return Forward{}, fmt.Errorf("forward %q: ports must be numbers from 1 to 65535", s)
	}
	return Forward{Host: netip.AddrPortFrom(ip, uint16(hp)), Guest: uint16(gp)}, nil
}

// Network is the guest's network.
type Network struct {
	// Mode is "user" (QEMU's user networking, restricted: no route out,
	// only the forwards), "none" (no network device at all), "socket"
	// (a private link between VMs over a loopback UDP socket pair) or
	// "tap" (an existing tap device, such as one on a bridge).
	Mode     string
	Forwards []Forward
	// Socket mode: this VM's local and remote loopback UDP ports.
	LocalPort, RemotePort uint16
	// Tap mode: the tap device's name.
	Tap string
	// MAC is the guest NIC's MAC address (socket and tap modes).
	MAC string
	// pxe are the user network's options of a PXE boot (pxeBoot).
	pxe string
}

// VM is one virtual machine to boot.
type VM struct {
	// Image is a disk image (raw or qcow2, opened read-only as the
	// overlay's backing file), an ISO (the CD-ROM) or a PXE folder
	// (booted over the first network); a live boot's disk is blank, of
	// DiskSize bytes, and there is none when DiskSize is 0.
	Image     string
	Ignition  string // file passed through fw_cfg, if any
	MemoryMiB int
	CPUs      int
	DiskSize  int64 // grow the overlay to this many bytes, if larger
	SerialLog string
	Networks  []Network
	// Accel is the accelerator, as a Chooser chose it.
	Accel Choice
	// Firmware is FirmwareUEFI (OVMF, the default when empty) or
	// FirmwareBIOS (SeaBIOS, QEMU's own).
	Firmware string
	// StuckAfter bounds how long the guest may make no progress on its
	// console before it is stopped as stuck (DefaultStuckAfter when
	// zero, never when negative): the firmware must start a kernel
	// within it, and the console may not be silent for as long until the
	// guest's system runs.
	StuckAfter time.Duration
	// WorkDir holds the overlay and the firmware variables; it is made
	// and removed by Run when empty.
	WorkDir string
	// Disk, for a live boot, is a disk image (raw or qcow2) the guest
	// gets on an overlay, instead of a blank disk.
	Disk string
	// KernelArgs are more kernel arguments for a PXE boot (its chain
	// script sets them for the PXE folder's script).
	KernelArgs string
	// Keep keeps WorkDir's disk: a later Run with the same WorkDir boots
	// the disk as the last one left it, as a machine powered on again
	// does. The guest's flushes then reach the disk (cache=writeback), so
	// QEMU killed mid-write loses only what the guest had not flushed, as
	// a power cut would.
	Keep bool
}

// Run boots vm and waits until QEMU exits (the guest powers off) or ctx
// ends. QEMU's own messages go to out.
func Run(ctx context.Context, run *command.Runner, log *slog.Logger, vm VM, out io.Writer) error {
	if vm.Keep && vm.WorkDir == "" {
		return errors.New("a kept disk needs its folder (WorkDir)")
	}
	if vm.WorkDir == "" {
		wd, err := workdir.New("nodebake-vm-")
		if err != nil {
			return err
		}
		defer wd.Remove()
		vm.WorkDir = wd.Path
	}
	var from int64 // where this boot's console starts in the log
	if vm.Keep && vm.SerialLog != "" {
		from = logSize(vm.SerialLog)
	}
	// What prepare serves (a PXE folder) lives as long as this boot.
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	args, err := prepare(serveCtx, run, vm)
	if err != nil {
		return err
	}
	log.Info("booting", "image", vm.Image, "accel", string(vm.Accel.Accel), "memory_mib", vm.MemoryMiB, "cpus", vm.CPUs)
	stuckAfter := vm.StuckAfter
	if stuckAfter == 0 {
		stuckAfter = DefaultStuckAfter
	}
	watch := newConsole(vm.Accel.Accel, stuckAfter, time.Now())
	if vm.SerialLog == "" {
		out = io.MultiWriter(out, watch) // the console is QEMU's output
	}
	qctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	cmd, err := run.Start(qctx, command.Cmd{Name: "qemu-system-x86_64", Args: args}, out)
	if err != nil {
		return err
	}
	go watch.follow(qctx, stop, vm.SerialLog, from)
	if err := cmd.Wait(); err != nil {
		if cause := context.Cause(qctx); errors.Is(cause, ErrGuestPanic) || errors.Is(cause, ErrGuestStuck) {
			return cause
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}

// prepare makes the overlay and firmware variables and returns QEMU's
// arguments.
func prepare(ctx context.Context, run *command.Runner, vm VM) ([]string, error) {
	image, err := filepath.Abs(vm.Image)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(image); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if vm.Accel.Accel != AccelKVM && vm.Accel.Accel != AccelTCG {
		return nil, fmt.Errorf("no accelerator chosen (%q): a Chooser makes the choice", vm.Accel.Accel)
	}
	var code, vars string
	switch vm.Firmware {
	case "", FirmwareUEFI:
		if code, vars, err = firmware(); err != nil {
			return nil, err
		}
	case FirmwareBIOS:
		// QEMU boots SeaBIOS when given no firmware.
	default:
		return nil, fmt.Errorf("firmware %q: want %s or %s", vm.Firmware, FirmwareUEFI, FirmwareBIOS)
	}
	varsCopy := filepath.Join(vm.WorkDir, "OVMF_VARS.fd")
	overlay := filepath.Join(vm.WorkDir, "overlay.qcow2")
	cache := "unsafe" // a throwaway disk: the guest's flushes need not reach it
	if vm.Keep {
		cache = "writeback"
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none",
		"-machine", machine,
		"-m", strconv.Itoa(vm.MemoryMiB), "-smp", strconv.Itoa(vm.CPUs),
	}
	if code != "" {
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+varsCopy)
	}
	kind := Kind(image)
	if kind == KindDisk || vm.DiskSize > 0 || vm.Disk != "" {
		args = append(args, "-drive", "if=virtio,format=qcow2,cache="+cache+",file="+qemuPath(overlay))
	}
	args = append(args, "-device", "virtio-rng-pci")
	if _, err := os.Stat(overlay); err == nil && vm.Keep {
		// Powered on again: the disk and the firmware's variables are
		// as the last boot left them.
		if _, err := os.Stat(varsCopy); err != nil && code != "" {
			return nil, fmt.Errorf("the kept disk's firmware variables: %w", err)
		}
	} else if err := newDisk(ctx, run, vm, kind, image, vars, varsCopy, overlay); err != nil {
		return nil, err
	}
	switch kind {
	case KindISO:
		args = append(args, cdromArgs(image)...)
	case KindPXE:
		if len(vm.Networks) == 0 || vm.Networks[0].Mode != "user" {
			return nil, errPXENetwork
		}
		opts, err := pxeBoot(ctx, image, vm.WorkDir, vm.KernelArgs)
		if err != nil {
			return nil, err
		}
		vm.Networks = slices.Clone(vm.Networks)
		vm.Networks[0].pxe = opts
	}

	args = append(args, vm.Accel.args()...)
	switch {
	case vm.SerialLog != "" && vm.Keep:
		// The same machine powered on again: its console goes on in the
		// same log, as a serial console's does.
		args = append(args, "-chardev", "file,id=serial0,append=on,path="+strings.ReplaceAll(vm.SerialLog, ",", ",,"), "-serial", "chardev:serial0")
	case vm.SerialLog != "":
		args = append(args, "-serial", "file:"+vm.SerialLog)
	default:
		args = append(args, "-serial", "stdio")
	}
	if vm.Ignition != "" {
		ign, err := filepath.Abs(vm.Ignition)
		if err != nil {
			return nil, err
		}
		args = append(args, "-fw_cfg", "name="+IgnitionFwCfg+",file="+ign)
	}
	for i, n := range vm.Networks {
		netArgs, err := networkArgs(i, n)
		if err != nil {
			return nil, err
		}
		args = append(args, netArgs...)
	}
	return args, nil
}

// newDisk copies the firmware's variables and makes the overlay that
// holds everything the guest writes.
func newDisk(ctx context.Context, run *command.Runner, vm VM, kind, image, vars, varsCopy, overlay string) error {
	if vars != "" {
		data, err := os.ReadFile(vars)
		if err != nil {
			return err
		}
		if err := os.WriteFile(varsCopy, data, 0o600); err != nil {
			return err
		}
	}
	switch {
	case kind != KindDisk && vm.Disk != "":
		image = vm.Disk
	case kind != KindDisk && vm.DiskSize > 0:
		return blankDisk(ctx, run, overlay, vm.DiskSize)
	case kind != KindDisk:
		return nil
	}
	format := "raw"
	if strings.HasSuffix(image, ".qcow2") {
		format = "qcow2"
	}
	// Made under another name and renamed: a kept disk whose making was
	// cut short is made again, not booted half-made.
	part := overlay + ".part"
	os.Remove(part)
	createArgs := []string{"create", "-q", "-f", "qcow2", "-F", format, "-b", image, part}
	if vm.DiskSize > 0 {
		// Only ever grown: a disk smaller than the image would cut its
		// last partition off.
		size, err := virtualSize(ctx, run, image)
		if err != nil {
			return err
		}
		if vm.DiskSize > size {
			createArgs = append(createArgs, strconv.FormatInt(vm.DiskSize, 10))
		}
	}
	if _, err := run.Run(ctx, command.Cmd{Name: "qemu-img", Args: createArgs}); err != nil {
		return fmt.Errorf("creating overlay: %w", err)
	}
	return os.Rename(part, overlay)
}

// tapRE is an interface name, with none of QEMU's option separators.
var tapRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`)

func networkArgs(i int, n Network) ([]string, error) {
	id := fmt.Sprintf("net%d", i)
	dev := "virtio-net-pci,netdev=" + id
	if n.MAC != "" {
		dev += ",mac=" + n.MAC
	}
	switch n.Mode {
	case "none":
		return nil, nil
	case "user":
		netdev := "user,id=" + id + ",restrict=on"
		for _, f := range n.Forwards {
			netdev += fmt.Sprintf(",hostfwd=tcp:%s:%d-:%d", f.Host.Addr(), f.Host.Port(), f.Guest)
		}
		if n.pxe != "" {
			netdev += n.pxe
			dev += ",bootindex=0"
		}
		return []string{"-netdev", netdev, "-device", dev}, nil
	case "socket":
		netdev := fmt.Sprintf("socket,id=%s,udp=127.0.0.1:%d,localaddr=127.0.0.1:%d", id, n.RemotePort, n.LocalPort)
		return []string{"-netdev", netdev, "-device", dev}, nil
	case "tap":
		// QEMU runs no scripts: the device is set up, and torn down, by
		// whoever made it.
		if !tapRE.MatchString(n.Tap) {
			return nil, fmt.Errorf("tap device %q: want an interface name", n.Tap)
		}
		return []string{"-netdev", "tap,id=" + id + ",ifname=" + n.Tap + ",script=no,downscript=no", "-device", dev}, nil
	default:
		return nil, fmt.Errorf("network mode %q: want user, none, socket or tap", n.Mode)
	}
}

func firmware() (code, vars string, err error) {
	for _, c := range ovmfCode {
		if _, err := os.Stat(c); err == nil {
			return c, ovmfVars[c], nil
		}
	}
	return "", "", ErrNoFirmware
}

// virtualSize is a disk image's size as the guest sees it.
func virtualSize(ctx context.Context, run *command.Runner, image string) (int64, error) {
	out, err := run.Run(ctx, command.Cmd{Name: "qemu-img", Args: []string{"info", "--output=json", image}})
	if err != nil {
		return 0, err
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %w", image, err)
	}
	return info.VirtualSize, nil
}
