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

// segment is a private Ethernet segment for VMs: a network namespace of
// the test's own with a bridge, a tap device for each VM, and dnsmasq
// serving DHCP on it, a fixed address and hostname for each MAC. The
// bridge's address is the segment's router, with no route beyond it: the
// VMs can reach each other and nothing else, and nothing of it is on the
// host's own network.
type segment struct {
	netns  string
	router string
}

// host is a VM's place on a segment.
type host struct{ mac, ip, name, tap string }

func newSegment(t *testing.T, dir string, hosts []*host) *segment {
	t.Helper()
	for _, p := range []string{"ip", "dnsmasq"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s: %v (ci/deps.sh installs it)", p, err)
		}
	}
	b := make([]byte, 3)
	rand.Read(b)
	s := &segment{netns: "nbtest-" + hex.EncodeToString(b), router: "10.10.0.254"}
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"netns", "exec", s.netns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if out, err := exec.Command("ip", "netns", "add", s.netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", s.netns).Run() })
	sh("ip", "link", "set", "lo", "up")
	sh("ip", "link", "add", "br0", "type", "bridge")
	sh("ip", "addr", "add", s.router+"/24", "dev", "br0")
	sh("ip", "link", "set", "br0", "up")
	args := []string{"netns", "exec", s.netns, "dnsmasq", "--keep-in-foreground", "--no-daemon", "--conf-file=/dev/null",
		"--port=0", "--no-resolv", "--no-hosts", "--interface=br0", "--bind-interfaces", "--dhcp-authoritative",
		"--dhcp-range=10.10.0.100,10.10.0.200,12h", "--dhcp-option=option:router," + s.router,
		"--dhcp-leasefile=" + filepath.Join(dir, "dnsmasq.leases"), "--log-dhcp"}
	for i, h := range hosts {
		h.tap = fmt.Sprintf("tap%d", i)
		sh("ip", "tuntap", "add", h.tap, "mode", "tap")
		sh("ip", "link", "set", h.tap, "master", "br0")
		sh("ip", "link", "set", h.tap, "up")
		args = append(args, fmt.Sprintf("--dhcp-host=%s,%s,%s", h.mac, h.ip, h.name))
	}
	log, err := os.Create(filepath.Join(dir, "dnsmasq.log"))
	if err != nil {
		t.Fatal(err)
	}
	d := exec.Command("ip", args...)
	d.Stdout, d.Stderr = log, log
	d.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Kill(); d.Wait(); log.Close() })
	return s
}

// capiUserData runs Cluster API's own generator (ci/capigen, its own
// module) for the test cluster: the user data of a control-plane init and
// of a worker join, with the test's probe, its watch, and the tuning a
// control plane on two slow cores needs, each given through the
// KubeadmConfigSpec field a user would set.
func capiUserData(t *testing.T, dir string) (initIgn, joinIgn string) {
	t.Helper()
	root := repoRoot(t)
	td := func(p ...string) string {
		return filepath.Join(append([]string{root, "internal", "e2e", "testdata"}, p...)...)
	}
	out := filepath.Join(dir, "capi")
	cmd := exec.Command("go", "run", ".", "-out", out, "-kubernetes-version", "v1.37.2", "-tcg",
		"-patches", td("cluster", "patches"),
		"-file", td("capi", "probe.sh")+"=/etc/nodebake-test/probe",
		"-file", td("cluster", "watch.sh")+"=/etc/nodebake-test/watch",
		"-file", td("lib.sh")+"=/etc/nodebake-test/lib.sh",
		"-unit", td("capi", "nodebake-capi-probe.service"),
		"-unit", td("capi", "nodebake-capi-watch.service"))
	cmd.Dir = filepath.Join(root, "ci", "capigen")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("capigen: %v\n%s", err, b)
	}
	return filepath.Join(out, "init.ign"), filepath.Join(out, "join.ign")
}

// TestLongClusterAPI makes a cluster of three machines from the user data
// Cluster API's kubeadm bootstrap provider generates (its own code, in
// spec 2.3.0), unchanged: a control plane initialised with its CAs in the
// user data, then two workers booted at the same moment from one shared,
// byte-identical join user data, as a MachinePool or an autoscaling group
// gives it. The machines are on a segment of their own with DHCP, which
// gives them their addresses and the workers their names. All three must
// be Ready, with distinct names, machine-ids and SSH host keys, a pod
// must run on each worker, and every node must have Cluster API's success
// file and say so in firstboot status.
func TestLongClusterAPI(t *testing.T) {
	needLong(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if r := run(t, "build", "-p", "profiles/test-cluster.yaml", "-o", out); r.code != 0 {
		t.Fatalf("build exited %d:\n%s", r.code, tail(r.stderr, 3000))
	}
	image := filepath.Join(out, "test-cluster.qcow2")
	initIgn, joinIgn := capiUserData(t, dir)
	for _, ign := range []string{initIgn, joinIgn} {
		if res, err := exec.Command(firstboot(t), "validate", ign, "--image", filepath.Join(out, "test-cluster.raw")).CombinedOutput(); err != nil {
			t.Fatalf("firstboot validate %s: %v\n%s", ign, err, res)
		}
	}
	hosts := []*host{
		{mac: "52:54:00:10:00:01", ip: "10.10.0.1", name: "capi-cp-1"},
		{mac: "52:54:00:10:00:11", ip: "10.10.0.11", name: "capi-worker-a"},
		{mac: "52:54:00:10:00:12", ip: "10.10.0.12", name: "capi-worker-b"},
	}
	seg := newSegment(t, dir, hosts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	var vms []*machine
	for i, h := range hosts {
		ign, mem, cpus := joinIgn, "2048", "1"
		if i == 0 {
			ign, mem, cpus = initIgn, "4096", "2"
		}
		m := &machine{t: t, name: h.name, dir: filepath.Join(dir, h.name+".disk"), log: filepath.Join(dir, h.name+".serial"), netns: seg.netns,
			args: []string{"boot", image, "--ignition", ign, "--disk-size", "12GiB", "--memory", mem, "--cpus", cpus, "--tap", h.tap, "--mac", h.mac}}
		vms = append(vms, m)
		defer m.stop()
	}
	report := func() string {
		var b strings.Builder
		for _, m := range vms {
			fmt.Fprintf(&b, "%s:\n%s\n", m.name, tail(strings.Join(logLines(m.log, "NBD"), "\n")+"\n"+readFile(m.log), 5000))
		}
		return b.String() + "dnsmasq:\n" + tail(readFile(filepath.Join(dir, "dnsmasq.log")), 2000)
	}
	cp := vms[0]
	cp.powerOn(ctx)
	// The workers are powered on together once the control plane is
	// configured: on two host cores under TCG, boots beside an init
	// starve it (a join waits for its control plane anyway).
	at := cp.waitFor(ctx, "nodebake firstboot: configured")
	t.Logf("capi-cp-1: configured %.0f s after power-on", at.Seconds())
	for _, m := range vms[1:] {
		m.powerOn(ctx)
	}
	for lines(cp.log, "NBK capi-cp-1")["done"] != "1" {
		select {
		case <-ctx.Done():
			t.Fatalf("the cluster did not finish in time\n%s", report())
		case <-time.After(10 * time.Second):
		}
		for _, m := range vms {
			if stopped, err := m.stopped(); stopped {
				t.Fatalf("%s: the VM stopped: %v\n%s", m.name, err, report())
			}
		}
	}
	for _, m := range vms {
		m.stop()
	}

	c := lines(cp.log, "NBK capi-cp-1")
	ids, keys := map[string]string{}, map[string]string{}
	for i, m := range vms {
		n := lines(m.log, "NBK "+m.name)
		role := "join"
		if i == 0 {
			role = "init"
		}
		for k, want := range map[string]string{"firstboot": "success", "role": role, "node": m.name, "success_file": "yes",
			"pre": "yes", "post": "yes", "kubeadm_yml": "moved", "ip": hosts[i].ip + "/24"} {
			if n[k] != want {
				t.Errorf("%s: %s = %q, want %q", m.name, k, n[k], want)
			}
		}
		if n["kubeadm_unit"] == "enabled" {
			t.Errorf("%s: Cluster API's kubeadm.service is enabled", m.name)
		}
		if other, dup := ids[n["machine_id"]]; dup || n["machine_id"] == "" {
			t.Errorf("%s: machine-id %q, as %s's", m.name, n["machine_id"], other)
		}
		if other, dup := keys[n["ssh_host_key"]]; dup || n["ssh_host_key"] == "" {
			t.Errorf("%s: SSH host key %q, as %s's", m.name, n["ssh_host_key"], other)
		}
		ids[n["machine_id"]], keys[n["ssh_host_key"]] = m.name, m.name
	}
	if want := "capi-cp-1:True,capi-worker-a:True,capi-worker-b:True,"; c["nodes"] != want {
		t.Errorf("nodes %q, want %q", c["nodes"], want)
	}
	for _, w := range []string{"capi-worker-a", "capi-worker-b"} {
		if c["pod."+w] != "Succeeded" || c["pod_node."+w] != w {
			t.Errorf("the pod on %s: %q on %q", w, c["pod."+w], c["pod_node."+w])
		}
	}
	for _, l := range logLines(cp.log, "NBK-LOG capi-cp-1") {
		t.Log(l)
	}
	if t.Failed() {
		t.Log(report())
	}
}
