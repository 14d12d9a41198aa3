package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// withUnit adds a script and an enabled unit that runs it to a config.
func withUnit(t testing.TB, ign []byte, unit, path, script string) []byte {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(ign, &cfg); err != nil {
		t.Fatal(err)
	}
	storage := cfg["storage"].(map[string]any)
	storage["files"] = append(storage["files"].([]any), map[string]any{
		"path": path, "mode": 0o755, "overwrite": true,
		"contents": map[string]any{"source": "data:;base64," + base64.StdEncoding.EncodeToString([]byte(script))},
	})
	sd, _ := cfg["systemd"].(map[string]any)
	if sd == nil {
		sd = map[string]any{"units": []any{}}
		cfg["systemd"] = sd
	}
	sd["units"] = append(sd["units"].([]any), map[string]any{
		"name": unit, "enabled": true,
		"contents": "[Unit]\nDescription=nodebake power-cut test marker\n\n[Service]\nExecStart=" + path + "\n\n[Install]\nWantedBy=multi-user.target\n",
	})
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// durablePatches are the cluster test's patches with etcd's fsync left on:
// there etcd skips it (`--unsafe-no-fsync`, its data being on a throwaway
// disk), and a power cut then tears its write-ahead log, which no node
// does. A power cut must meet etcd as it runs on a real node. etcd also
// logs at its default level here: its account of a restart after a cut.
func durablePatches(t testing.TB, dir string) string {
	t.Helper()
	src := filepath.Join(repoRoot(t), "internal", "e2e", "testdata", "cluster", "patches")
	dst := filepath.Join(dir, "patches")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(e.Name(), "+json.yaml") {
			var ops []map[string]any
			if err := yaml.Unmarshal(data, &ops); err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			kept := ops[:0]
			for _, op := range ops {
				switch op["value"] {
				case "--unsafe-no-fsync":
					dropped++
					continue
				case "--log-level=error":
					continue // etcd's own account of a restart after a cut
				}
				kept = append(kept, op)
			}
			if data, err = yaml.Marshal(kept); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if dropped != 1 {
		t.Fatalf("the cluster test's patches turn etcd's fsync off %d times, want once", dropped)
	}
	return dst
}

// machine is a VM whose disk outlives each boot (imagebuild boot
// --state-dir): powered on, cut off (QEMU killed, no shutdown), and
// powered on again.
type machine struct {
	t    testing.TB
	name string
	dir  string // the kept disk
	args []string
	// netns, when set, is the network namespace imagebuild runs in (its
	// VM's tap device is there).
	netns string
	// log, when set, is the console of every boot, one after another;
	// otherwise each boot has its own, NAME.bootN.serial beside dir.
	log     string
	boots   int
	serial  string // this boot's console
	from    int64  // where this boot's console starts in serial
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed when imagebuild has exited
	err     error         // how it exited, once done is closed
}

func (m *machine) powerOn(ctx context.Context) {
	m.boots++
	m.serial, m.from = m.log, 0
	if m.log == "" {
		m.serial = filepath.Join(filepath.Dir(m.dir), fmt.Sprintf("%s.boot%d.serial", m.name, m.boots))
	} else if fi, err := os.Stat(m.log); err == nil {
		m.from = fi.Size()
	}
	prog, args := imagebuild(m.t), append(m.args, "--state-dir", m.dir, "--serial-log", m.serial)
	if m.netns != "" {
		// ip netns exec enters the namespace and execs imagebuild: the
		// same process, so the kill below still cuts the power.
		prog, args = "ip", append([]string{"netns", "exec", m.netns, prog}, args...)
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = repoRoot(m.t)
	// imagebuild's QEMU dies with it: killing imagebuild is the power
	// cut, and a killed test takes its VMs with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	m.cmd, m.started, m.done = cmd, time.Now(), make(chan struct{})
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	done := m.done
	go func() {
		if err := cmd.Wait(); err != nil {
			m.err = fmt.Errorf("%v: %s", err, tail(out.String(), 3000))
		}
		close(done)
	}()
}

// console is what this boot has printed so far.
func (m *machine) console() string {
	s := readFile(m.serial)
	if int64(len(s)) < m.from {
		return ""
	}
	return s[m.from:]
}

// stopped reports whether the VM stopped, and how.
func (m *machine) stopped() (bool, error) {
	select {
	case <-m.done:
		return true, m.err
	default:
		return false, nil
	}
}

// waitFor waits until this boot's console says what, and returns how
// long after power-on it did.
func (m *machine) waitFor(ctx context.Context, what string) time.Duration {
	m.t.Helper()
	for !strings.Contains(m.console(), what) {
		select {
		case <-ctx.Done():
			m.t.Fatalf("%s boot %d: no %q in time\n%s", m.name, m.boots, what, tail(m.console(), 6000))
		case <-m.done:
			m.t.Fatalf("%s boot %d: the VM stopped before %q: %v\n%s", m.name, m.boots, what, m.err, tail(m.console(), 6000))
		case <-time.After(200 * time.Millisecond):
		}
	}
	return time.Since(m.started)
}

// cut kills the VM with no shutdown and waits until its disk is closed.
func (m *machine) cut() {
	m.cmd.Process.Kill()
	<-m.done
	overlay := filepath.Join(m.dir, "overlay.qcow2")
	for deadline := time.Now().Add(time.Minute); openedBySomeone(overlay); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			m.t.Fatalf("%s: QEMU still holds %s after the cut", m.name, overlay)
		}
	}
}

// stop asks a running VM's imagebuild to stop, and waits for it.
func (m *machine) stop() {
	if m.cmd == nil {
		return
	}
	if ok, _ := m.stopped(); !ok {
		m.cmd.Process.Signal(syscall.SIGTERM)
		<-m.done
	}
}

// openedBySomeone reports whether a process has path open.
func openedBySomeone(path string) bool {
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && target == path {
			return true
		}
	}
	return false
}

// TestLongPowerCut cuts the power of a real first boot at the points where
// a node is most fragile, and powers the same disk on again each time:
// the control plane during the image import, during the apply, during
// kubeadm init once etcd has data, and between the init and the pod
// network, one after another on the same machine; then a worker during
// its join, once the control plane is up. Both must end Ready, the control plane with one init (the
// agent finishing the one that was cut), and the record must say so.
func TestLongPowerCut(t *testing.T) {
	needLong(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if r := run(t, "build", "-p", "profiles/test-cluster.yaml", "-o", out); r.code != 0 {
		t.Fatalf("build exited %d:\n%s", r.code, tail(r.stderr, 3000))
	}
	image := filepath.Join(out, "test-cluster.qcow2")
	id, secret := make([]byte, 3), make([]byte, 8)
	rand.Read(id)
	rand.Read(secret)
	token := hex.EncodeToString(id) + "." + hex.EncodeToString(secret)
	crt, key := clusterCA(t, dir)
	root := repoRoot(t)
	script := func(name string) string { return readFile(filepath.Join(root, "internal", "e2e", "testdata", name)) }
	ports := freeUDPPorts(t, 2)
	nodes := []clusterNode{
		{name: "cp-1", role: "init", ip: "10.10.0.1", mac: "52:54:00:10:00:01"},
		{name: "worker-1", role: "join", ip: "10.10.0.2", mac: "52:54:00:10:00:02"},
	}
	machines := make([]*machine, len(nodes))
	patches := durablePatches(t, dir)
	for i, n := range nodes {
		var extra []string
		if n.role == "init" {
			extra = []string{"--patches", patches}
		}
		ign := renderClusterConfig(t, dir, n, nodes[0].ip, token, crt, key, extra...)
		ign = withProbe(t, ign, script("powercut/probe.sh"), script("cluster/watch.sh"))
		ign = withUnit(t, ign, "nodebake-powercut-marker.service", "/etc/nodebake-test/marker", script("powercut/marker.sh"))
		ignPath := filepath.Join(dir, n.name+".ign")
		os.WriteFile(ignPath, ign, 0o600)
		mem, cpus := "4096", "2"
		if n.role == "join" {
			mem, cpus = "2048", "1"
		}
		machines[i] = &machine{t: t, name: n.name, dir: filepath.Join(dir, n.name+".disk"), args: []string{
			"boot", image, "--ignition", ignPath, "--disk-size", "12GiB", "--memory", mem, "--cpus", cpus,
			"--mac", n.mac, "--link", fmt.Sprintf("%d:%d", ports[i], ports[1-i])}}
	}
	cp, worker := machines[0], machines[1]
	defer cp.stop()
	defer worker.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()

	type cutPoint struct {
		m     *machine
		name  string
		mark  string        // the console line that marks the point
		after time.Duration // how long after it the power goes
	}
	var figures []string
	cut := func(p cutPoint) {
		p.m.powerOn(ctx)
		at := p.m.waitFor(ctx, p.mark)
		time.Sleep(p.after)
		p.m.cut()
		f := fmt.Sprintf("%s: cut %s, %.0f s after power-on (boot %d)", p.m.name, p.name, (at + p.after).Seconds(), p.m.boots)
		t.Log(f)
		figures = append(figures, f)
	}
	for _, p := range []cutPoint{
		{cp, "during the image import", "nodebake images: importing", 2 * time.Second},
		{cp, "during the apply", "nodebake firstboot: phase apply", 0},
		{cp, "during kubeadm init, etcd holding data", "NBP-MARK etcd", 0},
		{cp, "between the init and the pod network", "nodebake firstboot: phase network", 0},
	} {
		cut(p)
	}
	// The control plane, powered on for the last time, must converge;
	// then the worker's join is cut while it can reach it.
	cp.powerOn(ctx)
	cpOn := cp.started
	configured := cp.waitFor(ctx, "nodebake firstboot: configured")
	figures = append(figures, fmt.Sprintf("cp-1: configured %.0f s after its last power-on (boot %d)", configured.Seconds(), cp.boots))
	cut(cutPoint{worker, "during the join", "NBP-MARK join", 0})
	worker.powerOn(ctx)
	workerOn := worker.started
	cp.waitFor(ctx, "NBP done=1")
	worker.waitFor(ctx, "NBP done=1")
	c, w := lines(cp.serial, "NBP"), lines(worker.serial, "NBP")
	for _, l := range logLines(cp.serial, "NBP-LOG") {
		t.Log("cp-1: " + l)
	}
	for _, l := range logLines(worker.serial, "NBP-LOG") {
		t.Log("worker-1: " + l)
	}
	for k, want := range map[string]string{
		// The first boot's cut came before firstboot started.
		"firstboot": "success", "runs": "4", "kubeadm_runs": "1", "init_finished": "yes", "marker": "yes",
		"ready.cp-1": "True", "ready.worker-1": "True", "coredns_available": "True", "kubeadm_config": "configmap/kubeadm-config",
	} {
		if c[k] != want {
			t.Errorf("cp-1: %s = %q, want %q", k, c[k], want)
		}
	}
	for k, want := range map[string]string{"firstboot": "success", "runs": "2", "marker": "yes"} {
		if w[k] != want {
			t.Errorf("worker-1: %s = %q, want %q", k, w[k], want)
		}
	}
	for _, m := range []struct {
		name string
		on   time.Time
	}{{"cp-1", cpOn}, {"worker-1", workerOn}} {
		if at, err := time.Parse(time.RFC3339, c["ready_at."+m.name]); err == nil {
			figures = append(figures, fmt.Sprintf("%s: Ready %.0f s after its last power-on", m.name, at.Sub(m.on).Seconds()))
		}
	}
	for _, f := range figures {
		fmt.Println("power cut: " + f)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*.serial"))
	for _, l := range logs {
		if strings.Contains(readFile(l), hex.EncodeToString(secret)) {
			t.Errorf("%s: the bootstrap token's secret reached the console", filepath.Base(l))
		}
	}
}
