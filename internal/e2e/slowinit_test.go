package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needLong skips a test that does not fit make test's budget; make
// test-long runs it (NODEBAKE_LONG=1).
func needLong(t *testing.T) {
	t.Helper()
	needIntegration(t)
	if os.Getenv("NODEBAKE_LONG") != "1" {
		t.Skip("a long end-to-end test: make test-long runs it")
	}
}

// TestLongSlowInitFinishes boots one control plane under TCG from a config
// a user on a slow machine would write: kubeadm's default timeouts, none
// of the cluster test's patches, RSA keys, a 60 s leader lease, and the
// image's tsc=reliable. kubeadm init usually runs out of time there in
// wait-control-plane or after it (4 of 5 runs on 2026-12-01); the agent
// must finish the init phase by phase, never run a second one, and the
// node must end Ready with CoreDNS running.
func TestLongSlowInitFinishes(t *testing.T) {
	needLong(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if r := run(t, "build", "-p", "profiles/test-cluster.yaml", "-o", out); r.code != 0 {
		t.Fatalf("build exited %d:\n%s", r.code, tail(r.stderr, 3000))
	}
	id, secret := make([]byte, 3), make([]byte, 8)
	rand.Read(id)
	rand.Read(secret)
	token := hex.EncodeToString(id) + "." + hex.EncodeToString(secret)
	node := clusterNode{name: "cp-1", ip: "10.10.0.1", mac: "52:54:00:10:00:01"}
	netFile := filepath.Join(dir, "cp-1.network")
	os.WriteFile(netFile, []byte(networkFile(node)), 0o644)
	ign, err := exec.Command(firstboot(t), "render", "--role", "init", "--node-name", node.name, "--token", token,
		"--advertise-address", node.ip, "--single-node", "--leader-election-lease", "60s",
		"--file", "/etc/systemd/network/10-cluster.network="+netFile).Output()
	if err != nil {
		t.Fatalf("firstboot render: %v", err)
	}
	root := repoRoot(t)
	probe := readFile(filepath.Join(root, "internal", "e2e", "testdata", "slowinit", "probe.sh"))
	watch := readFile(filepath.Join(root, "internal", "e2e", "testdata", "cluster", "watch.sh"))
	ignPath := filepath.Join(dir, "cp-1.ign")
	os.WriteFile(ignPath, withProbe(t, ign, probe, watch), 0o600)
	if res, err := exec.Command(firstboot(t), "validate", ignPath, "--image", filepath.Join(out, "test-cluster.raw")).CombinedOutput(); err != nil {
		t.Fatalf("firstboot validate: %v\n%s", err, res)
	}
	serial := filepath.Join(dir, "cp-1.serial")
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Minute)
	defer cancel()
	// The link's far end is a port nobody listens on: the node has its
	// address and no way out.
	ports := freeUDPPorts(t, 2)
	boot := exec.CommandContext(ctx, imagebuild(t), "boot", filepath.Join(out, "test-cluster.qcow2"), "--ignition", ignPath,
		"--serial-log", serial, "--disk-size", "12GiB", "--memory", "4096", "--cpus", "2", "--mac", node.mac,
		"--link", fmt.Sprintf("%d:%d", ports[0], ports[1]))
	boot.Dir = root
	boot.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	boot.Cancel = func() error { return boot.Process.Signal(syscall.SIGTERM) }
	boot.WaitDelay = time.Minute
	started := time.Now()
	done := make(chan error, 1)
	go func() {
		res, err := boot.CombinedOutput()
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("%v: %s", err, tail(string(res), 3000))
		}
		done <- err
	}()
	for lines(serial, "NBS")["done"] != "1" {
		select {
		case <-ctx.Done():
			t.Fatalf("the node did not finish in time\n%s", report([]*clusterNode{{name: "cp-1", serial: serial}}))
		case err := <-done:
			t.Fatalf("the VM stopped: %v\n%s", err, report([]*clusterNode{{name: "cp-1", serial: serial}}))
		case <-time.After(10 * time.Second):
		}
	}
	cancel()
	<-done
	s := lines(serial, "NBS")
	for _, l := range logLines(serial, "NBS-LOG") {
		t.Log("cp-1: " + l)
	}
	for k, want := range map[string]string{
		"firstboot": "success", "runs": "1", "ready": "True", "coredns_available": "True",
		"kubeadm_config": "configmap/kubeadm-config", "control_plane": "node/cp-1", "kube_proxy": "daemonset.apps/kube-proxy",
	} {
		if s[k] != want {
			t.Errorf("%s = %q, want %q", k, s[k], want)
		}
	}
	if s["bootstrap_token"] == "" || s["bootstrap_token"] == "0" {
		t.Errorf("bootstrap tokens: %q", s["bootstrap_token"])
	}
	if strings.Contains(readFile(serial), hex.EncodeToString(secret)) {
		t.Error("the bootstrap token's secret reached the console")
	}
	ready := "?"
	if at, err := time.Parse(time.RFC3339, s["ready_at"]); err == nil {
		ready = fmt.Sprintf("%.0f s", at.Sub(started).Seconds())
	}
	if p := s["finished_phases"]; p == "none" || p == "" {
		t.Logf("kubeadm init finished on its own this time; Ready %s after power-on", ready)
		fmt.Printf("slow init: kubeadm finished on its own; Ready %s after power-on\n", ready)
	} else {
		t.Logf("the agent finished the init: %s; Ready %s after power-on", p, ready)
		fmt.Printf("slow init: the agent finished the init (%s); Ready %s after power-on\n", p, ready)
		if !strings.HasSuffix(p, ",finished") {
			t.Errorf("the finish did not finish: %s", p)
		}
	}
}
