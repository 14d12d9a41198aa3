package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/lock"
	"github.com/nodebake/nodebake/internal/profile"
)

type profileOptions struct {
	path      string
	sourceDir string
}

// load makes the logger and loads the profile, for the commands that
// build.
func (o *profileOptions) load(cmd *cobra.Command, g *globalOptions) (*slog.Logger, *profile.Profile, error) {
	log, err := g.logger(cmd.ErrOrStderr())
	if err != nil {
		return nil, nil, err
	}
	p, err := o.profile()
	return log, p, err
}

// profile loads and validates the profile.
func (o *profileOptions) profile() (*profile.Profile, error) {
	if lock.Path(o.path) == o.path {
		return nil, fmt.Errorf("%w: %s: a profile named *.lock would be its own lock file; name it *.yaml", errUsage, o.path)
	}
	return profile.Load(o.path, o.sourceDir)
}

func (o *profileOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.path, "profile", "p", "profiles/default.yaml", "profile file")
	cmd.Flags().StringVar(&o.sourceDir, "source-dir", ".", "folder holding overlays/ and systemd/")
}

func newValidateCmd(_ *globalOptions) *cobra.Command {
	opts := &profileOptions{}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a profile and print every problem with its path",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := opts.profile()
			if err != nil {
				return err
			}
			// The lock beside it, if any, must be this profile's.
			if _, err := readLock(p, opts.path, false); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (profile %s, digest %s)\n", opts.path, p.Metadata.Name, p.Digest()[:12])
			return nil
		},
	}
	opts.addFlags(cmd)
	return cmd
}
