package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/inputfile"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/nodecheck"
)

// Exit codes, documented in the README.
const (
	exitOK       = 0
	exitFailed   = 1 // the node could not be configured, or a command's work failed
	exitBadInput = 2 // a config, a flag or an argument is wrong
)

// errUsage marks an error in the command line itself.
var errUsage = errors.New("usage")

// errInvalid marks an input that was read and is wrong.
var errInvalid = errors.New("invalid")

func newRootCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "firstboot",
		Short:         "Turn a booted nodebake image into a Kubernetes node from its Ignition config",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v", errUsage, err)
	})
	cmd.AddCommand(newRunCmd(), newStatusCmd(), newRenderCmd(), newValidateCmd())
	return cmd
}

func exitCode(err error) int {
	var inv *ignitioncfg.InvalidError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage), errors.Is(err, errInvalid), errors.As(err, &inv),
		errors.Is(err, ignitioncfg.ErrVersion),
		errors.Is(err, nodecheck.ErrNoKubeadm), errors.Is(err, kubeadm.ErrInvalidConfig), errors.Is(err, inputfile.ErrInput),
		errors.Is(err, nodecheck.ErrNotImage):
		return exitBadInput
	default:
		return exitFailed
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return nil
	}
}
