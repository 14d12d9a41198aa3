package main

import (
	"fmt"
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
		noNetwork bool
		link, mac string
	)
	cmd := &cobra.Command{
		Use:   "boot IMAGE",
		Short: "Boot an image in QEMU with OVMF, on a throwaway overlay",
		Long: "Boot an image in QEMU with OVMF firmware. Writes go to a temporary qcow2\n" +
			"overlay, so the image stays as built. The guest's user network has no\n" +
			"route out; --forward opens loopback ports to it. KVM is used when\n" +
			"/dev/kvm works, multi-threaded TCG otherwise.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			vm.Image = args[0]
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
			return qemu.Run(cmd.Context(), &command.Runner{Log: log}, log, vm, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&vm.Ignition, "ignition", "", "Ignition config passed through fw_cfg "+qemu.IgnitionFwCfg)
	f.IntVar(&vm.MemoryMiB, "memory", 2048, "memory in MiB")
	f.IntVar(&vm.CPUs, "cpus", 2, "virtual CPUs")
	f.StringVar(&vm.SerialLog, "serial-log", "", "write the serial console to this file instead of standard output")
	f.StringVar(&diskSize, "disk-size", "", "grow the overlay disk to this size, such as 8GiB")
	f.StringArrayVar(&forwards, "forward", nil, "forward [127.0.0.1:]HOSTPORT:GUESTPORT (TCP, loopback only); repeatable")
	f.BoolVar(&noNetwork, "no-network", false, "give the guest no network device at all")
	f.StringVar(&link, "link", "", "instead of the user network, a private Ethernet link to another VM over the loopback UDP ports LOCAL:REMOTE")
	f.StringVar(&mac, "mac", "", "the MAC address of the --link NIC")
	return cmd
}
