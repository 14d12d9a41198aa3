package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nodebake/nodebake/internal/atomicfile"
	"github.com/nodebake/nodebake/internal/capi"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/nodecheck"
)

// ErrCommands is a failure of Cluster API's pre- or postKubeadmCommands.
var ErrCommands = errors.New("Cluster API commands failed")

// The agent carries out Cluster API's /etc/kubeadm.sh itself, step by
// step, as phases of its own record (the package capi says why):
//
//	prekubeadm   the preKubeadmCommands
//	kubeadm      kubeadm init or join --config /etc/kubeadm.yml, checked
//	             again first if the commands rewrote it
//	postkubeadm  the success file, the move of /etc/kubeadm.yml to /tmp,
//	             then the postKubeadmCommands
//
// Each runs once; one cut short by a crash or a power cut runs again
// from its start on the next boot, as the script would have.

// preKubeadm runs the preKubeadmCommands.
func (a *Agent) preKubeadm(ctx context.Context) error {
	return a.commands(ctx, "pre", a.run.capi.Pre)
}

// recheck reads the kubeadm configuration kubeadm is about to read. The
// preKubeadmCommands may have rewritten it (Cluster API's Flatcar
// templates fill it in with envsubst): if they did, or it was a template
// kubeadm could not validate before, it is checked again, as validate
// checked the config's, before kubeadm sees it.
func (a *Agent) recheck(ctx context.Context, checked []byte) error {
	disk, err := os.ReadFile(a.path(a.run.kubePath))
	if err != nil {
		return err
	}
	if bytes.Equal(disk, checked) && !a.run.template {
		return nil
	}
	a.Log.Info("checking the kubeadm configuration the preKubeadmCommands left", "path", a.run.kubePath, "template", a.run.template)
	kc, err := nodecheck.Kubeadm(ctx, a.Node, a.path("/run/nodebake"), a.run.kubePath, disk)
	if kc != nil {
		a.run.secrets = append(a.run.secrets, kc.Secrets...)
		a.Node.Redact(a.run.secrets)
	}
	if err != nil {
		return err
	}
	if kc.Role != a.run.kubeCfg.Role {
		return fmt.Errorf("%w: the preKubeadmCommands made %s a config for %s, not %s", kubeadm.ErrInvalidConfig, a.run.kubePath, kc.Role, a.run.kubeCfg.Role)
	}
	a.run.kubeCfg = kc
	return nil
}

// postKubeadm finishes the script: the success file Cluster API waits
// for, the kubeadm configuration (it holds the bootstrap token) moved out
// of /etc to /tmp, which the next boot empties, then the
// postKubeadmCommands.
func (a *Agent) postKubeadm(ctx context.Context) error {
	if err := a.record(ctx); err != nil {
		return err
	}
	if err := move(a.path(capi.ConfigPath), a.path(capi.MovedConfig)); err != nil {
		return err
	}
	return a.commands(ctx, "post", a.run.capi.Post)
}

// commands runs cmds as a script of their own, under bash with set -e,
// as Cluster API's script runs them.
func (a *Agent) commands(ctx context.Context, which, cmds string) error {
	if cmds == "" {
		return nil
	}
	if err := a.writeMetadata(); err != nil {
		return err
	}
	p := a.path("/run/nodebake/capi-" + which + "kubeadm.sh")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(p, capi.Script(cmds), 0o700); err != nil {
		return err
	}
	env, err := a.commandsEnv()
	if err != nil {
		return fmt.Errorf("%w: %sKubeadmCommands: %w", ErrCommands, which, err)
	}
	if err := a.Node.Commands(ctx, p, env); err != nil {
		return fmt.Errorf("%w: %sKubeadmCommands: %w", ErrCommands, which, err)
	}
	return nil
}

// commandsEnv is the environment the unit's drop-ins give: Environment=
// first, then each EnvironmentFile=, read now, whose settings override
// it, as systemd orders them. A missing file that is not optional stops
// the commands, as it would stop the unit.
func (a *Agent) commandsEnv() ([]string, error) {
	env := append([]string(nil), a.run.capi.Env...)
	for _, f := range a.run.capi.EnvFiles {
		b, err := os.ReadFile(a.path(f.Path))
		if errors.Is(err, fs.ErrNotExist) && f.Optional {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("EnvironmentFile=%s: %w", f.Path, err)
		}
		vars, err := capi.ReadEnvFile(b)
		if err != nil {
			return nil, fmt.Errorf("EnvironmentFile=%s: %w", f.Path, err)
		}
		env = append(env, vars...)
	}
	return env, nil
}

// move moves a file across filesystems; one already moved is left.
func move(from, to string) error {
	data, err := os.ReadFile(from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(to, data, 0o600); err != nil {
		return err
	}
	return os.Remove(from)
}
