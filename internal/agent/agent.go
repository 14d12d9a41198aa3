// Package agent is the first-boot agent: it turns a booted nodebake image
// into a control-plane or worker node, in phases that read like its
// runbook (identity, fetch, validate, apply, images, prekubeadm, kubeadm,
// imported, postkubeadm, network, record),
// and keeps a durable record so that a crash at any point resumes safely.
package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nodebake/nodebake/internal/capi"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/configsource"
	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/rootpath"
)

// SuccessMarker is the file Cluster API tooling waits for.
const SuccessMarker = capi.SuccessFile

// Agent runs the phases. Node is the running system it acts on.
type Agent struct {
	Root    string // "/" on a node
	Sources *configsource.Env
	Node    Node
	// Runner runs the programs that apply the Ignition config under Root
	// (useradd, systemctl --root); one that logs to Log when nil.
	Runner  *command.Runner
	Fetch   *ignitioncfg.Fetcher
	Log     *slog.Logger
	Notify  Notifier
	Console io.Writer
	// JoinDeadline bounds the retries of a join while the control plane
	// is unreachable (default one hour); JoinBackoff is the first wait.
	JoinDeadline time.Duration
	JoinBackoff  time.Duration
	// InitDeadline bounds each wait in finishing an init kubeadm left
	// unfinished (default one hour); InitBackoff is the first wait.
	InitDeadline time.Duration
	InitBackoff  time.Duration
	Now          func() time.Time
	// SinceBoot is the monotonic clock's seconds since boot, for the
	// milestones; CLOCK_MONOTONIC when nil.
	SinceBoot func() float64

	st  *Status
	run runState
}

// runState is what one run learns and the later phases use.
type runState struct {
	found   *configsource.Found
	cfg     ignitioncfg.Config
	kubeCfg *kubeadm.Config
	// kubePath is where the config wrote kubeCfg, and kubeYAML the
	// file as validate checked it.
	kubePath string
	kubeYAML []byte
	// template is a kubeadm configuration the preKubeadmCommands fill
	// in; kubeadm validates it only then.
	template bool
	// capi is Cluster API's bootstrap contract, for a config that
	// carries it.
	capi    *capi.Bootstrap
	secrets []string
}

type phase struct {
	name string
	// always phases run on every start, even after they finished once:
	// they only read, and later phases need what they learn, or, as the
	// images phase, make sure of what later phases need (an import
	// already done costs a comparison of names and digests).
	always bool
	run    func(context.Context) error
	// capi phases run only for a config that carries Cluster API's
	// bootstrap contract.
	capi bool
}

func (a *Agent) phases() []phase {
	return []phase{
		{"identity", true, a.identity, false},
		{"fetch", true, a.fetch, false},
		{"validate", true, a.validate, false},
		{"apply", false, a.apply, false},
		{"images", true, a.images, false},
		{"prekubeadm", false, a.preKubeadm, true},
		{"kubeadm", false, a.kubeadm, false},
		{"imported", false, a.imported, false},
		{"postkubeadm", false, a.postKubeadm, true},
		{"network", false, a.podNetwork, false},
		{"record", false, a.record, false},
	}
}

func (a *Agent) runner() *command.Runner {
	if a.Runner != nil {
		return a.Runner
	}
	return &command.Runner{Log: a.Log}
}

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now().UTC()
}

func (a *Agent) path(p string) string {
	return rootpath.Join(a.Root, p)
}

func (a *Agent) save() error { return a.st.write(a.Root) }

// Run does whatever the record says is left. It returns nil for a node
// that is configured (now or before) or has no config at all.
func (a *Agent) Run(ctx context.Context) error {
	st, err := ReadStatus(a.Root)
	if err != nil {
		return err
	}
	a.st = st
	if st.Succeeded {
		// /run is empty after a reboot: the marker is made again.
		if err := a.record(ctx); err != nil {
			return err
		}
		a.Log.Info("node already configured", "role", st.Role, "node", st.NodeName, "since", st.Finished)
		a.Notify.Status("configured: " + st.Role + " " + st.NodeName)
		a.Notify.Ready()
		a.summary("already configured")
		return nil
	}
	if st.FirstStarted.IsZero() {
		st.FirstStarted = a.now()
	}
	st.LastStarted, st.Runs, st.Result, st.Error, st.ErrorClass = a.now(), st.Runs+1, ResultRunning, "", ""
	a.mark(MilestoneAgent, a.sinceBoot())
	a.markUnits(ctx)
	if err := a.save(); err != nil {
		return err
	}
	for _, p := range a.phases() {
		if !p.always && st.Done(p.name) || p.capi && a.run.capi == nil {
			continue
		}
		st.Phase = p.name
		a.Notify.Status(p.name)
		a.Log.Info("phase", "phase", p.name, "status", "start")
		a.console("phase %s", p.name)
		start, startBoot := a.now(), a.sinceBoot()
		err := p.run(ctx)
		if errors.Is(err, configsource.ErrNoConfig) {
			return a.unconfigured()
		}
		if err != nil {
			return a.fail(p.name, err)
		}
		secs := a.now().Sub(start).Seconds()
		a.Log.Info("phase", "phase", p.name, "status", "done", "seconds", fmt.Sprintf("%.1f", secs))
		if !st.Done(p.name) {
			st.Phases = append(st.Phases, Phase{Name: p.name, Started: start, SinceBoot: round1(startBoot), Finished: a.now(), Seconds: secs})
		}
		if err := a.save(); err != nil {
			return err
		}
	}
	st.Result, st.Phase, st.Succeeded, st.Finished = ResultSuccess, "", true, a.now()
	if err := a.save(); err != nil {
		return err
	}
	a.Notify.Status("configured: " + st.Role + " " + st.NodeName)
	a.Notify.Ready()
	a.summary("configured")
	a.watchNode(ctx)
	return nil
}

// unconfigured leaves the node up and says so, once; it does not retry.
func (a *Agent) unconfigured() error {
	a.st.Result, a.st.Phase, a.st.Finished = ResultUnconfigured, "", a.now()
	if err := a.save(); err != nil {
		return err
	}
	a.Log.Warn("no Ignition config in any source; the node stays unconfigured", "sources", strings.Join(configsource.Names(), ","))
	a.Notify.Status("unconfigured: no Ignition config found")
	a.Notify.Ready()
	a.summary("unconfigured: no Ignition config in " + strings.Join(configsource.Names(), ", "))
	return nil
}

// fail records a failure with its class. The message is redacted of every
// secret the config holds.
func (a *Agent) fail(phase string, err error) error {
	msg := kubeadm.Redact(err.Error(), a.run.secrets)
	a.st.Result, a.st.Phase, a.st.Finished = ResultFailed, phase, a.now()
	a.st.ErrorClass, a.st.Error = errorClass(err), msg
	if werr := a.save(); werr != nil {
		return errors.Join(errors.New(msg), werr)
	}
	a.Log.Error("phase failed", "phase", phase, "class", a.st.ErrorClass, "error", msg)
	a.Notify.Status("failed in " + phase + ": " + a.st.ErrorClass)
	a.summary("FAILED in " + phase + " (" + a.st.ErrorClass + "): " + firstLine(msg))
	for _, l := range strings.Split(msg, "\n") {
		// kubeadm's own verdicts, one per line.
		if strings.Contains(l, "[ERROR") && a.Console != nil {
			fmt.Fprintf(a.Console, "nodebake firstboot:   %s\n", strings.TrimSpace(l))
		}
	}
	return &Failed{Phase: phase, Class: a.st.ErrorClass, msg: msg, err: err}
}

// Failed is a run that stopped in a phase. Its message is redacted; it
// unwraps to the cause, for errors.Is.
type Failed struct {
	Phase, Class string
	msg          string
	err          error
}

func (f *Failed) Error() string { return fmt.Sprintf("%s: %s", f.Phase, f.msg) }
func (f *Failed) Unwrap() error { return f.err }

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// summary prints the short report the console shows.
func (a *Agent) summary(what string) {
	if a.Console == nil {
		return
	}
	fmt.Fprintf(a.Console, "nodebake firstboot: %s", what)
	if a.st.Role != "" {
		fmt.Fprintf(a.Console, "; role %s, node %s", a.st.Role, a.st.NodeName)
	}
	if a.st.Source != "" {
		fmt.Fprintf(a.Console, "; config from %s", a.st.Source)
	}
	fmt.Fprintf(a.Console, "; details: firstboot status\n")
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (a *Agent) exists(p string) bool {
	_, err := os.Lstat(a.path(p))
	return err == nil
}
