package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/configsource"
	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/manifest"
)

// The agent's test fixtures: configs, a fake node that can crash at any
// call, and helpers to run the agent against a temporary root.
const token = "abcdef.0123456789abcdef"

func kubeadmInit(version string) string {
	return `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens: [{token: ` + token + `}]
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: ` + version + "\n"
}

const kubeadmJoin = `apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken: {apiServerEndpoint: "10.0.0.1:6443", token: ` + token + `, caCertHashes: ["sha256:00"]}
`

// suppliedCA is the cluster CA the config brings (render --ca-cert), as
// a test sees it on disk.
const suppliedCA = "-----BEGIN CERTIFICATE-----\nsupplied\n-----END CERTIFICATE-----\n"

// ignition is a config that writes the kubeadm file, the cluster CA, a
// hostname and appends to a file (so a double apply would show).
func ignition(kubeadmYAML string) string {
	return fmt.Sprintf(`{"ignition":{"version":"3.4.0"},"storage":{"files":[
		{"path":"/etc/kubernetes/kubeadm.yaml","contents":{"source":"data:,%s"},"mode":384},
		{"path":"/etc/kubernetes/pki/ca.crt","contents":{"source":"data:,%s"},"mode":420},
		{"path":"/etc/kubernetes/pki/ca.key","contents":{"source":"data:,key"},"mode":384},
		{"path":"/etc/hostname","contents":{"source":"data:,cp-1"},"overwrite":true},
		{"path":"/etc/motd","append":[{"source":"data:,configured%%0A"}]}]}}`, url.PathEscape(kubeadmYAML), url.PathEscape(suppliedCA))
}

// crash is what the fake node panics with to stop a run as a power cut
// would: nothing after it runs, not even the agent's failure record.
type crash struct{}

// fakeNode stands for the running system; it counts calls and can crash
// at the n-th. Init and join leave files behind as kubeadm does.
type fakeNode struct {
	root     string
	manifest []byte // the last manifest applied
	crashAt  int
	calls    []string
	// joinErrs are returned by the first joins.
	joinErrs []error
	// partial makes a crash inside Init leave etcd data behind.
	partial bool
	// leave are the files a crash inside Init leaves behind.
	leave []string
	// secrets are what the agent told the node to redact.
	secrets []string
	// initErr is what Init returns, once it has left a running control
	// plane behind: kubeadm timing out in wait-control-plane.
	initErr error
	// notReady is how many times the API server is not ready yet.
	notReady int
	// onPhase, when set, is told of each init phase as it starts.
	onPhase func(phase string)
	onInit  func() // after init wrote the control plane
	// paths are the kubeadm configurations init and join were given.
	paths []string
	// scripts are the scripts of Cluster API's commands run, as their
	// contents; onCommands, when set, runs in each one's place, and
	// commandsErr is what the next one returns.
	scripts     []string
	env         []string // the last commands' environment
	onCommands  func(script string)
	commandsErr error
	// importErr is what ImportImages returns, and queueErr
	// QueueImport.
	importErr, queueErr error
}

func (f *fakeNode) call(name string) {
	f.calls = append(f.calls, name)
	if len(f.calls) == f.crashAt {
		panic(crash{})
	}
}

func (f *fakeNode) count(name string) int {
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}

func (f *fakeNode) touch(p string) {
	full := filepath.Join(f.root, p)
	os.MkdirAll(filepath.Dir(full), 0o755)
	data := "x"
	if strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".conf") {
		data = "kind: Written\n" // as kubeadm writes them, a document
	}
	os.WriteFile(full, []byte(data), 0o600)
}

func (f *fakeNode) Redact(secrets []string) { f.secrets = secrets }
func (f *fakeNode) BakedVersion(context.Context) (string, error) {
	f.call("version")
	return "v1.37.2", nil
}
func (f *fakeNode) ValidateKubeadm(context.Context, string) error { f.call("validate"); return nil }
func (f *fakeNode) MissingImages(context.Context, string) ([]string, error) {
	f.call("images")
	return nil, nil
}
func (f *fakeNode) MACHostname() (string, error) { return "node-525400000001", nil }
func (f *fakeNode) IPv4() (string, error)        { return "10.0.0.9", nil }
func (f *fakeNode) SetHostname(context.Context, string) error {
	f.call("hostname")
	return nil
}
func (f *fakeNode) Activate(context.Context, bool, []string) error { f.call("activate"); return nil }
func (f *fakeNode) Init(_ context.Context, path string, _ bool) error {
	f.paths = append(f.paths, path)
	if f.partial && len(f.calls)+1 == f.crashAt {
		f.controlPlane()
	}
	if len(f.calls)+1 == f.crashAt {
		for _, p := range f.leave {
			f.touch(p)
		}
	}
	f.call("init")
	f.controlPlane()
	if f.onInit != nil {
		f.onInit()
	}
	return f.initErr
}

// controlPlane leaves what kubeadm init has written once the control
// plane runs: etcd's data, the static pods, the kubeconfigs and the
// kubelet's configuration.
func (f *fakeNode) controlPlane() {
	f.touch("/var/lib/etcd/member/snap/db")
	// A log whose hard state committed etcd's first entry: a member that
	// elects itself.
	wal := filepath.Join(f.root, etcdWALDir)
	os.MkdirAll(wal, 0o700)
	os.WriteFile(filepath.Join(wal, "0000000000000000-0000000000000000.wal"),
		slices.Concat(walStart(), walRecord(2, "conf change"), hardState(1, 1)), 0o600)
	f.touch("/etc/kubernetes/manifests/kube-apiserver.yaml")
	f.touch("/etc/kubernetes/manifests/etcd.yaml")
	os.MkdirAll(filepath.Join(f.root, "etc/kubernetes"), 0o755)
	os.WriteFile(filepath.Join(f.root, "etc/kubernetes/admin.conf"), []byte(adminKubeconfig), 0o600)
	f.touch("/var/lib/kubelet/config.yaml")
}

func (f *fakeNode) InitPhase(_ context.Context, _ string, phase ...string) error {
	f.call("phase " + phase[0])
	if f.onPhase != nil {
		f.onPhase(phase[0])
	}
	if phase[0] == "kubeconfig" { // as kubeadm, makes what is missing
		if _, err := os.Stat(filepath.Join(f.root, "etc/kubernetes/admin.conf")); err != nil {
			os.WriteFile(filepath.Join(f.root, "etc/kubernetes/admin.conf"), []byte(adminKubeconfig), 0o600)
		}
	}
	return nil
}

func (f *fakeNode) APIServerReady(context.Context, string) error {
	f.call("ready")
	if f.notReady > 0 {
		f.notReady--
		return errors.New("connection refused")
	}
	return nil
}
func (f *fakeNode) Join(_ context.Context, path string) error {
	f.paths = append(f.paths, path)
	f.call("join")
	if len(f.joinErrs) > 0 {
		err := f.joinErrs[0]
		f.joinErrs = f.joinErrs[1:]
		return err
	}
	f.touch("/etc/kubernetes/kubelet.conf")
	return nil
}

// ImportImages records the archives imported, as one call.
func (f *fakeNode) ImportImages(_ context.Context, archives []string) error {
	f.call("import " + strings.Join(archives, ","))
	return f.importErr
}

// QueueImport records the archives queued, as one call.
func (f *fakeNode) QueueImport(_ context.Context, archives []string) error {
	f.call("queue " + strings.Join(archives, ","))
	return f.queueErr
}

// UnitActiveSince: every unit became active 5 s into the boot.
func (f *fakeNode) UnitActiveSince(context.Context, string) (float64, error) { return 5, nil }

// WaitNode finds the node registered at once, and Ready once the CNI
// config is on the node, as flannel leaves it.
func (f *fakeNode) WaitNode(_ context.Context, _, _, condition string) error {
	if condition == "Ready" {
		f.touch(manifest.CNIDir + "/10-flannel.conflist")
	}
	return nil
}

func (f *fakeNode) StopContainers(_ context.Context, name string) error {
	f.call("stop " + name)
	return nil
}

func (f *fakeNode) Reset(context.Context) error {
	f.call("reset")
	for _, p := range []string{"etc/kubernetes", "var/lib/kubelet", "var/lib/etcd"} {
		os.RemoveAll(filepath.Join(f.root, p))
	}
	return nil
}
func (f *fakeNode) Commands(_ context.Context, path string, env []string) error {
	f.call("commands")
	f.env = env
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f.scripts = append(f.scripts, string(b))
	if f.onCommands != nil {
		f.onCommands(string(b))
	}
	err, f.commandsErr = f.commandsErr, nil
	return err
}
func (f *fakeNode) ApplyManifest(_ context.Context, _, path string) error {
	f.call("manifest")
	f.manifest, _ = os.ReadFile(filepath.Join(f.root, path))
	return nil
}

// adminKubeconfig is the kubeconfig kubeadm init leaves, as far as the agent
// reads it.
const adminKubeconfig = `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Cg==
    server: https://10.0.0.1:6443
  name: kubernetes
`

type notes struct {
	statuses []string
	ready    int
}

func (n *notes) Status(s string) { n.statuses = append(n.statuses, s) }
func (n *notes) Ready()          { n.ready++ }

// newRoot is a booted node's root: its identity, a motd, and the config
// in fw_cfg.
func newRoot(t *testing.T, config string) string {
	t.Helper()
	root := t.TempDir()
	for p, data := range map[string]string{
		"etc/machine-id":                  "0123456789abcdef0123456789abcdef\n",
		"etc/ssh/ssh_host_ed25519_key":    "key",
		"etc/motd":                        "welcome\n",
		"usr/share/nodebake/network.yaml": "kind: List\n",
		"etc/passwd":                      "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":                       "root:x:0:\n",
	} {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte(data), 0o644)
	}
	if config != "" {
		p := filepath.Join(root, "sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(config), 0o644)
	}
	return root
}

func newAgent(root string, node Node, console io.Writer) (*Agent, *notes) {
	n := &notes{}
	return &Agent{
		Root: root, Node: node, Notify: n, Console: console,
		Sources:     &configsource.Env{Root: root, Deadline: time.Second},
		Fetch:       &ignitioncfg.Fetcher{},
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		JoinBackoff: time.Millisecond, InitBackoff: time.Millisecond,
	}, n
}

// run runs the agent and turns a simulated crash into crashed=true.
func run(a *Agent) (err error, crashed bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crash); !ok {
				panic(r)
			}
			crashed = true
		}
	}()
	return a.Run(context.Background()), false
}

func status(t *testing.T, root string) *Status {
	t.Helper()
	s, err := ReadStatus(root)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
func wrap(f *kubeadm.Failure, class error) error { return fmt.Errorf("%s: %w", f.Output, class) }
