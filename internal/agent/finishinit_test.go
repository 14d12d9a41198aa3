package agent

import (
	"bytes"
	"errors"
	"fmt"
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
	want := []string{"init", "ready", "ready", "ready", "phase upload-config", "phase mark-control-plane",
		"phase bootstrap-token", "phase kubelet-finalize", "phase addon", "manifest"}
	if got := node.calls[i:]; !slices.Equal(got, want) {
		t.Errorf("calls after validate = %v, want %v", got, want)
	}
	f := st.InitFinish
	if f == nil || f.Finished.IsZero() || !slices.Equal(f.Phases, []string{"upload-config all", "mark-control-plane", "bootstrap-token", "kubelet-finalize all", "addon all"}) {
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
	if f := status(t, root).InitFinish; f == nil || len(f.Phases) < 2 || f.Phases[1] != "upload-certs" {
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
		if f := st.InitFinish; f == nil || len(f.Phases) != 5 || f.Finished.IsZero() {
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

// TestPartialInitWithoutAControlPlane: etcd data, but none of the files
// of a running control plane, cannot be finished and is never
// initialised again.
func TestPartialInitWithoutAControlPlane(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	// Crash inside the init (the fifth call), leaving etcd data only.
	first := &fakeNode{root: root, crashAt: 5, leave: []string{"/var/lib/etcd/member/snap/db"}}
	a, _ := newAgent(root, first, nil)
	if _, crashed := run(a); !crashed || first.calls[len(first.calls)-1] != "init" {
		t.Fatalf("the crash was not in init: %v", first.calls)
	}
	second := &fakeNode{root: root}
	b, _ := newAgent(root, second, nil)
	err, _ := run(b)
	if !errors.Is(err, ErrPartialInit) || second.count("init") != 0 || second.count("ready") != 0 {
		t.Errorf("err %v, calls %v", err, second.calls)
	}
}
