package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nodebake/nodebake/internal/atomicfile"
	"github.com/nodebake/nodebake/internal/capi"
	"github.com/nodebake/nodebake/internal/configsource"
	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/nodecheck"
	"github.com/nodebake/nodebake/internal/retry"
)

// Error classes of the agent's own failures.
var (
	ErrIdentity      = errors.New("the machine's identity is not its own")
	ErrConfigChanged = errors.New("the Ignition config changed after it was partly applied")
	ErrPartialInit   = errors.New("refusing a second kubeadm init: this node has etcd data from an earlier one")
	ErrNoKubeadm     = nodecheck.ErrNoKubeadm
)

func errorClass(err error) string {
	if c := kubeadm.Class(err); c != "" {
		return c
	}
	var inv *ignitioncfg.InvalidError
	switch {
	case errors.As(err, &inv), errors.Is(err, ignitioncfg.ErrVersion):
		return "invalid-config"
	case errors.Is(err, ErrIdentity):
		return "identity"
	case errors.Is(err, ErrConfigChanged):
		return "config-changed"
	case errors.Is(err, ErrPartialInit):
		return "partial-init"
	case errors.Is(err, ErrNoKubeadm):
		return "no-kubeadm-config"
	case errors.Is(err, ErrCommands):
		return "capi-commands"
	case errors.Is(err, ignitioncfg.ErrHash):
		return "hash-mismatch"
	}
	return "failed"
}

// identity checks that this machine is itself: a machine-id of its own
// and SSH host keys before anything else happens.
func (a *Agent) identity(context.Context) error {
	id, err := os.ReadFile(a.path("/etc/machine-id"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrIdentity, err)
	}
	switch s := strings.TrimSpace(string(id)); {
	case s == "", s == "uninitialized":
		return fmt.Errorf("%w: /etc/machine-id is empty; the image's own is empty and systemd must make one", ErrIdentity)
	case len(s) != 32:
		return fmt.Errorf("%w: /etc/machine-id %q is not 32 hex digits", ErrIdentity, s)
	}
	keys, _ := filepath.Glob(a.path("/etc/ssh/ssh_host_*_key"))
	if len(keys) == 0 {
		return fmt.Errorf("%w: no SSH host keys in /etc/ssh", ErrIdentity)
	}
	return nil
}

// fetch finds the config.
func (a *Agent) fetch(ctx context.Context) error {
	f, err := configsource.Find(ctx, a.Sources)
	if err != nil {
		return err
	}
	sum := hash(f.Config)
	if a.st.ConfigSHA256 != "" && a.st.ConfigSHA256 != sum && a.st.Done("apply") {
		return fmt.Errorf("%w (sha256 %s, then %s); remove %s to start over", ErrConfigChanged, a.st.ConfigSHA256[:12], sum[:12], StatusPath)
	}
	if a.st.ConfigSHA256 != sum {
		a.st.Applied = nil // a new config starts a new record
	}
	a.st.Source, a.st.ConfigSHA256 = f.Source, sum
	a.run.found = f
	a.Log.Info("config found", "source", f.Source, "sha256", sum)
	return nil
}

// validate checks everything before anything is written: the Ignition
// config and its report, every path it writes, the kubeadm configuration
// in it (kubeadm config validate), its version against the image's, and
// the images kubeadm will need.
func (a *Agent) validate(ctx context.Context) error {
	res, err := nodecheck.Check(ctx, nodecheck.Input{
		Config: a.run.found.Config, Fetch: a.Fetch, Target: a.Node, Scratch: a.path("/run/nodebake"),
	})
	for _, p := range res.Problems {
		a.Log.Warn("ignition config report", "kind", p.Kind, "path", p.Path, "message", p.Message)
	}
	if res.Kubeadm != nil {
		a.run.kubeCfg, a.run.secrets = res.Kubeadm, res.Kubeadm.Secrets
		a.run.kubePath, a.run.capi, a.run.kubeYAML, a.run.template = res.KubeadmPath, res.CAPI, res.KubeadmYAML, res.Template
		a.Node.Redact(res.Kubeadm.Secrets)
		a.st.Role = string(res.Kubeadm.Role)
	}
	if err != nil {
		return err
	}
	a.run.cfg = res.Config
	return nil
}

// apply writes the config, sets the hostname, and brings the network
// files and units it wrote into effect before kubeadm runs.
func (a *Agent) apply(ctx context.Context) error {
	t := &ignitioncfg.Target{
		Root: a.Root, Fetch: a.Fetch, Run: a.runner(), Log: a.Log,
		Done: a.st.Applied,
		Save: func(done map[string]string) error { a.st.Applied = done; return a.save() },
	}
	cfg := a.run.cfg
	if a.run.capi != nil {
		cfg = capi.Adopt(cfg)
	}
	res, err := ignitioncfg.Apply(ctx, cfg, t)
	if err != nil {
		return err
	}
	name := res.Hostname
	if name == "" && validHostname(a.run.kubeCfg.NodeName) {
		// Not one a template leaves for its commands to fill in.
		name = a.run.kubeCfg.NodeName
	}
	if name == "" {
		name = a.dhcpHostname()
	}
	if name == "" && a.run.found.Hostname != "" {
		name = a.run.found.Hostname
	}
	if name == "" {
		if name, err = a.Node.MACHostname(); err != nil {
			return err
		}
	}
	if err := atomicfile.Write(a.path("/etc/hostname"), []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	if err := a.Node.SetHostname(ctx, name); err != nil {
		return err
	}
	a.st.NodeName = name
	if res.UnitsChanged || res.NetworkChanged {
		if err := a.Node.Activate(ctx, res.NetworkChanged, res.Start); err != nil {
			return err
		}
	}
	return nil
}

// leases are systemd-networkd's DHCP leases, one file an interface.
const leases = "/run/systemd/netif/leases"

// dhcpHostname is the hostname a DHCP server gave (option 12), as bare
// metal sites name machines: from the lease of the lowest interface
// index that has one, "" for none. An invalid one is not used.
func (a *Agent) dhcpHostname() string {
	entries, err := os.ReadDir(a.path(leases))
	if err != nil {
		return ""
	}
	slices.SortFunc(entries, func(x, y os.DirEntry) int {
		i, _ := strconv.Atoi(x.Name())
		j, _ := strconv.Atoi(y.Name())
		return i - j
	})
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(a.path(leases), e.Name()))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "HOSTNAME="); ok && validHostname(v) {
				return v
			}
		}
	}
	return ""
}

// hostnameRE is a hostname that is a node name too: lowercase RFC 1123
// labels.
var hostnameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// validHostname is a name the kernel takes as hostname (64 bytes at
// most) and kubeadm as node name.
func validHostname(s string) bool { return len(s) < 64 && hostnameRE.MatchString(s) }

// leftovers are files an interrupted init or join leaves behind. The
// cluster CA is not one: the config may supply it (render --ca-cert), so
// that joining nodes can pin its hash before the cluster exists.
var leftovers = []string{
	"/etc/kubernetes/kubelet.conf", "/etc/kubernetes/admin.conf",
	"/etc/kubernetes/manifests/kube-apiserver.yaml", "/var/lib/kubelet/config.yaml",
}

// reset undoes a partial init or join with kubeadm reset, which empties
// /etc/kubernetes/pki and the kubeconfigs there. The files the Ignition
// config itself wrote under /etc/kubernetes (a supplied CA above all:
// every joining node pins its hash) are put back as they were.
func (a *Agent) reset(ctx context.Context) error {
	type kept struct {
		data []byte
		mode os.FileMode
	}
	keep := map[string]kept{}
	for _, f := range a.run.cfg.Storage.Files {
		if !strings.HasPrefix(f.Path, "/etc/kubernetes/") {
			continue
		}
		p := a.path(f.Path)
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		keep[f.Path] = kept{data, fi.Mode().Perm()}
	}
	a.Log.Warn("resetting the partial state of an interrupted attempt", "kept", len(keep))
	if err := a.Node.Reset(ctx); err != nil {
		return err
	}
	for path, k := range keep {
		p := a.path(path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(p, k.data, k.mode); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) hasLeftovers() bool {
	for _, p := range leftovers {
		if a.exists(p) {
			return true
		}
	}
	return false
}

// kubeadm runs init or join. A node that never succeeded and has partial
// state from an interrupted attempt is reset first; a node with etcd data
// is never initialised a second time: an init that got as far as etcd,
// and then failed or was cut short, is finished phase by phase.
func (a *Agent) kubeadm(ctx context.Context) error {
	if a.run.capi != nil {
		if err := a.recheck(ctx, a.run.kubeYAML); err != nil {
			return err
		}
	}
	kc := a.run.kubeCfg
	if kc.Role == kubeadm.RoleInit && a.exists(etcdData) && !a.st.KubeadmStarted {
		return fmt.Errorf("%w this agent did not start; inspect it and run kubeadm reset by hand, then remove %s", ErrPartialInit, StatusPath)
	}
	if a.st.KubeadmStarted || a.hasLeftovers() {
		// An init being finished stays so, also while etcd starts afresh
		// with no data (restartEtcdAfresh).
		if kc.Role == kubeadm.RoleInit && a.st.KubeadmStarted && (a.exists(etcdData) || a.st.InitFinish != nil) {
			return a.finished(a.finishInit(ctx, "an earlier run's kubeadm init was cut short"))
		}
		if a.hasLeftovers() {
			if err := a.reset(ctx); err != nil {
				return err
			}
		}
	}
	a.st.KubeadmStarted = true
	a.st.KubeadmRuns++
	a.mark(MilestoneKubeadmStart, a.sinceBoot())
	if err := a.save(); err != nil {
		return err
	}
	if kc.Role == kubeadm.RoleInit {
		err := a.Node.Init(ctx, a.run.kubePath, kc.CertificateKey != "")
		if err != nil && a.exists(etcdData) {
			return a.finished(a.finishInit(ctx, kubeadm.Reason(err)))
		}
		if err == nil {
			durable()
		}
		return a.finished(err)
	}
	if err := a.join(ctx); err != nil {
		if kc.Role == kubeadm.RoleJoin {
			return a.joinFailed(ctx, err)
		}
		return err
	}
	durable()
	return a.finished(nil)
}

// finished marks kubeadm done, by itself or finished by the agent, when
// err is nil, and returns err.
func (a *Agent) finished(err error) error {
	if err == nil {
		a.mark(MilestoneKubeadmDone, a.sinceBoot())
	}
	return err
}

// join retries while the control plane is unreachable, until the
// deadline; other failures are final. Each retry first resets what the
// failed attempt left behind.
func (a *Agent) join(ctx context.Context) error {
	deadline := a.JoinDeadline
	if deadline == 0 {
		deadline = time.Hour
	}
	first := a.JoinBackoff
	if first == 0 {
		first = 5 * time.Second
	}
	policy := retry.Policy{Deadline: deadline, First: first, Max: time.Minute,
		OnRetry: func(attempt int, err error, wait time.Duration) {
			reason := kubeadm.Reason(err)
			a.Log.Warn("join failed, retrying", "attempt", attempt, "class", kubeadm.Class(err), "retry_in", wait.String(), "error", reason)
			a.Notify.Status(fmt.Sprintf("kubeadm: control plane unreachable, retry %d in %s", attempt, wait))
			if a.Console != nil {
				fmt.Fprintf(a.Console, "nodebake firstboot: the control plane is unreachable (retry %d in %s): %s\n", attempt, wait, reason)
			}
		}}
	attempts := 0
	return retry.Do(ctx, policy, func(ctx context.Context) error {
		if attempts++; attempts > 1 && a.hasLeftovers() {
			if err := a.reset(ctx); err != nil {
				return retry.Final(err)
			}
		}
		if attempts > 1 {
			a.st.KubeadmRuns++
			if err := a.save(); err != nil {
				return retry.Final(err)
			}
		}
		err := a.Node.Join(ctx, a.run.kubePath)
		if err != nil && !errors.Is(err, kubeadm.ErrUnreachable) {
			return retry.Final(err)
		}
		return err
	})
}

// podNetwork, on the first control-plane node, applies the image's pod
// network manifest and gives root a kubeconfig.
func (a *Agent) podNetwork(ctx context.Context) error {
	if a.run.kubeCfg.Role != kubeadm.RoleInit {
		return nil
	}
	admin, err := os.ReadFile(a.path("/etc/kubernetes/admin.conf"))
	if err != nil {
		return err
	}
	kube := a.path("/root/.kube/config")
	if err := os.MkdirAll(filepath.Dir(kube), 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(kube, admin, 0o600); err != nil {
		return err
	}
	if !a.exists(manifest.NetworkPath) {
		a.Log.Info("the image has no pod network manifest")
		return nil
	}
	network, err := a.networkManifest(admin)
	if err != nil {
		return err
	}
	return a.Node.ApplyManifest(ctx, "/etc/kubernetes/admin.conf", network)
}

// record leaves the marker Cluster API tooling waits for, and the
// instance's metadata.
func (a *Agent) record(context.Context) error {
	if err := a.writeMetadata(); err != nil {
		return err
	}
	p := a.path(SuccessMarker)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(p, []byte("success\n"), 0o644)
}
