package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/kubeadm"
)

// TestResumeAfterACrashAtEveryStep crashes an init at each call it makes
// to the system in turn, then boots again: every run ends configured,
// the config is applied once, and kubeadm init runs again only if the
// crash left no etcd data; if it did, the init is finished phase by
// phase.
func TestResumeAfterACrashAtEveryStep(t *testing.T) {
	cfg := ignition(kubeadmInit("v1.37.2"))
	for _, partial := range []bool{false, true} {
		for crashAt := 1; ; crashAt++ {
			root := newRoot(t, cfg)
			first := &fakeNode{root: root, crashAt: crashAt, partial: partial}
			a, _ := newAgent(root, first, nil)
			err, crashed := run(a)
			if !crashed {
				if err != nil {
					t.Fatal(err)
				}
				break
			}
			second := &fakeNode{root: root}
			b, n := newAgent(root, second, nil)
			err, _ = run(b)
			st := status(t, root)
			crashedInInit := first.calls[len(first.calls)-1] == "init"
			if partial && crashedInInit {
				// etcd data and a running control plane from the
				// interrupted init: never a second one; the agent finishes
				// the init phase by phase.
				if err != nil || second.count("init") != 0 || st.InitFinish == nil || len(st.InitFinish.Phases) != 10 {
					t.Errorf("crash inside init with etcd data: %v, %d inits, finish %+v (%v)", err, second.count("init"), st.InitFinish, second.calls)
				}
			}
			if err != nil {
				t.Fatalf("crash at call %d (%s): resuming: %v", crashAt, first.calls[crashAt-1], err)
			}
			if st.Result != ResultSuccess || !st.Succeeded || n.ready != 1 {
				t.Errorf("crash at %d: status %+v", crashAt, st)
			}
			if inits := first.count("init") + second.count("init"); inits > 2 || (inits == 2 && !crashedInInit) {
				t.Errorf("crash at %d (%v then %v): %d inits", crashAt, first.calls, second.calls, inits)
			}
			if got, _ := os.ReadFile(filepath.Join(root, "etc/motd")); string(got) != "welcome\nconfigured\n" {
				t.Errorf("crash at %d: motd %q: the append ran twice", crashAt, got)
			}
			if _, err := os.Stat(filepath.Join(root, SuccessMarker)); err != nil {
				t.Errorf("crash at %d: no success marker", crashAt)
			}
			// A reset of the interrupted attempt keeps the CA the config
			// supplied: the joining nodes pin its hash.
			if got, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/ca.crt")); string(got) != suppliedCA {
				t.Errorf("crash at %d (%v then %v): the supplied CA is gone: %q", crashAt, first.calls, second.calls, got)
			}
			if fi, err := os.Stat(filepath.Join(root, "etc/kubernetes/pki/ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("crash at %d: the supplied CA key: %v", crashAt, err)
			}
		}
	}
}

// TestResetKeepsTheSuppliedCA: an init cut off before etcd had data is
// reset and run again, and the reset (kubeadm's empties
// /etc/kubernetes/pki) leaves the CA the config supplied as it was, or
// the second init would make a new CA that no joining node trusts.
func TestResetKeepsTheSuppliedCA(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	first := &fakeNode{root: root, leave: []string{"/etc/kubernetes/manifests/kube-apiserver.yaml", "/etc/kubernetes/admin.conf"}}
	// Crash at the init call.
	first.crashAt = 6
	a, _ := newAgent(root, first, nil)
	if _, crashed := run(a); !crashed || first.calls[len(first.calls)-1] != "init" {
		t.Fatalf("the first run did not crash in init: %v", first.calls)
	}
	second := &fakeNode{root: root}
	b, _ := newAgent(root, second, nil)
	if err, _ := run(b); err != nil {
		t.Fatal(err)
	}
	if second.count("reset") != 1 || second.count("init") != 1 {
		t.Errorf("second run: %v, want one reset and one init", second.calls)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/pki/ca.crt")); string(got) != suppliedCA {
		t.Errorf("the supplied CA is gone after the reset: %q", got)
	}
	if fi, err := os.Stat(filepath.Join(root, "etc/kubernetes/pki/ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the supplied CA key after the reset: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/kubernetes/kubeadm.yaml")); err != nil {
		t.Errorf("the kubeadm config is gone after the reset: %v", err)
	}
}

func TestConfiguredNodeExitsAtOnce(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	a, _ := newAgent(root, &fakeNode{root: root}, nil)
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(root, "run"))
	again := &fakeNode{root: root}
	var console bytes.Buffer
	b, n := newAgent(root, again, &console)
	if err, _ := run(b); err != nil {
		t.Fatal(err)
	}
	if len(again.calls) != 0 || n.ready != 1 || !strings.Contains(console.String(), "already configured") {
		t.Errorf("calls %v, ready %d, console %q", again.calls, n.ready, console.String())
	}
	if _, err := os.Stat(filepath.Join(root, SuccessMarker)); err != nil {
		t.Error("the marker in /run was not made again")
	}
}

func TestNoConfigLeavesTheNodeUnconfigured(t *testing.T) {
	root := newRoot(t, "")
	var console bytes.Buffer
	a, n := newAgent(root, &fakeNode{root: root}, &console)
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	if st := status(t, root); st.Result != ResultUnconfigured || n.ready != 1 || !strings.Contains(console.String(), "unconfigured") {
		t.Errorf("status %+v, console %q", st, console.String())
	}
}

// TestVersionMismatchChangesNothing: a config for another Kubernetes
// version fails before anything is written.
func TestVersionMismatchChangesNothing(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.36.3")))
	a, _ := newAgent(root, &fakeNode{root: root}, nil)
	err, _ := run(a)
	if !errors.Is(err, kubeadm.ErrVersionMismatch) && !strings.Contains(err.Error(), "v1.36.3") {
		t.Fatalf("error %v", err)
	}
	st := status(t, root)
	if st.ErrorClass != "version-mismatch" || st.Phase != "validate" {
		t.Errorf("status %+v", st)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/kubernetes/kubeadm.yaml")); err == nil {
		t.Error("the kubeadm config was written although validation failed")
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/motd")); string(got) != "welcome\n" {
		t.Errorf("motd changed: %q", got)
	}
}

// TestJoinRetriesUntilReachable fails twice as an unreachable control
// plane does, then joins; an expired token fails at once with its class,
// and the token appears nowhere in the record.
func TestJoinRetriesUntilReachable(t *testing.T) {
	unreachable := &kubeadm.Failure{Output: "dial tcp 10.0.0.1:6443: connect: connection refused"}
	root := newRoot(t, ignition(kubeadmJoin))
	node := &fakeNode{root: root, joinErrs: []error{wrap(unreachable, kubeadm.ErrUnreachable), wrap(unreachable, kubeadm.ErrUnreachable)}}
	var waiting bytes.Buffer
	a, _ := newAgent(root, node, &waiting)
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	if node.count("join") != 3 || status(t, root).Role != "join" {
		t.Errorf("calls %v", node.calls)
	}
	// The person at the console sees why the node waits.
	if want := "unreachable (retry 2 in 2ms): dial tcp 10.0.0.1:6443: connect: connection refused"; !strings.Contains(waiting.String(), want) {
		t.Errorf("the console does not say %q:\n%s", want, waiting.String())
	}

	root = newRoot(t, ignition(kubeadmJoin))
	expired := fmt.Errorf("kubeadm join: could not find a JWS signature for token %s: %w", token, kubeadm.ErrTokenExpired)
	node = &fakeNode{root: root, joinErrs: []error{expired}}
	var console bytes.Buffer
	a, _ = newAgent(root, node, &console)
	err, _ := run(a)
	st := status(t, root)
	if err == nil || st.ErrorClass != "token-expired" || node.count("join") != 1 {
		t.Errorf("error %v, status %+v, calls %v", err, st, node.calls)
	}
	raw, _ := os.ReadFile(filepath.Join(root, StatusPath))
	for _, where := range []string{string(raw), console.String(), err.Error()} {
		if strings.Contains(where, token) {
			t.Errorf("the token leaked: %s", where)
		}
	}
	var decoded Status
	if json.Unmarshal(raw, &decoded) != nil || decoded.Result != ResultFailed {
		t.Errorf("status file %s", raw)
	}
}

// TestControlPlaneJoinTakesTheClusterVersion: a control-plane join's
// config has no ClusterConfiguration, so no version to compare.
func TestControlPlaneJoinTakesTheClusterVersion(t *testing.T) {
	cp := kubeadmJoin + "controlPlane:\n  certificateKey: " + strings.Repeat("ab", 32) + "\n"
	root := newRoot(t, ignition(cp))
	node := &fakeNode{root: root}
	a, _ := newAgent(root, node, nil)
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	if st := status(t, root); st.Role != "control-plane" || node.count("join") != 1 || node.count("manifest") != 0 {
		t.Errorf("status %+v, calls %v", st, node.calls)
	}
}

// TestNamesTheNodeUnderItsRootAndRedactsTheConfigsSecrets: the hostname
// file is written under the agent's root (never the host's), a line of
// its own where the config wrote "cp-1" bare, and the node is told the
// config's own secrets once the config is validated.
func TestNamesTheNodeUnderItsRootAndRedactsTheConfigsSecrets(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	node := &fakeNode{root: root}
	a, _ := newAgent(root, node, nil)
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	const want = "cp-1"
	if got, err := os.ReadFile(filepath.Join(root, "etc/hostname")); err != nil || string(got) != want+"\n" {
		t.Errorf("%s/etc/hostname = %q, %v; want %q", root, got, err, want+"\n")
	}
	if st := status(t, root); st.NodeName != want {
		t.Errorf("the record names the node %q, want %q", st.NodeName, want)
	}
	if !slices.Contains(node.secrets, token) {
		t.Errorf("the node was told to redact %q, not the bootstrap token", node.secrets)
	}
}

// TestJoinGivesUpAtItsDeadline: a control plane that never answers ends
// the join at JoinDeadline, as unreachable, after more than one try.
func TestJoinGivesUpAtItsDeadline(t *testing.T) {
	unreachable := wrap(&kubeadm.Failure{Output: "dial tcp 10.0.0.1:6443: i/o timeout"}, kubeadm.ErrUnreachable)
	root := newRoot(t, ignition(kubeadmJoin))
	node := &fakeNode{root: root, joinErrs: slices.Repeat([]error{unreachable}, 10000)}
	a, _ := newAgent(root, node, nil)
	a.JoinDeadline = 50 * time.Millisecond
	err, _ := run(a)
	if !errors.Is(err, kubeadm.ErrUnreachable) || node.count("join") < 2 {
		t.Errorf("error %v after %d joins", err, node.count("join"))
	}
	if st := status(t, root); st.Result != ResultFailed || st.ErrorClass != kubeadm.Class(unreachable) {
		t.Errorf("status %+v", st)
	}
}
