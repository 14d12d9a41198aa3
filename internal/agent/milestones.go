package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodebake/nodebake/internal/manifest"
)

// The milestones of a first boot, in the order a control plane reaches
// them (a worker reaches images later, beside its join). Each
// is recorded in seconds since the boot it came in (CLOCK_MONOTONIC, the
// clock of systemd's unit timestamps), with the run it came in: a power
// cut starts the count again.
const (
	MilestoneContainerd = "containerd" // containerd.service ready
	MilestoneImages     = "images"     // the node's baked images imported (nodebake-images.service)
	// The workloads' baked images imported (nodebake-images-workloads.service),
	// and on a control plane the control plane's
	// (nodebake-images-control-plane.service, started by the agent).
	// The imports are recorded as systemd timed them: on a control plane
	// by the images phase, on a worker (whose join runs beside its
	// imports, so they may come after kubeadm-started) by the imported
	// phase.
	MilestoneImagesWorkloads    = "images-workloads"
	MilestoneImagesControlPlane = "images-control-plane"
	MilestoneAgent              = "agent"              // this run of the agent started
	MilestoneKubeadmStart       = "kubeadm-started"    // kubeadm init or join started
	MilestoneKubeadmDone        = "kubeadm-done"       // kubeadm init or join done
	MilestoneRegistered         = "kubelet-registered" // the node's Node object exists
	MilestoneCNI                = "cni"                // containerd has the pod network's CNI config (manifest.CNIDir)
	MilestoneReady              = "node-ready"         // the node Ready (the kubelet is only once the CNI is)
)

// Milestone is when a run reached a point of the first boot.
type Milestone struct {
	Name      string  `json:"name"`
	Run       int     `json:"run"`
	SinceBoot float64 `json:"sinceBoot"` // seconds, CLOCK_MONOTONIC
}

// Watcher tells when the node reached what other programs did.
type Watcher interface {
	// UnitActiveSince is when a systemd unit last became active, in
	// seconds since boot; 0 for a unit that has not.
	UnitActiveSince(ctx context.Context, unit string) (float64, error)
	// WaitNode waits until the Node object name exists, and, when
	// condition is not empty, until it has that condition.
	WaitNode(ctx context.Context, kubeconfig, name, condition string) error
}

// cniDir is where containerd loads the pod network's CNI config from,
// once the baked images are in.
const cniDir = manifest.CNIDir

// watchFor bounds how long a configured node is watched for its
// registration, CNI and Ready milestones.
const watchFor = 10 * time.Minute

func sinceBoot() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return float64(ts.Nano()) / 1e9
}

func (a *Agent) sinceBoot() float64 {
	if a.SinceBoot != nil {
		return a.SinceBoot()
	}
	return sinceBoot()
}

// mark records a milestone of this run at seconds since boot, once.
func (a *Agent) mark(name string, at float64) {
	for _, m := range a.st.Milestones {
		if m.Name == name && m.Run == a.st.Runs {
			return
		}
	}
	a.st.Milestones = append(a.st.Milestones, Milestone{Name: name, Run: a.st.Runs, SinceBoot: round1(at)})
	a.Log.Info("milestone", "name", name, "since_boot", round1(at))
	a.console("reached %s %.1f s after boot (run %d)", name, round1(at), a.st.Runs)
}

func round1(f float64) float64 { return float64(int64(f*10)) / 10 }

// markUnits records when containerd was ready, before this run started;
// the images phase records the imports. Milestones only inform: a unit
// that cannot be asked is logged and left out.
func (a *Agent) markUnits(ctx context.Context) {
	at, err := a.Node.UnitActiveSince(ctx, "containerd.service")
	if err != nil {
		a.Log.Warn("milestone unknown", "name", MilestoneContainerd, "unit", "containerd.service", "error", err)
		return
	}
	if at > 0 {
		a.mark(MilestoneContainerd, at)
	}
}

// watchNode records, after the node is configured, when its kubelet
// registered it, when the CNI config appeared and when it became Ready,
// for up to watchFor; then saves the record. It only informs: the node
// is configured whatever it finds.
func (a *Agent) watchNode(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, watchFor)
	defer cancel()
	kubeconfig := "/etc/kubernetes/kubelet.conf"
	type reached struct {
		name string
		at   float64
		err  error
	}
	ch := make(chan reached, 2)
	name := a.st.NodeName
	go func() {
		err := a.Node.WaitNode(ctx, kubeconfig, name, "")
		ch <- reached{MilestoneRegistered, a.sinceBoot(), err}
		if err == nil {
			err = a.Node.WaitNode(ctx, kubeconfig, name, "Ready")
			ch <- reached{MilestoneReady, a.sinceBoot(), err}
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	cni := false
	for left := 2; ; {
		if !cni && a.hasCNIConfig() {
			cni = true
			a.mark(MilestoneCNI, a.sinceBoot())
		}
		if left == 0 && cni {
			break
		}
		select {
		case r := <-ch:
			left--
			if r.err != nil {
				a.Log.Warn("milestone not reached", "name", r.name, "error", r.err)
				left, cni = 0, true // nothing more to learn
				continue
			}
			a.mark(r.name, r.at)
		case <-tick.C:
		case <-ctx.Done():
			left, cni = 0, true
		}
	}
	if err := a.save(); err != nil {
		a.Log.Warn("saving the milestones", "error", err)
	}
}

// hasCNIConfig reports whether a CNI network config is on the node.
func (a *Agent) hasCNIConfig() bool {
	entries, err := os.ReadDir(a.path(cniDir))
	if err != nil {
		return false
	}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".conflist" || ext == ".conf" || strings.HasSuffix(e.Name(), ".json")) {
			return true
		}
	}
	return false
}
