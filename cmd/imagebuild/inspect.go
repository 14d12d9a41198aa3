package main

import (
	"encoding/json"
	"errors"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/inspect"
)

func newInspectCmd(_ *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Read a raw image back, without mounting it, and summarize it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := inspect.Image(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			r.WriteText(cmd.OutOrStdout())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func isBadImage(err error) bool { return errors.Is(err, diskimage.ErrNotImage) }
