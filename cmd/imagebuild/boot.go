package main

import (
	"fmt"

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
	return cmd
}
