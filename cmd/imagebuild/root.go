package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/images"
	"github.com/nodebake/nodebake/internal/inputfile"
	"github.com/nodebake/nodebake/internal/kit"
	"github.com/nodebake/nodebake/internal/lock"
	"github.com/nodebake/nodebake/internal/profile"
	"github.com/nodebake/nodebake/internal/termlog"
)

// Exit codes, documented in the README.
const (
	exitOK       = 0
	exitFailed   = 1 // the work failed: a tool, the network, the disk
	exitBadInput = 2 // the input is wrong: a profile, a flag, an image, a lock
	exitDrift    = 3 // build --locked: an input differs from the lock
)

// errUsage marks an error in the command line itself.
var errUsage = errors.New("usage")

// errBadLock marks a lock file that is missing or unreadable.
var errBadLock = errors.New("lock")

type globalOptions struct {
	logFormat string
	logLevel  string
	cacheDir  string
}

func newRootCmd() *cobra.Command {
	opts := &globalOptions{}
	cmd := &cobra.Command{
		Use:           "imagebuild",
		Short:         "Bake immutable Kubernetes node images from a declarative profile",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.PersistentFlags().StringVar(&opts.logFormat, "log-format", "text", "log format: text or json")
	cmd.PersistentFlags().StringVar(&opts.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.PersistentFlags().StringVar(&opts.cacheDir, "cache-dir", cache.DefaultDir(), "folder for cached build outputs")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v", errUsage, err)
	})
	cmd.AddCommand(
		newValidateCmd(opts),
		newBuildCmd(opts),
		newLockCmd(opts),
		newInspectCmd(opts),
		newBootCmd(opts),
	)
	return cmd
}

// logger makes the logger the flags ask for, writing to w.
func (o *globalOptions) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q", errUsage, o.logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		h := slog.Handler(slog.NewTextHandler(w, hopts))
		if termlog.IsTerminal(w) {
			// The kit's progress: one line that updates in place.
			h = termlog.New(w, h)
		}
		return slog.New(h), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	default:
		return nil, fmt.Errorf("%w: --log-format must be text or json, not %q", errUsage, o.logFormat)
	}
}

// exactArgs is cobra.ExactArgs with the error marked as a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return nil
	}
}

func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case lock.IsDrift(err):
		return exitDrift
	case errors.Is(err, errUsage), errors.Is(err, profile.ErrInvalid), errors.Is(err, errBadLock),
		errors.Is(err, kit.ErrUnpinned), errors.Is(err, images.ErrUnpinned), isBadImage(err), errors.Is(err, inputfile.ErrInput):
		return exitBadInput
	default:
		return exitFailed
	}
}
