package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
	Phases   []string  `json:"phases"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

// adminConf is the kubeconfig kubeadm init's kubeconfig phase writes.
const adminConf = "/etc/kubernetes/admin.conf"

// initReached are the files of an init that got as far as a running
// control plane: the kubeconfigs, the static pods, the kubelet's
// configuration and etcd's data. From there only the phases after
// wait-control-plane remain, and they talk to the API server.
var initReached = []string{
	adminConf, "/etc/kubernetes/manifests/kube-apiserver.yaml",
	"/etc/kubernetes/manifests/etcd.yaml", "/var/lib/kubelet/config.yaml", "/var/lib/etcd/member",
}

func (a *Agent) initFinishable() bool {
	for _, p := range initReached {
		if !a.exists(p) {
			return false
		}
	}
	return true
}

// finishPhases are kubeadm init's phases after wait-control-plane, in its
// order, each with its flags. Each creates or updates what it owns, so
// one cut short is run again whole.
func finishPhases(uploadCerts bool) [][]string {
	phases := [][]string{{"upload-config", "all"}}
	if uploadCerts {
		phases = append(phases, []string{"upload-certs", "--upload-certs", "--skip-certificate-key-print"})
	}
	return append(phases, []string{"mark-control-plane"}, []string{"bootstrap-token"},
		[]string{"kubelet-finalize", "all"}, []string{"addon", "all"})
}

// finishInit completes an init that stopped after the control plane
// started, as kubeadm does on a slow machine when a timeout of its own
// runs out in wait-control-plane or after it. It never runs a second init:
// it waits for the API server (the kubelet runs the static pods, on this
// boot or the next), then runs each remaining phase, retried while the
// API server is slow, and records each one.
func (a *Agent) finishInit(ctx context.Context, cause string) error {
	cause = kubeadm.Redact(cause, a.run.secrets)
	if a.st.InitFinish == nil {
		a.st.InitFinish = &InitFinish{Cause: cause, Started: a.now()}
	}
	if err := a.save(); err != nil {
		return err
	}
	a.Log.Warn("kubeadm init stopped after the control plane started; finishing it phase by phase", "cause", cause)
	a.console("kubeadm init stopped after the control plane started (%s); finishing it phase by phase", firstLine(cause))
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
	a.Notify.Status("kubeadm init: waiting for the API server to finish the init")
	if err := retry.Do(ctx, policy, func(ctx context.Context) error {
		return a.Node.APIServerReady(ctx, adminConf)
	}); err != nil {
		return fmt.Errorf("finishing kubeadm init: the API server never became ready: %w", err)
	}
	for _, phase := range finishPhases(a.run.kubeCfg.CertificateKey != "") {
		name := strings.Join(slices.DeleteFunc(slices.Clone(phase), func(s string) bool { return strings.HasPrefix(s, "-") }), " ")
		if slices.Contains(a.st.InitFinish.Phases, name) {
			continue
		}
		a.Notify.Status("kubeadm init: finishing, phase " + name)
		a.Log.Info("finishing init", "phase", name)
		if err := retry.Do(ctx, policy, func(ctx context.Context) error {
			return a.Node.InitPhase(ctx, kubeadm.ConfigPath, phase...)
		}); err != nil {
			return fmt.Errorf("finishing kubeadm init, phase %s: %w", name, err)
		}
		a.st.InitFinish.Phases = append(a.st.InitFinish.Phases, name)
		if err := a.save(); err != nil {
			return err
		}
	}
	a.st.InitFinish.Finished = a.now()
	a.console("kubeadm init finished phase by phase: %s", strings.Join(a.st.InitFinish.Phases, ", "))
	return a.save()
}

// console writes one line for the person at the console.
func (a *Agent) console(format string, args ...any) {
	if a.Console != nil {
		fmt.Fprintf(a.Console, "nodebake firstboot: "+format+"\n", args...)
	}
}
