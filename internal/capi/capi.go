// Package capi reads the bootstrap contract of Cluster API's kubeadm
// bootstrap provider (CABPK) from a machine's Ignition config, so that the
// first-boot agent can carry it out itself, with its own checks and
// crash safety, instead of the unit that would run it blind.
//
// The contract, as CABPK's Ignition templates write it:
//   - /etc/kubeadm.yml, mode 0600: ClusterConfiguration and
//     InitConfiguration for an init, or a JoinConfiguration;
//   - /etc/kubeadm.sh, mode 0700: `set -e`, the preKubeadmCommands,
//     `kubeadm init|join --config /etc/kubeadm.yml`, the success file,
//     `mv /etc/kubeadm.yml /tmp/`, then the postKubeadmCommands;
//   - kubeadm.service, which runs that script once;
//   - for control planes, the cluster's CAs under /etc/kubernetes/pki.
package capi

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/nodebake/nodebake/internal/ignitioncfg"
)

const (
	// ConfigPath is the kubeadm configuration CABPK writes.
	ConfigPath = "/etc/kubeadm.yml"
	// ScriptPath is the script kubeadm.service runs.
	ScriptPath = "/etc/kubeadm.sh"
	// Unit is CABPK's unit.
	Unit = "kubeadm.service"
	// SuccessFile is the file Cluster API waits for: the bootstrap
	// provider contract's sign that the machine bootstrapped.
	SuccessFile = "/run/cluster-api/bootstrap-success.complete"
	// MovedConfig is where the script moves the kubeadm configuration
	// once kubeadm succeeded, so that the unit never runs again.
	MovedConfig = "/tmp/kubeadm.yml"
	execStart   = "ExecStart=/bin/bash " + ScriptPath
)

// ErrContract is a config that carries part of the contract, or changes
// it in a way the agent cannot carry out.
var ErrContract = errors.New("Cluster API bootstrap contract")

// Bootstrap is the contract found in a config.
type Bootstrap struct {
	// Subcommand is the script's kubeadm subcommand: init or join.
	Subcommand string
	// Pre and Post are the preKubeadmCommands and postKubeadmCommands,
	// as bash source, as Cluster API wrote them ("" for none).
	Pre, Post string
	// Env are the unit's drop-ins' Environment= assignments, in order,
	// and EnvFiles their EnvironmentFile= files: the environment the
	// commands run in, as the unit would give it.
	Env      []string
	EnvFiles []EnvFile
}

// EnvFile is an EnvironmentFile= of a drop-in; Optional for one given
// with a leading "-".
type EnvFile struct {
	Path     string
	Optional bool
}

// The script's fixed lines around its kubeadm command.
var (
	kubeadmLine = regexp.MustCompile(`^kubeadm (init|join) --config /etc/kubeadm\.yml( --v [0-9]+)? *$`)
	successLine = "mkdir -p /run/cluster-api && echo success > " + SuccessFile
	moveLine    = "mv " + ConfigPath + " /tmp/"
)

// Find reports whether cfg carries the contract, and reads it. read gives
// a file's contents as written. A config with none of the contract's
// parts is (nil, nil); one with some but not all of them, or whose unit
// does not run the script as Cluster API writes it, is an
// *ignitioncfg.InvalidError naming the JSON path.
func Find(cfg ignitioncfg.Config, read func(ignitioncfg.File) ([]byte, error)) (*Bootstrap, error) {
	script, config, unit := -1, -1, -1
	for i, f := range cfg.Storage.Files {
		switch f.Path {
		case ScriptPath:
			script = i
		case ConfigPath:
			config = i
		}
	}
	for i, u := range cfg.Systemd.Units {
		if u.Name == Unit {
			unit = i
		}
	}
	if script < 0 && config < 0 && unit < 0 {
		return nil, nil
	}
	var problems []ignitioncfg.Problem
	bad := func(path, format string, args ...any) {
		problems = append(problems, ignitioncfg.Problem{Kind: "error", Path: path, Message: fmt.Sprintf(format, args...), Fatal: true})
	}
	for _, part := range []struct {
		at   int
		what string
	}{{script, "the file " + ScriptPath}, {config, "the file " + ConfigPath}, {unit, "the unit " + Unit}} {
		if part.at < 0 {
			bad("", "%s: a Cluster API config has %s, %s and %s; this one lacks %s", ErrContract, ScriptPath, ConfigPath, Unit, part.what)
		}
	}
	if len(problems) > 0 {
		return nil, &ignitioncfg.InvalidError{Problems: problems}
	}
	u := cfg.Systemd.Units[unit]
	at := fmt.Sprintf("$.systemd.units.%d", unit)
	if u.Contents == nil || !hasLine(*u.Contents, execStart) {
		bad(at+".contents", "%s: %s does not run %q; the agent carries out Cluster API's script itself and knows only that unit", ErrContract, Unit, execStart)
	}
	var env []string
	var files []EnvFile
	for j, d := range u.Dropins {
		e, f, err := dropin(d.Contents)
		if err != nil {
			bad(fmt.Sprintf("%s.dropins.%d.contents", at, j), "%s: drop-in %s of %s: %s", ErrContract, d.Name, Unit, err)
		}
		env, files = append(env, e...), append(files, f...)
	}
	if u.Mask != nil && *u.Mask {
		bad(at+".mask", "%s: %s is masked", ErrContract, Unit)
	}
	raw, err := read(cfg.Storage.Files[script])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ScriptPath, err)
	}
	b, err := ParseScript(raw)
	if err != nil {
		bad(fmt.Sprintf("$.storage.files.%d.contents", script), "%s: %s", ScriptPath, err)
	}
	if len(problems) > 0 {
		return nil, &ignitioncfg.InvalidError{Problems: problems}
	}
	b.Env, b.EnvFiles = env, files
	return b, nil
}

func hasLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// ParseScript splits Cluster API's /etc/kubeadm.sh at its fixed lines:
// the preKubeadmCommands are what lies between `set -e` and the kubeadm
// command, the postKubeadmCommands what follows the move of the kubeadm
// configuration. A script of another shape is an error, naming the line.
func ParseScript(raw []byte) (*Bootstrap, error) {
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) < 2 || lines[0] != "#!/bin/bash" || lines[1] != "set -e" {
		return nil, fmt.Errorf("%w: the script does not begin with Cluster API's \"#!/bin/bash\" and \"set -e\"", ErrContract)
	}
	// The kubeadm command is the last line of its form followed by the
	// success file and the move.
	k := -1
	for i := len(lines) - 3; i >= 2; i-- {
		if kubeadmLine.MatchString(lines[i]) && lines[i+1] == successLine && lines[i+2] == moveLine {
			k = i
			break
		}
	}
	if k < 0 {
		return nil, fmt.Errorf("%w: no line \"kubeadm init|join --config %s\" followed by %q and %q", ErrContract, ConfigPath, successLine, moveLine)
	}
	return &Bootstrap{
		Subcommand: kubeadmLine.FindStringSubmatch(lines[k])[1],
		Pre:        commands(lines[2:k]),
		Post:       commands(lines[k+3:]),
	}, nil
}

// commands is a run of the script's lines as bash source, "" when there
// is nothing but blank lines.
func commands(lines []string) string {
	s := strings.Join(lines, "\n")
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return strings.Trim(s, "\n") + "\n"
}

// Script is bash source that runs cmds as the contract's script runs
// them: under bash, stopping at the first failure.
func Script(cmds string) []byte {
	return []byte("#!/bin/bash\nset -e\n" + cmds)
}

// Adopt is cfg as the agent applies it: Cluster API's unit is written
// but neither enabled nor started, since the agent carries out its
// script's steps itself; run by systemd too, it would run kubeadm a
// second time beside the agent, or after a power cut, over its partial
// state.
func Adopt(cfg ignitioncfg.Config) ignitioncfg.Config {
	units := append(cfg.Systemd.Units[:0:0], cfg.Systemd.Units...)
	for i := range units {
		if units[i].Name == Unit {
			units[i].Enabled = nil
		}
	}
	cfg.Systemd.Units = units
	return cfg
}

// dropin reads a drop-in for Cluster API's unit. The agent runs the
// unit's steps itself, so of what a drop-in can say it honours the
// environment the commands get (Environment=, EnvironmentFile=: Cluster
// API's Flatcar templates give them /run/metadata/flatcar that way), and
// lets [Unit] dependencies and ordering go, since the agent runs after
// the network, containerd and the metadata it writes itself. Anything
// else in [Service] (another ExecStart, a user, a timeout) would silently
// not happen, and is refused.
func dropin(contents *string) ([]string, []EnvFile, error) {
	if contents == nil {
		return nil, nil, nil
	}
	opts, err := unit.DeserializeOptions(strings.NewReader(*contents))
	if err != nil {
		return nil, nil, err
	}
	var env []string
	var files []EnvFile
	for _, o := range opts {
		switch {
		case o.Section == "Unit", o.Section == "Install":
		case o.Section == "Service" && o.Name == "Environment":
			words, err := splitQuoted(o.Value)
			if err != nil {
				return nil, nil, fmt.Errorf("Environment=%s: %w", o.Value, err)
			}
			for _, w := range words {
				if k, _, ok := strings.Cut(w, "="); !ok || k == "" {
					return nil, nil, fmt.Errorf("Environment=%s: %q is not NAME=VALUE", o.Value, w)
				}
			}
			env = append(env, words...)
		case o.Section == "Service" && o.Name == "EnvironmentFile":
			p, optional := strings.CutPrefix(strings.TrimSpace(o.Value), "-")
			if !strings.HasPrefix(p, "/") {
				return nil, nil, fmt.Errorf("EnvironmentFile=%s is not an absolute path", o.Value)
			}
			files = append(files, EnvFile{Path: p, Optional: optional})
		default:
			return nil, nil, fmt.Errorf("[%s] %s= is not supported: the agent carries out the unit's script itself, so only Environment= and EnvironmentFile= take effect; put commands in preKubeadmCommands or postKubeadmCommands", o.Section, o.Name)
		}
	}
	return env, files, nil
}

// splitQuoted splits an Environment= value into its words as systemd
// does: separated by spaces, each word "quoted" or 'quoted' as a whole.
func splitQuoted(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	quote, started := byte(0), false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			w.WriteByte(c)
		case c == '"' || c == '\'':
			quote, started = c, true
		case c == ' ' || c == '\t':
			if started {
				words, started = append(words, w.String()), false
				w.Reset()
			}
		default:
			w.WriteByte(c)
			started = true
		}
	}
	if quote != 0 {
		return nil, errors.New("an unclosed quote")
	}
	if started {
		words = append(words, w.String())
	}
	return words, nil
}

// ReadEnvFile reads an EnvironmentFile= as systemd does: NAME=VALUE
// lines, blank lines and # or ; comments skipped, a value in matching
// quotes unquoted.
func ReadEnvFile(b []byte) ([]string, error) {
	var env []string
	for n, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d is not NAME=VALUE", n+1)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env = append(env, k+"="+v)
	}
	return env, nil
}
