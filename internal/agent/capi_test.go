package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nodebake/nodebake/internal/capi"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/kubeadm"
)

// capiConfig is user data from Cluster API's own generator (make
// capi-fixtures).
func capiConfig(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "capi", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// capiToken is the bootstrap token in the fixtures.
func capiToken(t *testing.T, cfg string) string {
	t.Helper()
	m := regexp.MustCompile(`token%3A%20([a-z0-9]{6})\.([a-z0-9]{16})`).FindStringSubmatch(cfg)
	if m == nil {
		t.Fatal("no bootstrap token in the fixture")
	}
	return m[1] + "." + m[2]
}

// TestClusterAPI carries out Cluster API's user data for each role: the
// preKubeadmCommands, kubeadm with /etc/kubeadm.yml, the success file,
// the configuration moved to /tmp, then the postKubeadmCommands; its
// unit is written but never enabled; its CAs are in place; and the
// bootstrap token reaches neither the console nor the journal.
func TestClusterAPI(t *testing.T) {
	for _, tc := range []struct{ fixture, role, kubeadm string }{
		{"init.ign", "init", "init"}, {"join.ign", "join", "join"}, {"cp-join.ign", "control-plane", "join"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			cfg := capiConfig(t, tc.fixture)
			root := newRoot(t, cfg)
			node := &fakeNode{root: root}
			var console, journal bytes.Buffer
			a, n := newAgent(root, node, &console)
			a.Log = slog.New(slog.NewTextHandler(&journal, nil))
			var markerAtPost bool
			node.onCommands = func(script string) {
				if strings.Contains(script, "postKubeadmCommands") {
					_, err := os.Stat(filepath.Join(root, capi.SuccessFile))
					markerAtPost = err == nil
				}
			}
			if err, _ := run(a); err != nil {
				t.Fatal(err)
			}
			st := status(t, root)
			if !st.Succeeded || st.Role != tc.role || n.ready != 1 {
				t.Errorf("status %+v", st)
			}
			// The order of the script.
			var order []string
			for _, c := range node.calls {
				if c == "commands" || c == "init" || c == "join" {
					order = append(order, c)
				}
			}
			if want := []string{"commands", tc.kubeadm, "commands"}; strings.Join(order, " ") != strings.Join(want, " ") {
				t.Errorf("calls %v, want %v in that order", node.calls, want)
			}
			if len(node.paths) != 1 || node.paths[0] != capi.ConfigPath {
				t.Errorf("kubeadm was given %v, want %s", node.paths, capi.ConfigPath)
			}
			if len(node.scripts) != 2 || !strings.HasPrefix(node.scripts[0], "#!/bin/bash\nset -e\n") ||
				!strings.Contains(node.scripts[0], "echo capi-test preKubeadmCommands >/run/capi-test-pre") ||
				!strings.Contains(node.scripts[1], "echo capi-test postKubeadmCommands >/run/capi-test-post") ||
				strings.Contains(node.scripts[0], "kubeadm ") || strings.Contains(node.scripts[1], "kubeadm ") {
				t.Errorf("scripts %q", node.scripts)
			}
			if !markerAtPost {
				t.Error("the success file was not there when the postKubeadmCommands ran")
			}
			if _, err := os.Stat(filepath.Join(root, capi.ConfigPath)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is still in /etc: %v", capi.ConfigPath, err)
			}
			if fi, err := os.Stat(filepath.Join(root, capi.MovedConfig)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v", capi.MovedConfig, err)
			}
			if fi, err := os.Stat(filepath.Join(root, capi.ScriptPath)); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: %v", capi.ScriptPath, err)
			}
			if _, err := os.Stat(filepath.Join(root, "etc/systemd/system", capi.Unit)); err != nil {
				t.Errorf("the unit was not written: %v", err)
			}
			if links, _ := filepath.Glob(filepath.Join(root, "etc/systemd/system/*.wants", capi.Unit)); len(links) > 0 {
				t.Errorf("the unit was enabled: %v", links)
			}
			if tc.role != "join" {
				for p, mode := range map[string]os.FileMode{"ca.crt": 0o640, "ca.key": 0o600, "sa.key": 0o600, "etcd/ca.key": 0o600} {
					if fi, err := os.Stat(filepath.Join(root, "etc/kubernetes/pki", p)); err != nil || fi.Mode().Perm() != mode {
						t.Errorf("pki/%s: %v", p, err)
					}
				}
			}
			tok := capiToken(t, cfg)
			for name, out := range map[string]string{"console": console.String(), "journal": journal.String()} {
				if strings.Contains(out, tok) || strings.Contains(out, tok[7:]) {
					t.Errorf("the bootstrap token is in the %s:\n%s", name, out)
				}
			}
			if !strings.Contains(console.String(), "phase prekubeadm") || !strings.Contains(console.String(), "phase postkubeadm") {
				t.Errorf("console:\n%s", console.String())
			}
			// A later boot: the success file again, nothing run.
			os.RemoveAll(filepath.Join(root, "run"))
			again := &fakeNode{root: root}
			b, _ := newAgent(root, again, nil)
			if err, _ := run(b); err != nil {
				t.Fatal(err)
			}
			if len(again.calls) != 0 {
				t.Errorf("a configured node ran %v", again.calls)
			}
			if _, err := os.Stat(filepath.Join(root, capi.SuccessFile)); err != nil {
				t.Errorf("no success file after the reboot: %v", err)
			}
		})
	}
}

// TestClusterAPICrashAtEveryStep cuts a Cluster API join at each call in
// turn, then boots again: every run ends configured, with one join
// unless the cut came inside it, the success file only once it
// succeeded and the images it runs on are in, and each of the commands run again only if the cut came
// inside them.
func TestClusterAPICrashAtEveryStep(t *testing.T) {
	cfg := capiConfig(t, "join.ign")
	for crashAt := 1; ; crashAt++ {
		root := newRoot(t, cfg)
		first := &fakeNode{root: root, crashAt: crashAt}
		a, _ := newAgent(root, first, io.Discard)
		err, crashed := run(a)
		if !crashed {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		// The success file comes once the join is done and the worker's
		// import, which ran beside it, is checked.
		joined := first.count("import node,workloads") > 0 && first.calls[len(first.calls)-1] != "import node,workloads"
		if _, err := os.Stat(filepath.Join(root, capi.SuccessFile)); (err == nil) != joined {
			t.Errorf("crash at %d (%v): success file %v", crashAt, first.calls, err == nil)
		}
		os.RemoveAll(filepath.Join(root, "run")) // a reboot
		second := &fakeNode{root: root}
		b, _ := newAgent(root, second, io.Discard)
		if err, _ := run(b); err != nil {
			t.Fatalf("crash at %d (%v): resuming: %v", crashAt, first.calls, err)
		}
		if st := status(t, root); !st.Succeeded {
			t.Errorf("crash at %d: %+v", crashAt, st)
		}
		last := first.calls[len(first.calls)-1]
		if joins := first.count("join") + second.count("join"); joins != 1 && !(joins == 2 && last == "join") {
			t.Errorf("crash at %d (%v then %v): %d joins", crashAt, first.calls, second.calls, joins)
		}
		if cmds := first.count("commands") + second.count("commands"); cmds != 2 && !(cmds == 3 && last == "commands") {
			t.Errorf("crash at %d (%v then %v): %d command runs", crashAt, first.calls, second.calls, cmds)
		}
		if _, err := os.Stat(filepath.Join(root, capi.SuccessFile)); err != nil {
			t.Errorf("crash at %d: no success file", crashAt)
		}
		if _, err := os.Stat(filepath.Join(root, capi.ConfigPath)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("crash at %d: %s still in /etc", crashAt, capi.ConfigPath)
		}
	}
}

// TestClusterAPIRewrittenConfig: preKubeadmCommands that rewrite
// /etc/kubeadm.yml (as Cluster API's Flatcar templates do with envsubst)
// have the new file checked again before kubeadm reads it; one that the
// check refuses stops the node before kubeadm runs.
func TestClusterAPIRewrittenConfig(t *testing.T) {
	for _, tc := range []struct {
		name, version string
		ok            bool
	}{{"valid", "v1.37.2", true}, {"wrong version", "v1.36.0", false}} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t, capiConfig(t, "init.ign"))
			node := &fakeNode{root: root}
			node.onCommands = func(script string) {
				if !strings.Contains(script, "preKubeadmCommands") {
					return
				}
				p := filepath.Join(root, capi.ConfigPath)
				b, _ := os.ReadFile(p)
				os.WriteFile(p, []byte(strings.Replace(string(b), "kubernetesVersion: v1.37.2", "kubernetesVersion: "+tc.version+" # filled in", 1)), 0o600)
			}
			a, _ := newAgent(root, node, io.Discard)
			err, _ := run(a)
			// Checked in validate, then again after the commands.
			if got := node.count("version"); got != 2 {
				t.Errorf("the version was checked %d times (%v), want 2", got, node.calls)
			}
			if got := node.count("validate"); tc.ok && got != 2 {
				t.Errorf("kubeadm config validate ran %d times (%v), want 2", got, node.calls)
			}
			if tc.ok != (err == nil) {
				t.Fatalf("error %v", err)
			}
			if !tc.ok {
				if node.count("init") != 0 {
					t.Errorf("kubeadm ran on a refused config: %v", node.calls)
				}
				if st := status(t, root); st.ErrorClass != "version-mismatch" || st.Phase != "kubeadm" {
					t.Errorf("status %+v", st)
				}
			}
		})
	}
}

// TestClusterAPICommandsFail: a failing postKubeadmCommand fails the
// node with its class after the success file, as Cluster API's script
// would; the next boot runs the commands again and ends configured.
func TestClusterAPICommandsFail(t *testing.T) {
	root := newRoot(t, capiConfig(t, "join.ign"))
	node := &fakeNode{root: root}
	node.onCommands = func(script string) {
		if strings.Contains(script, "postKubeadmCommands") {
			node.commandsErr = errors.New("/bin/bash: exit status 3")
		}
	}
	a, _ := newAgent(root, node, io.Discard)
	if err, _ := run(a); err == nil {
		t.Fatal("the failing commands went unnoticed")
	}
	st := status(t, root)
	if st.ErrorClass != "capi-commands" || st.Phase != "postkubeadm" || st.Succeeded {
		t.Errorf("status %+v", st)
	}
	if _, err := os.Stat(filepath.Join(root, capi.SuccessFile)); err != nil {
		t.Error("no success file after kubeadm succeeded")
	}
	second := &fakeNode{root: root}
	b, _ := newAgent(root, second, io.Discard)
	if err, _ := run(b); err != nil {
		t.Fatal(err)
	}
	if second.count("join") != 0 || second.count("commands") != 1 || !status(t, root).Succeeded {
		t.Errorf("second run %v", second.calls)
	}
}

// TestClusterAPIFlatcarTemplate boots a worker on a fake EC2 (IMDSv2)
// from Cluster API's Flatcar-style user data: a drop-in gives the unit
// /run/metadata/flatcar, a preKubeadmCommand fills the node name in with
// envsubst. The agent writes that file from the IMDS, gives the commands
// its variables, validates the filled-in configuration before kubeadm
// reads it, and names the node by the metadata hostname.
func TestClusterAPIFlatcarTemplate(t *testing.T) {
	cfg := capiConfig(t, "join-flatcar.ign")
	const hostname = "ip-10-0-1-23.eu-west-1.compute.internal"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/latest/api/token" && r.Method == http.MethodPut:
			fmt.Fprint(w, "tok")
		case r.Header.Get("X-aws-ec2-metadata-token") != "tok":
			http.Error(w, "", http.StatusUnauthorized)
		case r.URL.Path == "/latest/user-data":
			fmt.Fprint(w, cfg)
		case r.URL.Path == "/latest/meta-data/local-hostname":
			fmt.Fprint(w, hostname)
		case r.URL.Path == "/latest/meta-data/instance-id":
			fmt.Fprint(w, "i-0123456789abcdef0")
		case r.URL.Path == "/latest/meta-data/local-ipv4":
			fmt.Fprint(w, "10.0.1.23")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	root := newRoot(t, "")
	os.MkdirAll(filepath.Join(root, "sys/class/dmi/id"), 0o755)
	os.WriteFile(filepath.Join(root, "sys/class/dmi/id/sys_vendor"), []byte("Amazon EC2\n"), 0o644)
	node := &fakeNode{root: root}
	var given string
	node.onCommands = func(script string) {
		if !strings.Contains(script, "envsubst") {
			given = readFile(t, filepath.Join(root, capi.MovedConfig))
			return
		}
		// envsubst < /etc/kubeadm.yml > /etc/kubeadm.yml.tmp, then mv.
		env := map[string]string{}
		for _, kv := range node.env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		p := filepath.Join(root, capi.ConfigPath)
		os.WriteFile(p, []byte(os.Expand(readFile(t, p), func(k string) string { return env[k] })), 0o600)
	}
	a, _ := newAgent(root, node, io.Discard)
	a.Sources.AWSBase = srv.URL
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	st := status(t, root)
	if !st.Succeeded || st.Source != "aws" || st.NodeName != hostname {
		t.Errorf("status %+v", st)
	}
	meta := readFile(t, filepath.Join(root, FlatcarMetadataPath))
	for _, l := range []string{"COREOS_EC2_HOSTNAME=" + hostname, "COREOS_EC2_INSTANCE_ID=i-0123456789abcdef0", "COREOS_EC2_IPV4_LOCAL=10.0.1.23",
		"NODEBAKE_PLATFORM=aws", "NODEBAKE_INSTANCE_ID=i-0123456789abcdef0"} {
		if !strings.Contains(meta, l+"\n") {
			t.Errorf("%s lacks %s:\n%s", FlatcarMetadataPath, l, meta)
		}
	}
	// Not validated as a template; validated once filled in, before the
	// join; the join read the filled-in file (it was moved after).
	if got := node.count("validate"); got != 1 {
		t.Errorf("kubeadm config validate ran %d times (%v), want 1", got, node.calls)
	}
	if i, j := slices.Index(node.calls, "validate"), slices.Index(node.calls, "join"); i < 0 || j < i {
		t.Errorf("calls %v: not validated before the join", node.calls)
	}
	if !strings.Contains(given, "name: "+hostname+"\n") {
		t.Errorf("the postKubeadmCommands found %s:\n%s", capi.MovedConfig, given)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNodeName: a join config that names no node gives the node the DHCP
// server's hostname, as bare-metal sites name machines, else node-MAC; a
// name the config sets wins over both.
func TestNodeName(t *testing.T) {
	for _, tc := range []struct {
		name, cfg, lease, want string
	}{
		{"DHCP", capiConfig(t, "join.ign"), "ADDRESS=10.10.0.7\nHOSTNAME=rack3-node7\n", "rack3-node7"},
		{"no lease", capiConfig(t, "join.ign"), "", "node-525400000001"},
		{"a lease with no hostname", capiConfig(t, "join.ign"), "ADDRESS=10.10.0.7\n", "node-525400000001"},
		{"a hostname that is no node name", capiConfig(t, "join.ign"), "HOSTNAME=Rack_3\n", "node-525400000001"},
		{"the config's", ignition(kubeadmJoin), "HOSTNAME=rack3-node7\n", "cp-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t, tc.cfg)
			if tc.lease != "" {
				os.MkdirAll(filepath.Join(root, leases), 0o755)
				os.WriteFile(filepath.Join(root, leases, "2"), []byte(tc.lease), 0o644)
			}
			a, _ := newAgent(root, &fakeNode{root: root}, io.Discard)
			if err, _ := run(a); err != nil {
				t.Fatal(err)
			}
			if st := status(t, root); st.NodeName != tc.want {
				t.Errorf("node %q, want %q", st.NodeName, tc.want)
			}
			if got := readFile(t, filepath.Join(root, "etc/hostname")); got != tc.want+"\n" {
				t.Errorf("/etc/hostname %q", got)
			}
		})
	}
}

// TestCommandsRedactTheirOutput: the output of Cluster API's commands goes
// to the journal with its secrets hidden, a certificate key on the line
// after its name too (kubeadm init phase upload-certs prints it so), and
// the rest kept.
func TestCommandsRedactTheirOutput(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "kubeadm.sh")
	const key = "a9b8c7d6e5f4a3b2c1d0a9b8c7d6e5f4a3b2c1d0a9b8c7d6e5f4a3b2c1d0a9b8"
	os.WriteFile(script, []byte("echo '[upload-certs] Using certificate key:'\necho "+key+"\necho joined with abcdef.0123456789abcdef\necho the-config-secret >&2\n"), 0o700)
	var log bytes.Buffer
	n := &LiveNode{Run: &command.Runner{Log: slog.New(slog.NewTextHandler(&log, nil))}, Kubeadm: &kubeadm.Kubeadm{}}
	n.Redact([]string{"the-config-secret"})
	if err := n.Commands(context.Background(), script, nil); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{key[:16], "abcdef.0123456789abcdef", "the-config-secret"} {
		if strings.Contains(log.String(), secret) {
			t.Errorf("%q in the journal:\n%s", secret, log.String())
		}
	}
	if !strings.Contains(log.String(), "Using certificate key:") || !strings.Contains(log.String(), "joined with") {
		t.Errorf("the output is not in the journal:\n%s", log.String())
	}
}
