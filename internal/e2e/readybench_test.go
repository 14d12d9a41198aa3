package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// milestoneLine is the agent's console line for a milestone.
var milestoneLine = regexp.MustCompile(`nodebake firstboot: reached (\S+) ([0-9.]+) s after boot \(run (\d+)\)`)

// milestones are a console's milestones of its first run, in seconds
// since boot, in the order they came.
func milestones(console string) (names []string, at map[string]float64) {
	at = map[string]float64{}
	for _, m := range milestoneLine.FindAllStringSubmatch(console, -1) {
		if m[3] != "1" {
			continue
		}
		s, _ := strconv.ParseFloat(m[2], 64)
		if _, seen := at[m[1]]; !seen {
			names = append(names, m[1])
		}
		at[m[1]] = s
	}
	return names, at
}

// phaseLine is the agent's console line for a phase's start, with the
// kernel's timestamp.
var phaseLine = regexp.MustCompile(`\[\s*([0-9.]+)\] .*nodebake firstboot: phase (\S+)`)

// phaseStart is when the first run's phase started, in seconds since
// boot by the kernel's console timestamp.
func phaseStart(console, phase string) (float64, bool) {
	for _, m := range phaseLine.FindAllStringSubmatch(console, -1) {
		if m[2] == phase {
			s, err := strconv.ParseFloat(m[1], 64)
			return s, err == nil
		}
	}
	return 0, false
}

// plainProfile is the cluster test's image without the kit: the plain
// boot the others are measured against, the same base, kernel and
// command line with nothing of Kubernetes to start.
const plainProfile = `apiVersion: nodebake.dev/v1alpha1
kind: Profile
metadata:
  name: bench-plain
spec:
  base:
    suite: bookworm
  kernel:
    cmdline: [console=tty0, "console=ttyS0,115200", tsc=reliable]
  disk:
    espSize: 256MiB
    rootSize: 2GiB
    stateSize: 4GiB
  units:
    files: [nodebake-bench-booted.service]
    enable: [nodebake-bench-booted.service]
  outputs:
    formats: [raw, qcow2]
`

// plainBooted is the plain image's one unit: it marks multi-user on the
// serial console. systemd's own "Reached target multi-user.target" line
// cannot be waited for: on 2026-12-04 the plain boot's console showed the
// login prompt and never that line (systemd's status output is not
// promised once getty owns the console).
const plainBooted = `[Unit]
Description=nodebake bench: the boot reached multi-user
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "nodebake bench: multi-user" >/dev/ttyS0'

[Install]
WantedBy=multi-user.target
`

// BenchmarkBootToReady boots, under QEMU on this host (TCG where KVM
// does not work), a plain image to multi-user (three first boots; the
// median counts), then a control plane and two workers (1 vCPU, then 2
// like the plain boot; the control plane on the lowest CPU priority
// meanwhile) from firstboot render's configs on a link of their own,
// each from power-on to Ready,
// and prints the seconds, each as a ratio to the plain boot, each node's
// milestones (firstboot status records them; the agent prints them on the
// console as it reaches them) and its import's timeline. The image is
// the cluster test's (the default profile with tsc=reliable, which two
// vCPUs under TCG need); the control plane has its TCG patches. Each
// worker is powered on once the node before it is Ready (and the first
// worker stopped), so that each figure is one node's own. It asserts
// nothing about the times.
func BenchmarkBootToReady(b *testing.B) {
	needIntegration(b)
	dir := b.TempDir()
	// The plain profile's source folder holds its unit alone.
	src := filepath.Join(dir, "plain")
	plainYAML := filepath.Join(src, "bench-plain.yaml")
	if err := os.MkdirAll(filepath.Join(src, "systemd"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(plainYAML, []byte(plainProfile), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "systemd", "nodebake-bench-booted.service"), []byte(plainBooted), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, args := range [][]string{{"-p", plainYAML, "--source-dir", src}, {"-p", "profiles/test-cluster.yaml"}} {
		if r := run(b, append([]string{"build", "-o", filepath.Join(dir, "out")}, args...)...); r.code != 0 {
			b.Fatalf("build %v exited %d:\n%s", args, r.code, tail(r.stderr, 3000))
		}
	}
	image := filepath.Join(dir, "out", "test-cluster.qcow2")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()

	// The plain boot is the yardstick of every ratio: the median of three
	// first boots, each on a fresh disk (one boot here has taken 27 s one
	// day and 42 s another).
	b.ResetTimer()
	var plainRuns []float64
	for i := 1; i <= 3; i++ {
		plain := &machine{t: b, name: fmt.Sprintf("plain-%d", i), dir: filepath.Join(dir, fmt.Sprintf("plain-%d.disk", i)), args: []string{
			"boot", filepath.Join(dir, "out", "bench-plain.qcow2"), "--no-network", "--disk-size", "8GiB", "--memory", "2048", "--cpus", "2"}}
		plainCtx, plainCancel := context.WithTimeout(ctx, 10*time.Minute)
		plain.powerOn(plainCtx)
		plainRuns = append(plainRuns, plain.waitFor(plainCtx, "nodebake bench: multi-user").Seconds())
		plain.stop()
		plainCancel()
	}
	slices.Sort(plainRuns)
	plainSecs := plainRuns[1]

	id, secret := make([]byte, 3), make([]byte, 8)
	rand.Read(id)
	rand.Read(secret)
	token := hex.EncodeToString(id) + "." + hex.EncodeToString(secret)
	crt, key := clusterCA(b, dir)
	ports := freeUDPPorts(b, 2)
	// Two workers, one after the other on the same link: the 1-vCPU
	// worker the cluster test runs, then one with the plain boot's shape
	// (2 vCPUs, 2 GiB), the like-for-like ratio. The first is stopped
	// before the second powers on, so each figure is one node's own.
	nodes := []clusterNode{
		{name: "cp-1", role: "init", ip: "10.10.0.1", mac: "52:54:00:10:00:01"},
		{name: "worker-1", role: "join", ip: "10.10.0.2", mac: "52:54:00:10:00:02"},
		{name: "worker-2", role: "join", ip: "10.10.0.3", mac: "52:54:00:10:00:03"},
	}
	cpus := map[string]string{"cp-1": "2", "worker-1": "1", "worker-2": "2"}
	vms := make([]*machine, len(nodes))
	for i, n := range nodes {
		ign := filepath.Join(dir, n.name+".ign")
		if err := os.WriteFile(ign, renderClusterConfig(b, dir, n, nodes[0].ip, token, crt, key), 0o600); err != nil {
			b.Fatal(err)
		}
		mem, link := "2048", fmt.Sprintf("%d:%d", ports[1], ports[0])
		if n.role == "init" {
			mem, link = "4096", fmt.Sprintf("%d:%d", ports[0], ports[1])
		}
		vms[i] = &machine{t: b, name: n.name, dir: filepath.Join(dir, n.name+".disk"), args: []string{
			"boot", image, "--ignition", ign, "--disk-size", "12GiB", "--memory", mem, "--cpus", cpus[n.name],
			"--mac", n.mac, "--link", link}}
		defer vms[i].stop()
	}
	cp := vms[0]
	cp.powerOn(ctx)
	cpConfigured := cp.waitFor(ctx, "nodebake firstboot: configured").Seconds()
	cpReady := cp.waitFor(ctx, "nodebake firstboot: reached node-ready").Seconds()
	ready := map[string]float64{"cp-1": cpReady}
	// This host has 2 cores and the control plane keeps running under
	// TCG: at the same priority it took as much as half of them from each
	// worker (2026-12-05: a 2-vCPU worker's containerd up at 53 s, not
	// 28, and its import 69 s, not 25). On the lowest priority it still
	// serves the join whenever the worker waits, and the worker's figure
	// is closer to one machine's own, as a cloud node's is.
	lowerPriority(b, cp)
	for _, w := range vms[1:] {
		w.powerOn(ctx)
		ready[w.name] = w.waitFor(ctx, "nodebake firstboot: reached node-ready").Seconds()
		w.stop()
	}
	b.StopTimer()
	cp.stop()

	b.ReportMetric(plainSecs, "plain-boot-s")
	fmt.Printf("\n%-44s %8.1f s  (median of %.1f, %.1f, %.1f)\n", "plain boot (2 vCPUs), power-on to multi-user", plainSecs, plainRuns[0], plainRuns[1], plainRuns[2])
	for _, m := range vms {
		what := fmt.Sprintf("%s (%s vCPU), power-on to Ready", m.name, cpus[m.name])
		fmt.Printf("%-44s %8.1f s  %5.1fx plain", what, ready[m.name], ready[m.name]/plainSecs)
		if m == cp {
			fmt.Printf(" (configured at %.1f s)", cpConfigured)
		}
		fmt.Println()
		b.ReportMetric(ready[m.name], m.name+"-ready-s")
		b.ReportMetric(ready[m.name]/plainSecs, m.name+"/plain")
	}
	for _, m := range vms {
		names, at := milestones(m.console())
		fmt.Printf("%s, seconds after the kernel started:\n", m.name)
		for _, n := range names {
			fmt.Printf("  %-22s %8.1f\n", n, at[n])
		}
		if c, ok := at["containerd"]; ok {
			if i, ok := at["images"]; ok {
				// The node's unit starts once containerd is ready, the
				// workloads' once it ends. Each finds its images in
				// containerd's root, prepared by the build, or imports
				// them.
				fmt.Printf("  %-22s %8.1f s\n", "node.tar check", i-c)
				b.ReportMetric(i-c, m.name+"-import-s")
				if w, ok := at["images-workloads"]; ok {
					fmt.Printf("  %-22s %8.1f s\n", "workloads.tar check", w-i)
					b.ReportMetric(w-i, m.name+"-workloads-import-s")
				}
			}
		}
		// A worker's join starts beside the node's import; its kubelet
		// waits for the import's end, if it comes after the join's
		// start, for at most that long (the kubelet starts some seconds
		// into the join, so this bounds the wait from above).
		if k, ok := at["kubeadm-started"]; ok && m != cp {
			if i, ok := at["images"]; ok {
				wait := max(0, i-k)
				fmt.Printf("  %-22s %8.1f s\n", "import after join start", wait)
				b.ReportMetric(wait, m.name+"-import-on-join-s")
			}
		}
		// A control plane's own import runs from the agent's images
		// phase, beside the node's, to its end.
		if p, ok := phaseStart(m.console(), "images"); ok {
			if i, ok := at["images-control-plane"]; ok {
				fmt.Printf("  %-22s %8.1f s\n", "control-plane.tar", i-p)
				b.ReportMetric(i-p, m.name+"-cp-import-s")
			}
		}
		// The import's own lines: when each archive started, and when
		// containerd finished unpacking each image.
		for _, l := range importLine.FindAllStringSubmatch(m.console(), -1) {
			fmt.Printf("  %8s  %s\n", l[1], strings.TrimSpace(l[2]))
		}
	}
}

// importLine is a console line of import-images (its own, and ctr's
// "unpacking IMAGE (DIGEST)...done"), with journald's timestamp.
var importLine = regexp.MustCompile(`(?m)\[\s*([0-9.]+)\] [^\n]*?((?:nodebake images: |unpacking )[^\n]*)$`)

// lowerPriority puts every thread of m's imagebuild and of the processes
// under it (its QEMU) on the lowest CPU priority.
func lowerPriority(t testing.TB, m *machine) {
	t.Helper()
	pids := []int{m.cmd.Process.Pid}
	for i := 0; i < len(pids); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pids[i]))
		for _, task := range tasks {
			tid, _ := strconv.Atoi(filepath.Base(task))
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, 19); err != nil {
				t.Logf("%s: thread %d: %v", m.name, tid, err)
			}
			for _, c := range strings.Fields(readFile(filepath.Join(task, "children"))) {
				if pid, err := strconv.Atoi(c); err == nil {
					pids = append(pids, pid)
				}
			}
		}
	}
}
