package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/nodecheck"
	"github.com/nodebake/nodebake/internal/retry"
)

// Node is the running system the agent acts on, one small interface for
// each of the phases' concerns. LiveNode is the real one; the tests' fake
// node is the other.
type Node interface {
	nodecheck.Target // validate: what the node carries, kubeadm's check
	Namer            // apply: the node's name
	Systemd          // apply: the config's units and network files
	Cluster          // kubeadm and the pod network
	Runtime          // images: the baked images imported
	Watcher          // the milestones
}

// Namer names the node.
type Namer interface {
	// MACHostname is a stable, unique name: node-MAC of the first
	// Ethernet.
	MACHostname() (string, error)
	// SetHostname sets the running kernel's hostname.
	SetHostname(ctx context.Context, name string) error
	// IPv4 is the node's first global IPv4 address, "" for none.
	IPv4() (string, error)
}

// Systemd brings what the config wrote into effect.
type Systemd interface {
	// Activate reloads systemd, brings new network files into effect and
	// waits for the network, and starts units.
	Activate(ctx context.Context, network bool, start []string) error
}

// Cluster makes the node part of a cluster.
type Cluster interface {
	// Redact has the node redact secrets (the config's bootstrap token
	// and certificate key) from what its programs print; set once,
	// after validate.
	Redact(secrets []string)
	Init(ctx context.Context, path string, uploadCerts bool) error
	// InitPhase runs one phase of kubeadm init, such as "addon all".
	InitPhase(ctx context.Context, path string, phase ...string) error
	// APIServerReady asks the local API server once whether it is ready.
	APIServerReady(ctx context.Context, kubeconfig string) error
	Join(ctx context.Context, path string) error
	Reset(ctx context.Context) error
	// StopContainers stops the running containers of that name, and
	// fails if one still runs after.
	StopContainers(ctx context.Context, name string) error
	ApplyManifest(ctx context.Context, kubeconfig, path string) error
	// Commands runs a bash script of Cluster API's preKubeadmCommands or
	// postKubeadmCommands, with env added to the environment.
	Commands(ctx context.Context, path string, env []string) error
}

// LiveNode acts on the machine the agent runs on.
type LiveNode struct {
	// Root is the node's root, "/" (the folder of a test's root in
	// tests).
	Root    string
	Run     *command.Runner
	Kubeadm *kubeadm.Kubeadm
	// NetworkTimeout bounds the wait for the network after new network
	// files.
	NetworkTimeout time.Duration
}

var _ Node = (*LiveNode)(nil)

func (n *LiveNode) Redact(secrets []string) { n.Kubeadm.Secrets = secrets }

func (n *LiveNode) BakedVersion(ctx context.Context) (string, error) {
	return n.Kubeadm.Version(ctx)
}

func (n *LiveNode) ValidateKubeadm(ctx context.Context, path string) error {
	return n.Kubeadm.Validate(ctx, path)
}

// MissingImages are the images kubeadm needs for version that the
// node's image does not bake, as an image read offline answers it: a
// role's images are imported after validate (the images phase), and a
// worker never imports the control plane's.
func (n *LiveNode) MissingImages(ctx context.Context, version string) ([]string, error) {
	refs, err := n.Kubeadm.Images(ctx, version)
	if err != nil {
		return nil, err
	}
	baked, err := bakedImages(n.Root)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, ref := range refs {
		if !slices.Contains(baked, ref) {
			missing = append(missing, ref)
		}
	}
	return missing, nil
}

// interfaces are the host's network interfaces by index: the order the
// kernel found them in, stable across boots.
func interfaces() ([]net.Interface, error) {
	ifs, err := net.Interfaces()
	sort.Slice(ifs, func(i, j int) bool { return ifs[i].Index < ifs[j].Index })
	return ifs, err
}

// MACHostname names the node after its first Ethernet's MAC address,
// stable and unique: node-525400123456.
func (n *LiveNode) MACHostname() (string, error) {
	ifs, err := interfaces()
	if err != nil {
		return "", err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 && len(i.HardwareAddr) == 6 {
			return "node-" + strings.ReplaceAll(i.HardwareAddr.String(), ":", ""), nil
		}
	}
	return "", errors.New("no Ethernet interface to name the node after")
}

// IPv4 is the first global unicast IPv4 address of an interface that is
// up, by interface index.
func (n *LiveNode) IPv4() (string, error) {
	ifs, err := interfaces()
	if err != nil {
		return "", err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", nil
}

// SetHostname sets the running kernel's hostname (the agent writes
// /etc/hostname under its root).
func (n *LiveNode) SetHostname(ctx context.Context, name string) error {
	_, err := n.Run.Run(ctx, command.Cmd{Name: "hostname", Args: []string{name}})
	return err
}

func (n *LiveNode) Activate(ctx context.Context, network bool, start []string) error {
	if _, err := n.Run.Run(ctx, command.Cmd{Name: "systemctl", Args: []string{"daemon-reload"}}); err != nil {
		return err
	}
	if network {
		// networkctl reload applies changed .network files; reconfigure
		// makes links already configured take them.
		if _, err := n.Run.Run(ctx, command.Cmd{Name: "networkctl", Args: []string{"reload"}}); err != nil {
			return err
		}
		if _, err := n.Run.Run(ctx, command.Cmd{Name: "networkctl", Args: []string{"reconfigure", "--all"}}); err != nil {
			// Older networkctl has no --all: name the links.
			links, _ := n.links()
			if len(links) > 0 {
				if _, err := n.Run.Run(ctx, command.Cmd{Name: "networkctl", Args: append([]string{"reconfigure"}, links...)}); err != nil {
					return err
				}
			}
		}
		timeout := n.NetworkTimeout
		if timeout == 0 {
			timeout = 2 * time.Minute
		}
		if _, err := n.Run.Run(ctx, command.Cmd{Name: "/lib/systemd/systemd-networkd-wait-online", Args: []string{"--any", fmt.Sprintf("--timeout=%d", int(timeout.Seconds()))}}); err != nil {
			return fmt.Errorf("waiting for the network the config set up: %w", err)
		}
	}
	for _, u := range start {
		if _, err := n.Run.Run(ctx, command.Cmd{Name: "systemctl", Args: []string{"start", "--no-block", u}}); err != nil {
			return err
		}
	}
	return nil
}

func (n *LiveNode) links() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			out = append(out, i.Name)
		}
	}
	return out, nil
}

func (n *LiveNode) Init(ctx context.Context, path string, uploadCerts bool) error {
	_, err := n.Kubeadm.Init(ctx, path, uploadCerts)
	return err
}

func (n *LiveNode) InitPhase(ctx context.Context, path string, phase ...string) error {
	return n.Kubeadm.InitPhase(ctx, path, phase...)
}

func (n *LiveNode) APIServerReady(ctx context.Context, kubeconfig string) error {
	_, err := n.Run.Run(ctx, command.Cmd{Name: "kubectl", Args: []string{"--kubeconfig", kubeconfig, "--request-timeout", "20s", "get", "--raw", "/readyz"}})
	return err
}

func (n *LiveNode) Join(ctx context.Context, path string) error {
	_, err := n.Kubeadm.Join(ctx, path)
	return err
}

func (n *LiveNode) Reset(ctx context.Context) error { return n.Kubeadm.Reset(ctx) }

// StopContainers stops the running containers named name through the CRI,
// again while the kubelet has one to start from a pod it still knew
// (up to 2 minutes), until none runs.
func (n *LiveNode) StopContainers(ctx context.Context, name string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := n.Run.Run(ctx, command.Cmd{Name: "crictl", Args: []string{"ps", "-q", "--name", "^" + regexp.QuoteMeta(name) + "$"}})
		if err != nil {
			return err
		}
		ids := strings.Fields(string(out))
		if len(ids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d containers still running", name, len(ids))
		}
		if _, err := n.Run.Run(ctx, command.Cmd{Name: "crictl", Args: append([]string{"stop", "--timeout", "30"}, ids...)}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// UnitActiveSince reads systemd's ActiveEnterTimestampMonotonic of unit.
func (n *LiveNode) UnitActiveSince(ctx context.Context, unit string) (float64, error) {
	out, err := n.Run.Run(ctx, command.Cmd{Name: "systemctl", Args: []string{"show", "--property", "ActiveEnterTimestampMonotonic", "--value", "--", unit}})
	if err != nil {
		return 0, err
	}
	us, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("systemctl show %s: %q: %w", unit, out, err)
	}
	return float64(us) / 1e6, nil
}

// WaitNode waits with kubectl wait, a watch and not a poll (under TCG
// every kubectl costs the node a second of CPU), again while the API
// server does not answer, until ctx ends.
func (n *LiveNode) WaitNode(ctx context.Context, kubeconfig, name, condition string) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Hour)
	}
	forWhat := "create"
	if condition != "" {
		forWhat = "condition=" + condition
	}
	return retry.Do(ctx, retry.Policy{Deadline: time.Until(deadline), First: 5 * time.Second, Max: 30 * time.Second}, func(ctx context.Context) error {
		_, err := n.Run.Run(ctx, command.Cmd{Name: "kubectl", Args: []string{"--kubeconfig", kubeconfig, "wait",
			"--for=" + forWhat, "--timeout=5m", "--", "node/" + name}})
		return err
	})
}

// ApplyManifest applies a manifest with kubectl, retrying while the API
// server settles.
func (n *LiveNode) ApplyManifest(ctx context.Context, kubeconfig, path string) error {
	every := 5 * time.Second
	return retry.Do(ctx, retry.Policy{Deadline: 30 * every, First: every, Max: every}, func(ctx context.Context) error {
		_, err := n.Run.Run(ctx, command.Cmd{Name: "kubectl", Args: []string{"--kubeconfig", kubeconfig, "apply", "-f", path}})
		return err
	})
}

// Commands runs the script with bash from /, as Cluster API's
// kubeadm.service would, its output to the journal, redacted.
func (n *LiveNode) Commands(ctx context.Context, path string, env []string) error {
	var out bytes.Buffer
	_, err := n.Run.Run(ctx, command.Cmd{Name: "/bin/bash", Args: []string{path}, Env: env, Dir: "/", Stdout: &out, Stderr: &out})
	if n.Run.Log != nil {
		// Redacted whole, before the split: a secret may follow its name
		// on the next line (kubeadm upload-certs prints its key so).
		for _, l := range strings.Split(strings.TrimRight(kubeadm.Redact(out.String(), n.Kubeadm.Secrets), "\n"), "\n") {
			if l != "" {
				n.Run.Log.Info("command output", "script", path, "line", l)
			}
		}
	}
	return err
}
