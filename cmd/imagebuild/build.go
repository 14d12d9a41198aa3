package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/imager"
)

func newBuildCmd(g *globalOptions) *cobra.Command {
	opts := &profileOptions{}
	var (
		outDir string
		locked bool
	)
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build the disk image a profile describes",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, p, err := opts.load(cmd, g)
			if err != nil {
				return err
			}
			l, err := readLock(p, opts.path, locked)
			if err != nil {
				return err
			}
			res, err := imager.Execute(cmd.Context(), log, imager.Request{
				Profile: p, SourceDir: opts.sourceDir, OutDir: outDir,
				CacheDir: g.cacheDir, HostRoot: "/", Lock: l, Locked: locked,
			})
			if err != nil {
				return err
			}
			for _, img := range res.Images {
				fmt.Fprintln(cmd.OutOrStdout(), img.Path)
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Manifest)
			return nil
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVarP(&outDir, "out", "o", "", "output folder (default: the profile's spec.outputs.dir)")
	cmd.Flags().BoolVar(&locked, "locked", false, "fail, writing nothing, if any input differs from the profile's lock")
	return cmd
}
