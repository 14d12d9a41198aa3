package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/imager"
	"github.com/nodebake/nodebake/internal/lock"
	"github.com/nodebake/nodebake/internal/profile"
)

func newLockCmd(g *globalOptions) *cobra.Command {
	opts := &profileOptions{}
	cmd := &cobra.Command{
		Use:   "lock",
		Short: "Resolve every input of a profile and write them to its lock file",
		Long: "lock runs a build up to the disk (nothing is written but the lock): it records\n" +
			"the Debian package versions, the Go modules with their go.sum hashes, the\n" +
			"sha256 of every kit program and url or file download, and every image's\n" +
			"digest, in PROFILE.lock beside the profile. A url's sha256 is taken from what\n" +
			"was downloaded: compare it with the checksum its project publishes elsewhere.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, p, err := opts.load(cmd, g)
			if err != nil {
				return err
			}
			res, err := imager.Execute(cmd.Context(), log, imager.Request{
				Profile: p, SourceDir: opts.sourceDir, CacheDir: g.cacheDir, HostRoot: "/", LockOnly: true,
			})
			if err != nil {
				return err
			}
			path := lock.Path(opts.path)
			if err := res.Lock.Write(path); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	opts.addFlags(cmd)
	return cmd
}

// readLock reads the profile's lock. Without --locked a missing lock is
// no error: it only supplies pins. A lock made for another profile or
// suite is refused before any work.
func readLock(p *profile.Profile, profilePath string, locked bool) (*lock.Lock, error) {
	path := lock.Path(profilePath)
	l, err := lock.Read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !locked:
		return nil, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: --locked: %s does not exist; run imagebuild lock", errBadLock, path)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", errBadLock, err)
	}
	if l.Profile != p.Metadata.Name || l.Suite != p.Spec.Base.Suite {
		return nil, fmt.Errorf("%w: %s is the lock of profile %q on %s, not of %q on %s; run imagebuild lock",
			errBadLock, path, l.Profile, l.Suite, p.Metadata.Name, p.Spec.Base.Suite)
	}
	return l, nil
}
