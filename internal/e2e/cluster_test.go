package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clusterCA writes a cluster CA as kubeadm would make it; init nodes get
// it through their config, joining nodes its hash.
func clusterCA(t *testing.T, dir string) (crt, key string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	crt, key = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return crt, key
}

// clusterNode is one VM of the cluster.
type clusterNode struct {
	name, role, ip, mac string
	probe               string // testdata/cluster script
	serial              string
	started             time.Time
}

// networkFile gives a node its static address on the private link. The
// gateway and DNS server are addresses no machine has: the link has no way
// out, and resolv.conf still names a server (CoreDNS refuses to start
// without one to forward to).
func networkFile(n clusterNode) string {
	return fmt.Sprintf("[Match]\nMACAddress=%s\n\n[Network]\nAddress=%s/24\nGateway=10.10.0.254\nDNS=10.10.0.254\n", n.mac, n.ip)
}

// withProbe adds the node's probe script and a unit running it after
// firstboot to a rendered config, the functions the probes share
// (testdata/lib.sh), and the watch that reports the node's state every
// two minutes from the start.
func withProbe(t *testing.T, ign []byte, probe, watch string) []byte {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(ign, &cfg); err != nil {
		t.Fatal(err)
	}
	storage := cfg["storage"].(map[string]any)
	lib := readFile(filepath.Join(repoRoot(t), "internal", "e2e", "testdata", "lib.sh"))
	for path, script := range map[string]string{"/etc/nodebake-test/probe": probe, "/etc/nodebake-test/watch": watch, "/etc/nodebake-test/lib.sh": lib} {
		storage["files"] = append(storage["files"].([]any), map[string]any{
			"path": path, "mode": 0o755, "overwrite": true,
			"contents": map[string]any{"source": "data:;base64," + base64.StdEncoding.EncodeToString([]byte(script))},
		})
	}
	cfg["systemd"] = map[string]any{"units": []any{map[string]any{
		"name": "nodebake-cluster-probe.service", "enabled": true,
		"contents": "[Unit]\nDescription=nodebake cluster test probe\nAfter=firstboot.service\nWants=firstboot.service\n\n" +
			"[Service]\nType=oneshot\nExecStart=/etc/nodebake-test/probe\nTimeoutStartSec=infinity\n\n[Install]\nWantedBy=multi-user.target\n",
	}, map[string]any{
		"name": "nodebake-cluster-watch.service", "enabled": true,
		"contents": "[Unit]\nDescription=nodebake cluster test watch\n\n" +
			"[Service]\nExecStart=/etc/nodebake-test/watch\n\n[Install]\nWantedBy=multi-user.target\n",
	}}}
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// renderClusterConfig renders a cluster node's config with firstboot
// render: its static address on the private link, the cluster CA (and
// its key for the init node), and for the init node the test's
// tuning; a joining node gets the control plane's endpoint.
func renderClusterConfig(t *testing.T, dir string, n clusterNode, cpIP, token, crt, key string) []byte {
	t.Helper()
	netFile := filepath.Join(dir, n.name+".network")
	os.WriteFile(netFile, []byte(networkFile(n)), 0o644)
	args := []string{"render", "--role", n.role, "--node-name", n.name, "--token", token, "--ca-cert", crt,
		"--file", "/etc/systemd/network/10-cluster.network=" + netFile}
	if n.role == "init" {
		// ECDSA keys make each TLS handshake (kubectl, probes, every
		// component's client) a fraction of RSA's cost under TCG; the
		// patches give the static pods' probes slack for two cores.
		args = append(args, "--ca-key", key, "--advertise-address", n.ip, "--encryption-algorithm", "ECDSA-P256", "--leader-election-lease", "2m",
			"--patches", filepath.Join(repoRoot(t), "internal", "e2e", "testdata", "cluster", "patches"))
	} else {
		args = append(args, "--endpoint", cpIP+":6443")
	}
	ign, err := exec.Command(firstboot(t), args...).Output()
	if err != nil {
		t.Fatalf("firstboot render %v: %v", args, err)
	}
	return ign
}

// freeUDPPorts returns n loopback UDP ports that are free now.
func freeUDPPorts(t *testing.T, n int) []int {
	var ports []int
	var conns []net.PacketConn
	for i := 0; i < n; i++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	for _, c := range conns {
		c.Close()
	}
	return ports
}

// TestTwoNodeCluster boots the image twice on a private link with no way
// out: one node initialises the cluster, the other joins it, both from
// configs that firstboot render wrote and fw_cfg delivered. A pod from a
// baked image runs on the worker and reaches the API server by its DNS
// name; the worker reboots and is Ready again without joining again. On
// the way, the control plane's power is cut during its image import and
// the worker's during its join, and both converge.
func TestTwoNodeCluster(t *testing.T) {
	needIntegration(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if r := run(t, "build", "-p", "profiles/test-cluster.yaml", "-o", out); r.code != 0 {
		t.Fatalf("build exited %d:\n%s", r.code, tail(r.stderr, 3000))
	}
	image := filepath.Join(out, "test-cluster.qcow2")
	crt, key := clusterCA(t, dir)
	tokenID, tokenSecret := make([]byte, 3), make([]byte, 8)
	rand.Read(tokenID)
	rand.Read(tokenSecret)
	token := hex.EncodeToString(tokenID) + "." + hex.EncodeToString(tokenSecret)
	root := repoRoot(t)
	nodes := []*clusterNode{
		{name: "cp-1", role: "init", ip: "10.10.0.1", mac: "52:54:00:10:00:01", probe: "cp-probe.sh"},
		{name: "worker-1", role: "join", ip: "10.10.0.2", mac: "52:54:00:10:00:02", probe: "worker-probe.sh"},
	}
	ports := freeUDPPorts(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	machines := make([]*machine, len(nodes))
	for i, n := range nodes {
		ign := renderClusterConfig(t, dir, *n, nodes[0].ip, token, crt, key)
		probe, err := os.ReadFile(filepath.Join(root, "internal", "e2e", "testdata", "cluster", n.probe))
		if err != nil {
			t.Fatal(err)
		}
		watch, err := os.ReadFile(filepath.Join(root, "internal", "e2e", "testdata", "cluster", "watch.sh"))
		if err != nil {
			t.Fatal(err)
		}
		ign = withProbe(t, ign, string(probe), string(watch))
		ign = withUnit(t, ign, "nodebake-powercut-marker.service", "/etc/nodebake-test/marker",
			readFile(filepath.Join(root, "internal", "e2e", "testdata", "powercut", "marker.sh")))
		ignPath := filepath.Join(dir, n.name+".ign")
		os.WriteFile(ignPath, ign, 0o600)
		if res, err := exec.Command(firstboot(t), "validate", ignPath, "--image", filepath.Join(out, "test-cluster.raw")).CombinedOutput(); err != nil {
			t.Fatalf("firstboot validate %s: %v\n%s", n.name, err, res)
		}
		n.serial = filepath.Join(dir, n.name+".serial")
		mem, cpus := "4096", "2"
		if n.role == "join" {
			mem, cpus = "2048", "1"
		}
		// Each node's disk is kept (--state-dir), so that it can be cut
		// off and powered on again.
		machines[i] = &machine{t: t, name: n.name, dir: filepath.Join(dir, n.name+".disk"), log: n.serial, args: []string{
			"boot", image, "--ignition", ignPath, "--disk-size", "12GiB", "--memory", mem, "--cpus", cpus, "--mac", n.mac,
			"--link", fmt.Sprintf("%d:%d", ports[i], ports[1-i])}}
	}
	cp, worker := nodes[0], nodes[1]
	cpVM, workerVM := machines[0], machines[1]
	defer cpVM.stop()
	defer workerVM.stop()
	// Two of TestLongPowerCut's points, here in make test: the control
	// plane's power is cut during its first boot's image import, and the
	// worker's during its join; each is powered on again and must
	// converge.
	cpVM.powerOn(ctx)
	cp.started = cpVM.started
	cpVM.waitFor(ctx, "nodebake images: importing")
	time.Sleep(2 * time.Second)
	cpVM.cut()
	t.Logf("cp-1: power cut during the image import, %.0f s after power-on", time.Since(cp.started).Seconds())
	cpVM.powerOn(ctx)
	// The worker is powered on once the control plane's first boot is
	// over: on two cores under TCG, a worker's boot and image import
	// beside a control plane's init starve it (the join itself waits
	// for an unreachable control plane in the agent's unit tests).
	workerCut := false
	// The control plane's probe ends with done=1 once the worker came
	// back from its reboot (or gave up waiting).
	for lines(cp.serial, "NBC")["done"] != "1" {
		if worker.started.IsZero() && lines(cp.serial, "NBC")["firstboot"] != "" {
			workerVM.powerOn(ctx)
			worker.started = workerVM.started
		}
		if !worker.started.IsZero() && !workerCut {
			// The marker freezes kubeadm join mid-way and says so; the
			// power goes then.
			at := workerVM.waitFor(ctx, "NBP-MARK join")
			workerVM.cut()
			t.Logf("worker-1: power cut during the join, %.0f s after power-on", at.Seconds())
			workerVM.powerOn(ctx)
			workerCut = true
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the cluster did not finish in time\n%s", report(nodes))
		case <-time.After(10 * time.Second):
		}
		for _, m := range machines {
			if m.cmd == nil {
				continue
			}
			if stopped, err := m.stopped(); stopped {
				t.Fatalf("%s: the VM stopped: %v\n%s", m.name, err, report(nodes))
			}
		}
	}
	// Let the worker's second boot report, then stop both VMs.
	deadline := time.Now().Add(5 * time.Minute)
	if lines(cp.serial, "NBC")["worker_rebooted"] != "yes" {
		deadline = time.Now()
	}
	for lines(worker.serial, "NBW")["boot=2.kubelet"] == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Second)
	}
	cpVM.stop()
	workerVM.stop()
	if !workerCut {
		t.Error("the worker's join was never cut")
	}

	c, w := lines(cp.serial, "NBC"), lines(worker.serial, "NBW")
	for _, l := range logLines(cp.serial, "NBC-LOG") {
		t.Log("cp-1: " + l)
	}
	for _, n := range nodes {
		at, err := time.Parse(time.RFC3339, c["ready_at."+n.name])
		if err != nil {
			t.Errorf("%s: no Ready time (%q)", n.name, c["ready_at."+n.name])
			continue
		}
		t.Logf("%s: Ready %.0f s after power-on", n.name, at.Sub(n.started).Seconds())
		fmt.Printf("cluster: %s Ready %.0f s after power-on\n", n.name, at.Sub(n.started).Seconds())
	}
	for k, want := range map[string]string{
		"firstboot": "success", "ready.cp-1": "True", "ready.worker-1": "True",
		"coredns_available": "True", "pod_phase": "Succeeded", "pod_node": "worker-1", "pod_image_pulled": "0",
		"worker_rebooted": "yes", "worker_ready_after": "True",
	} {
		if c[k] != want {
			t.Errorf("control plane: %s = %q, want %q", k, c[k], want)
		}
	}
	for k, want := range map[string]string{
		// The first power-on's run was cut during the join: two runs.
		"boot=1.firstboot": "success", "boot=2.firstboot": "success", "boot=1.runs": "2",
		// The reboot found the record and did nothing: no third run.
		"boot=2.runs": "2", "boot=2.journal_already": "yes", "boot=2.kubelet": "active",
	} {
		if w[k] != want {
			t.Errorf("worker: %s = %q, want %q", k, w[k], want)
		}
	}
	if t.Failed() {
		t.Log(report(nodes))
	}
}

// report is what the nodes said: the watch's lines and the serial's tail.
func report(nodes []*clusterNode) string {
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "%s watch:\n%s\n%s serial tail:\n%s\n", n.name,
			tail(strings.Join(logLines(n.serial, "NBD"), "\n"), 6000), n.name, tailFile(n.serial))
	}
	return b.String()
}

func tailFile(path string) string { return tail(readFile(path), 6000) }
