package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodebake/nodebake/internal/kubeadm"
)

// initTimeout is kubeadm init failing as it does on a slow machine, in
// wait-control-plane, with the token in its output.
var initTimeout = fmt.Errorf("[wait-control-plane] could not bootstrap the admin user in file admin.conf: context deadline exceeded (token %s): %w", token, kubeadm.ErrUnreachable)

// TestInitTimeoutIsFinished: kubeadm init times out once the control
// plane runs. The agent waits for the API server, runs the remaining init
// phases in kubeadm's order, never a second init, and records it.
func TestInitTimeoutIsFinished(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	node := &fakeNode{root: root, initErr: initTimeout, notReady: 2}
	var console bytes.Buffer
	a, _ := newAgent(root, node, &console)
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	st := status(t, root)
	if st.Result != ResultSuccess || node.count("init") != 1 || st.KubeadmRuns != 1 {
		t.Fatalf("result %s, %d inits: %v", st.Result, node.count("init"), node.calls)
	}
	i := slices.Index(node.calls, "init")
	want := []string{"init", "phase certs", "phase kubeconfig", "phase etcd", "phase control-plane", "phase kubelet-start",
		"ready", "ready", "ready", "phase upload-config", "phase mark-control-plane",
		"phase bootstrap-token", "phase kubelet-finalize", "phase addon", "manifest"}
	if got := node.calls[i:]; !slices.Equal(got, want) {
		t.Errorf("calls after validate = %v, want %v", got, want)
	}
	f := st.InitFinish
	if f == nil || f.Finished.IsZero() || !slices.Equal(f.Phases, []string{"certs all", "kubeconfig all", "etcd local", "control-plane all", "kubelet-start",
		"upload-config all", "mark-control-plane", "bootstrap-token", "kubelet-finalize all", "addon all"}) {
		t.Fatalf("record: %+v", f)
	}
	if !strings.Contains(f.Cause, "wait-control-plane") || strings.Contains(f.Cause, token) {
		t.Errorf("cause %q: want kubeadm's error, redacted", f.Cause)
	}
	if strings.Contains(console.String(), token) || !strings.Contains(console.String(), "finishing it phase by phase") {
		t.Errorf("console:\n%s", console.String())
	}
}

// TestInitFinishUploadsCerts: with a certificate key, the finish uploads
// the control-plane certificates too, after the config.
func TestInitFinishUploadsCerts(t *testing.T) {
	key := strings.Repeat("ab", 32)
	cfg := strings.Replace(kubeadmInit("v1.37.2"), "kind: InitConfiguration\n", "kind: InitConfiguration\ncertificateKey: "+key+"\n", 1)
	root := newRoot(t, ignition(cfg))
	node := &fakeNode{root: root, initErr: initTimeout}
	a, _ := newAgent(root, node, nil)
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	if f := status(t, root).InitFinish; f == nil || len(f.Phases) < 7 || f.Phases[6] != "upload-certs" {
		t.Errorf("record: %+v", f)
	}
}

// TestInitFinishSurvivesACrash cuts the power at every call of the
// finish, then boots again: no second init, each phase recorded once,
// and the node configured.
func TestInitFinishSurvivesACrash(t *testing.T) {
	cfg := ignition(kubeadmInit("v1.37.2"))
	for crashAt := 1; ; crashAt++ {
		root := newRoot(t, cfg)
		first := &fakeNode{root: root, initErr: initTimeout, crashAt: crashAt}
		a, _ := newAgent(root, first, nil)
		err, crashed := run(a)
		if !crashed {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if !slices.Contains(first.calls[:crashAt-1], "init") {
			continue // before init finished: TestResumeAfterACrashAtEveryStep
		}
		second := &fakeNode{root: root}
		b, _ := newAgent(root, second, nil)
		if err, _ := run(b); err != nil {
			t.Fatalf("crash at %s: %v", first.calls[crashAt-1], err)
		}
		st := status(t, root)
		if second.count("init") != 0 || !st.Succeeded || st.KubeadmRuns != 1 {
			t.Errorf("crash at %s: %d inits, %+v", first.calls[crashAt-1], second.count("init"), st)
		}
		if f := st.InitFinish; f == nil || len(f.Phases) != 10 || f.Finished.IsZero() {
			t.Errorf("crash at %s: record %+v", first.calls[crashAt-1], f)
		}
		// A phase recorded as done before the crash is not run again.
		for _, c := range second.calls {
			if p, ok := strings.CutPrefix(c, "phase "); ok && slices.ContainsFunc(first.calls[:crashAt-1], func(s string) bool { return s == c }) {
				t.Errorf("crash at %s: phase %s ran again", first.calls[crashAt-1], p)
			}
		}
	}
}

// TestPartialInitNotOurs: etcd data this agent's init did not make (a
// node someone initialised by hand) is never initialised again, nor
// finished.
func TestPartialInitNotOurs(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	node := &fakeNode{root: root}
	node.touch("/var/lib/etcd/member/snap/db")
	a, _ := newAgent(root, node, nil)
	err, _ := run(a)
	if !errors.Is(err, ErrPartialInit) || node.count("init") != 0 || node.count("ready") != 0 {
		t.Errorf("err %v, calls %v", err, node.calls)
	}
}

// TestPowerCutEmptiesAreMadeAgain: a power cut seconds after kubeadm wrote
// its files leaves them empty (kubeadm does not fsync them). The agent
// removes the empty ones, but none the config wrote, before the phases
// that make them again run, and records which.
func TestPowerCutEmptiesAreMadeAgain(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	first := &fakeNode{root: root, crashAt: 6}
	a, _ := newAgent(root, first, nil)
	if _, crashed := run(a); !crashed || first.calls[len(first.calls)-1] != "init" {
		t.Fatalf("the crash was not in init: %v", first.calls)
	}
	first.touch("/var/lib/etcd/member/snap/db")
	empty := []string{"/etc/kubernetes/admin.conf", "/etc/kubernetes/manifests/etcd.yaml", "/etc/kubernetes/pki/apiserver.key", "/var/lib/kubelet/config.yaml"}
	for _, p := range empty {
		first.touch(p)
		os.Truncate(filepath.Join(root, p), 0)
	}
	os.WriteFile(filepath.Join(root, "etc/kubernetes/pki/ca.crt"), nil, 0o644) // the config's own: kept
	second := &fakeNode{root: root}
	second.onPhase = func(phase string) {
		if phase != "certs" {
			return
		}
		for _, p := range empty {
			if _, err := os.Stat(filepath.Join(root, p)); err == nil {
				t.Errorf("%s is still there, empty, when the phases run", p)
			}
		}
	}
	b, _ := newAgent(root, second, nil)
	if err, _ := run(b); err != nil {
		t.Fatal(err)
	}
	f := status(t, root).InitFinish
	slices.Sort(empty)
	if got := slices.Sorted(slices.Values(f.Damaged)); !slices.Equal(got, empty) {
		t.Errorf("damaged %v, want %v", got, empty)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/kubernetes/pki/ca.crt")); err != nil {
		t.Errorf("the config's own CA was removed: %v", err)
	}
	if second.count("init") != 0 {
		t.Errorf("a second init: %v", second.calls)
	}
}
