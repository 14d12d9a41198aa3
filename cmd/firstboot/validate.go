package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/nodecheck"
)

func newValidateCmd() *cobra.Command {
	var image string
	cmd := &cobra.Command{
		Use:   "validate CONFIG.ign [--image IMAGE]",
		Short: "Check an Ignition config offline, and with --image, against the image",
		Long: "validate checks the Ignition config (its report, with JSON paths), every path\n" +
			"it writes, and the kubeadm configuration in it. With --image it runs the image's\n" +
			"own kubeadm (read from the image, not mounted) on the kubeadm configuration\n" +
			"(kubeadm config validate), and checks the image's Kubernetes version and that\n" +
			"it bakes every image kubeadm will need.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			rep, err := nodecheck.Check(cmd.Context(), raw, image)
			for _, p := range rep.Problems {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], p)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid: %s\n", args[0], rep.Summary)
			return nil
		},
	}
	cmd.Flags().StringVar(&image, "image", "", "a nodebake raw image to check the config against")
	return cmd
}
