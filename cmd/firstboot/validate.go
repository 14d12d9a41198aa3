package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/inputfile"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/nodecheck"
)

// maxConfigSize bounds an Ignition config read from a file.
const maxConfigSize = 64 << 20

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
			raw, err := inputfile.Read(args[0], maxConfigSize)
			if err != nil {
				return err
			}
			in := nodecheck.Input{Config: raw, Fetch: &ignitioncfg.Fetcher{Deadline: 10 * time.Second}}
			var img *nodecheck.Image
			if image != "" {
				if img, err = nodecheck.OpenImage(image); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				defer img.Close()
				in.Target, in.Scratch = img, img.Scratch()
			}
			res, err := nodecheck.Check(cmd.Context(), in)
			for _, p := range res.Problems {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], p)
			}
			if err != nil {
				if res.Kubeadm != nil {
					err = kubeadm.RedactError(err, res.Kubeadm.Secrets)
				}
				return fmt.Errorf("%s: %w", args[0], err)
			}
			summary := res.Summary
			if img != nil {
				summary += fmt.Sprintf("; %s's kubeadm accepts it, and the image bakes every image it needs", img.Name())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid: %s\n", args[0], summary)
			return nil
		},
	}
	cmd.Flags().StringVar(&image, "image", "", "a nodebake raw image to check the config against")
	return cmd
}
