package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/profile"
	"github.com/nodebake/nodebake/internal/qemu"
)

func newBootCmd(g *globalOptions) *cobra.Command {
	var (
		vm        = qemu.VM{}
		forwards  []string
		diskSize  string
		stateDir  string
		noNetwork bool
		link, mac string
		tap       string
		accel     = os.Getenv(qemu.AccelEnv)
		stuck     = qemu.DefaultStuckAfter
	)
	cmd := &cobra.Command{
		Use:   "boot IMAGE",
		Short: "Boot an image in QEMU with OVMF, on a throwaway overlay",
		Long: "Boot an image in QEMU with OVMF firmware (SeaBIOS with --firmware bios).\n" +
			"IMAGE is a disk image (raw or qcow2), an ISO, booted as the CD-ROM, or a PXE\n" +
			"folder, booted over the user network: QEMU's DHCP and TFTP hand iPXE a script\n" +
			"that fetches the folder from an HTTP server on the loopback. A live boot's disk\n" +
			"is blank, of --disk-size, or there is none.\n\n" +
			"Writes go to a temporary qcow2\n" +
			"overlay, so the image stays as built. The guest's user network has no\n" +
			"route out; --forward opens loopback ports to it. With --state-dir the overlay\n" +
			"is kept there, and a later boot with the same folder powers the same machine\n" +
			"on again: after a shutdown, or after the boot was killed, as a power cut.\n\n" +
			"--accel auto (the default, or $" + qemu.AccelEnv + ") uses KVM only once a probe\n" +
			"has proved it runs a guest here (a vCPU through the KVM API, then QEMU's own\n" +
			"firmware on KVM), and multi-threaded TCG otherwise; the choice and its reason\n" +
			"are logged. --accel kvm fails at once where KVM does not work.\n\n" +
			"A guest whose firmware starts no kernel, or whose console goes silent before\n" +
			"its system starts, for --stuck-after is stopped as stuck (exit 1).",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			vm.Image = args[0]
			want, err := qemu.ParseAccel(accel)
			if err != nil {
				return fmt.Errorf("%w: --accel (or %s): %v", errUsage, qemu.AccelEnv, err)
			}
			if vm.MemoryMiB < 128 || vm.MemoryMiB > 1<<20 {
				return fmt.Errorf("%w: --memory %d: want MiB from 128 to 1048576", errUsage, vm.MemoryMiB)
			}
			if vm.CPUs < 1 || vm.CPUs > 255 {
				return fmt.Errorf("%w: --cpus %d: want 1 to 255", errUsage, vm.CPUs)
			}
			if vm.Firmware != qemu.FirmwareUEFI && vm.Firmware != qemu.FirmwareBIOS {
				return fmt.Errorf("%w: --firmware %q: want %s or %s", errUsage, vm.Firmware, qemu.FirmwareUEFI, qemu.FirmwareBIOS)
			}
			if mac != "" {
				hw, err := net.ParseMAC(mac)
				if err != nil || len(hw) != 6 || hw[0]&1 != 0 || link == "" && tap == "" {
					return fmt.Errorf("%w: --mac %q: want the unicast MAC address (such as 52:54:00:12:34:56) of the --link or --tap NIC", errUsage, mac)
				}
			}
			if stuck < 0 {
				return fmt.Errorf("%w: --stuck-after %s: want a duration, or 0 for never", errUsage, stuck)
			}
			vm.StuckAfter = stuck
			if stuck == 0 {
				vm.StuckAfter = -1 // never
			}
			if stateDir != "" {
				if err := os.MkdirAll(stateDir, 0o700); err != nil {
					return fmt.Errorf("--state-dir: %w", err)
				}
				vm.WorkDir, vm.Keep = stateDir, true
			}
			if diskSize != "" {
				if vm.DiskSize, err = profile.ParseSize(diskSize); err != nil {
					return fmt.Errorf("%w: --disk-size: %v", errUsage, err)
				}
			}
			network := qemu.Network{Mode: "user"}
			if noNetwork {
				network.Mode = "none"
			}
			for _, f := range forwards {
				fw, err := qemu.ParseForward(f)
				if err != nil {
					return fmt.Errorf("%w: %v", errUsage, err)
				}
				network.Forwards = append(network.Forwards, fw)
			}
			vm.Networks = []qemu.Network{network}
			if link != "" {
				// A private link to other VMs instead of the user network.
				l, r, ok := strings.Cut(link, ":")
				lp, err1 := strconv.ParseUint(l, 10, 16)
				rp, err2 := strconv.ParseUint(r, 10, 16)
				if !ok || err1 != nil || err2 != nil || lp == 0 || rp == 0 {
					return fmt.Errorf("%w: --link %q: want LOCALPORT:REMOTEPORT", errUsage, link)
				}
				vm.Networks = []qemu.Network{{Mode: "socket", LocalPort: uint16(lp), RemotePort: uint16(rp), MAC: mac}}
			}
			if tap != "" {
				if link != "" {
					return fmt.Errorf("%w: --tap and --link: give one", errUsage)
				}
				vm.Networks = []qemu.Network{{Mode: "tap", Tap: tap, MAC: mac}}
			}
			if err := qemu.CheckImage(vm.Image); err != nil {
				return err // before any probe
			}
			if err := checkLiveFlags(vm); err != nil {
				return err
			}
			run := &command.Runner{Log: log}
			chooser := &qemu.Chooser{Want: want, Probe: qemu.ProbeKVM(run), Log: log}
			if vm.Accel, err = chooser.Choose(cmd.Context()); err != nil {
				return err
			}
			return qemu.Run(cmd.Context(), run, log, vm, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&vm.Ignition, "ignition", "", "Ignition config passed through fw_cfg "+qemu.IgnitionFwCfg)
	f.IntVar(&vm.MemoryMiB, "memory", 2048, "memory in MiB")
	f.IntVar(&vm.CPUs, "cpus", 2, "virtual CPUs")
	f.StringVar(&vm.Firmware, "firmware", qemu.FirmwareUEFI, "firmware: uefi (OVMF) or bios (SeaBIOS)")
	f.StringVar(&vm.SerialLog, "serial-log", "", "write the serial console to this file instead of standard output")
	f.StringVar(&diskSize, "disk-size", "", "grow the overlay disk to this size, such as 8GiB")
	f.StringVar(&stateDir, "state-dir", "", "keep the VM's disk (its overlay) and firmware variables in this folder: a later boot with it powers the same machine on again")
	f.StringArrayVar(&forwards, "forward", nil, "forward [127.0.0.1:]HOSTPORT:GUESTPORT (TCP, loopback only); repeatable")
	f.StringVar(&vm.Disk, "disk", "", "a live boot's disk: this disk image (raw or qcow2) on an overlay, instead of a blank one")
	f.StringVar(&vm.KernelArgs, "kernel-args", "", "a PXE boot's extra kernel arguments, such as nodebake.state=/dev/vda")
	f.BoolVar(&noNetwork, "no-network", false, "give the guest no network device at all")
	f.StringVar(&link, "link", "", "instead of the user network, a private Ethernet link to another VM over the loopback UDP ports LOCAL:REMOTE")
	f.StringVar(&tap, "tap", "", "instead of the user network, the existing tap device IFNAME (on a bridge of yours; QEMU runs no scripts)")
	f.StringVar(&mac, "mac", "", "the MAC address of the --link or --tap NIC")
	f.StringVar(&accel, "accel", accel, "accelerator: auto (KVM once proved to work, else TCG), kvm or tcg; default $"+qemu.AccelEnv+", else auto")
	f.DurationVar(&stuck, "stuck-after", stuck, "stop a guest whose firmware starts no kernel, or whose console is silent before its system starts, for this long (0: never)")
	return cmd
}

// checkLiveFlags refuses the live boot's flags where they do not apply.
func checkLiveFlags(vm qemu.VM) error {
	kind := qemu.Kind(vm.Image)
	if vm.Disk != "" {
		if kind == qemu.KindDisk {
			return fmt.Errorf("%w: --disk: a disk image boots its own disk; --disk is for an ISO or a PXE folder", errUsage)
		}
		if fi, err := os.Stat(vm.Disk); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("%w: --disk %s: not a regular file", errUsage, vm.Disk)
		}
	}
	if vm.KernelArgs != "" {
		if kind != qemu.KindPXE {
			return fmt.Errorf("%w: --kernel-args: for a PXE folder only (a disk or ISO boots its own command line)", errUsage)
		}
		if strings.IndexFunc(vm.KernelArgs, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
			return fmt.Errorf("%w: --kernel-args: control characters", errUsage)
		}
	}
	return nil
}
