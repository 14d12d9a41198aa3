package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/retry"
)

// InitFinish is the record of an init that kubeadm left unfinished and the
// agent finished phase by phase.
type InitFinish struct {
	// Cause is why: kubeadm's error, or an earlier run cut short.
	Cause string `json:"cause"`
	// Phases are the kubeadm init phases the agent ran, in order, each
	// recorded once it succeeded.
	Phases []string `json:"phases"`
	// Damaged are the files kubeadm had written that a power cut left
	// empty or unreadable; the agent removed them, and the phases made
	// them again.
	Damaged []string `json:"damaged,omitempty"`
	// EtcdAfresh says etcd's data was removed and etcd started afresh:
	// a cut had left its log with nothing committed, and such a member
	// never elects a leader (etcdNeverCommitted).
	EtcdAfresh bool      `json:"etcdAfresh,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished,omitzero"`
}

// adminConf is the kubeconfig kubeadm init's kubeconfig phase writes.
const adminConf = "/etc/kubernetes/admin.conf"

// etcdData is etcd's data. Once it exists, kubeadm init has written its
// certificates, kubeconfigs and static pods and started the kubelet, which
// started etcd: the init can only be finished from there, never run again.
const etcdData = "/var/lib/etcd/member"

// kubeadmOutputs are the files kubeadm init writes before etcd starts.
// kubeadm does not fsync them, and ext4 writes a new file's data up to
// 30 s after its name: a power cut in that time leaves them empty, or
// with what the disk held there before.
var kubeadmOutputs = []string{"/etc/kubernetes", "/var/lib/kubelet/config.yaml",
	"/var/lib/kubelet/kubeadm-flags.env", "/var/lib/kubelet/instance-config.yaml"}

// startPhases are kubeadm init's phases up to the kubelet's start. Each
// keeps what exists and is valid and makes what is missing, from the CA
// and the config; run again, they remake what a power cut damaged.
func startPhases() [][]string {
	return [][]string{{"certs", "all"}, {"kubeconfig", "all"}, {"etcd", "local"}, {"control-plane", "all"}, {"kubelet-start"}}
}

// endPhases are kubeadm init's phases after wait-control-plane, in its
// order, each with its flags. Each creates or updates what it owns, so
// one cut short is run again whole.
func endPhases(uploadCerts bool) [][]string {
	phases := [][]string{{"upload-config", "all"}}
	if uploadCerts {
		phases = append(phases, []string{"upload-certs", "--upload-certs", "--skip-certificate-key-print"})
	}
	return append(phases, []string{"mark-control-plane"}, []string{"bootstrap-token"},
		[]string{"kubelet-finalize", "all"}, []string{"addon", "all"})
}

// removeDamaged removes the damaged files among kubeadm's outputs (see
// damaged), but none the Ignition config wrote, and returns their paths.
func (a *Agent) removeDamaged() ([]string, error) {
	written := map[string]bool{}
	for _, f := range a.run.cfg.Storage.Files {
		written[f.Path] = true
	}
	var removed []string
	for _, top := range kubeadmOutputs {
		err := filepath.WalkDir(a.path(top), func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, a.path("/")), "/")
			if written[rel] {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			bad, why := damaged(rel, data)
			if !bad {
				return nil
			}
			a.Log.Warn("finishing init: a file kubeadm wrote did not survive", "path", rel, "why", why)
			removed = append(removed, rel)
			return os.Remove(p)
		})
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// finishInit completes an init that stopped after etcd started: cut
// short by kubeadm's own timeouts on a slow machine (in wait-control-plane
// or after it), or by a power cut. It never runs a second init. It removes
// what a power cut left empty or unreadable, runs the phases up to the kubelet's start
// again (each keeps what is there), waits for the API server, and runs the
// phases after it, each retried while the API server is slow and recorded
// once done.
func (a *Agent) finishInit(ctx context.Context, cause string) error {
	cause = kubeadm.Redact(cause, a.run.secrets)
	if a.st.InitFinish == nil {
		a.st.InitFinish = &InitFinish{Cause: cause, Started: a.now()}
	}
	f := a.st.InitFinish
	removed, err := a.removeDamaged()
	f.Damaged = append(f.Damaged, removed...)
	if err := a.save(); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("finishing kubeadm init: %w", err)
	}
	a.Log.Warn("kubeadm init stopped after etcd started; finishing it phase by phase", "cause", cause, "damaged", len(removed))
	a.console("kubeadm init stopped after etcd started (%s); finishing it phase by phase", firstLine(cause))
	if len(removed) > 0 {
		a.console("%d files kubeadm had written were empty or unreadable after a power cut; they are made again", len(removed))
	}
	deadline := a.InitDeadline
	if deadline == 0 {
		deadline = time.Hour
	}
	first := a.InitBackoff
	if first == 0 {
		first = 5 * time.Second
	}
	policy := retry.Policy{Deadline: deadline, First: first, Max: 30 * time.Second,
		OnRetry: func(attempt int, err error, wait time.Duration) {
			a.Log.Warn("finishing init: not yet", "attempt", attempt, "retry_in", wait.String(), "error", kubeadm.Reason(err))
		}}
	if err := a.etcdAfresh(ctx); err != nil {
		return fmt.Errorf("finishing kubeadm init: %w", err)
	}
	if err := a.initPhases(ctx, policy, startPhases()); err != nil {
		return err
	}
	a.Notify.Status("kubeadm init: waiting for the API server to finish the init")
	if err := retry.Do(ctx, policy, func(ctx context.Context) error {
		return a.Node.APIServerReady(ctx, adminConf)
	}); err != nil {
		return fmt.Errorf("finishing kubeadm init: the API server never became ready: %w", err)
	}
	if err := a.initPhases(ctx, policy, endPhases(a.run.kubeCfg.CertificateKey != "")); err != nil {
		return err
	}
	f.Finished = a.now()
	a.console("kubeadm init finished phase by phase: %s", strings.Join(f.Phases, ", "))
	return a.save()
}

// etcdAfresh starts etcd afresh when its log shows nothing committed (see
// etcdNeverCommitted); its etcd phase is then run again.
func (a *Agent) etcdAfresh(ctx context.Context) error {
	never, err := etcdNeverCommitted(a.path(etcdWALDir))
	if err != nil || !never {
		return err
	}
	f := a.st.InitFinish
	a.Log.Warn("finishing init: etcd's log shows nothing committed; a member cut off before its first hard state never elects a leader, so etcd starts afresh")
	a.console("etcd's log shows nothing committed (cut before its first hard state): it could never elect a leader; etcd starts afresh")
	if err := a.restartEtcdAfresh(ctx); err != nil {
		return err
	}
	f.EtcdAfresh = true
	f.Phases = slices.DeleteFunc(f.Phases, func(p string) bool { return p == "etcd local" })
	return a.save()
}

// initPhases runs each phase not yet recorded, retried under policy, and
// records it.
func (a *Agent) initPhases(ctx context.Context, policy retry.Policy, phases [][]string) error {
	f := a.st.InitFinish
	for _, phase := range phases {
		name := strings.Join(slices.DeleteFunc(slices.Clone(phase), func(s string) bool { return strings.HasPrefix(s, "-") }), " ")
		if slices.Contains(f.Phases, name) {
			continue
		}
		a.Notify.Status("kubeadm init: finishing, phase " + name)
		a.Log.Info("finishing init", "phase", name)
		if err := retry.Do(ctx, policy, func(ctx context.Context) error {
			return a.Node.InitPhase(ctx, a.run.kubePath, phase...)
		}); err != nil {
			return fmt.Errorf("finishing kubeadm init, phase %s: %w", name, err)
		}
		durable() // what the phase wrote, before the record says it is done
		f.Phases = append(f.Phases, name)
		if err := a.save(); err != nil {
			return err
		}
	}
	return nil
}

// durable flushes every file system: kubeadm does not fsync what it
// writes, and a record that says a step is done must not outlive the
// files the step made.
func durable() { syscall.Sync() }

// console writes one line for the person at the console.
func (a *Agent) console(format string, args ...any) {
	if a.Console != nil {
		fmt.Fprintf(a.Console, "nodebake firstboot: "+format+"\n", args...)
	}
}
