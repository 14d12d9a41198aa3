package ignitioncfg

import (
	"context"
	"os"
	"path/filepath"

	"github.com/coreos/ignition/v2/config/v3_5/types"

	"github.com/nodebake/nodebake/internal/atomicfile"
	"github.com/nodebake/nodebake/internal/command"
)

// unitDir is where a config's units and drop-ins go: the administrator's
// folder, on the writable /etc.
const unitDir = "/etc/systemd/system"

// unit writes a unit's contents and drop-ins, then masks, enables or
// disables it with systemctl --root, which edits links and needs no
// running systemd.
func (t *Target) unit(ctx context.Context, u types.Unit, res *Result) error {
	dir := t.host(unitDir)
	if u.Contents != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, u.Name), []byte(*u.Contents), 0o644); err != nil {
			return err
		}
		res.UnitsChanged = true
	}
	for _, d := range u.Dropins {
		if d.Contents == nil {
			continue
		}
		ddir := filepath.Join(dir, u.Name+".d")
		if err := os.MkdirAll(ddir, 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(ddir, d.Name), []byte(*d.Contents), 0o644); err != nil {
			return err
		}
		res.UnitsChanged = true
	}
	systemctl := func(verb string) error {
		_, err := t.Run.Run(ctx, command.Cmd{Name: "systemctl", Args: []string{"--root", t.Root, verb, u.Name}})
		return err
	}
	switch {
	case boolOf(u.Mask):
		res.UnitsChanged = true
		return systemctl("mask")
	case u.Mask != nil:
		// mask: false undoes a mask the image or an earlier config set.
		if target, err := os.Readlink(filepath.Join(dir, u.Name)); err == nil && target == "/dev/null" {
			res.UnitsChanged = true
			if err := systemctl("unmask"); err != nil {
				return err
			}
		}
	}
	switch {
	case u.Enabled == nil:
	case *u.Enabled:
		res.UnitsChanged = true
		res.Start = append(res.Start, u.Name)
		return systemctl("enable")
	default:
		res.UnitsChanged = true
		return systemctl("disable")
	}
	return nil
}
