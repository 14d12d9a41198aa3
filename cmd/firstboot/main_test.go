package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func execute(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		out.WriteString(err.Error())
	}
	return exitCode(err), out.String()
}

// testCA writes a CA certificate and key as kubeadm would make them.
func testCA(t *testing.T) (string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	crt, k := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return crt, k
}

// TestRenderIsValid renders each role, checks it with Debian's
// ignition-validate (ci/deps.sh installs it) and with firstboot validate.
func TestRenderIsValid(t *testing.T) {
	crt, key := testCA(t)
	extra := filepath.Join(t.TempDir(), "10-static.network")
	os.WriteFile(extra, []byte("[Match]\nName=eth0\n[Network]\nAddress=10.0.0.2/24\n"), 0o644)
	patches := t.TempDir()
	os.WriteFile(filepath.Join(patches, "kube-apiserver+strategic.yaml"), []byte("spec:\n  containers:\n  - name: kube-apiserver\n    readinessProbe:\n      periodSeconds: 10\n"), 0o644)
	const tok = "abcdef.0123456789abcdef"
	for role, args := range map[string][]string{
		"init": {"--ca-cert", crt, "--ca-key", key, "--token", tok, "--node-name", "cp-1", "--advertise-address", "10.0.0.1",
			"--certificate-key", strings.Repeat("ab", 32), "--ssh-key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample test", "--single-node",
			"--encryption-algorithm", "ECDSA-P256", "--patches", patches},
		"join":          {"--ca-cert", crt, "--token", tok, "--endpoint", "10.0.0.1:6443", "--file", "/etc/systemd/network/10-static.network=" + extra, "--patches", patches},
		"control-plane": {"--ca-cert", crt, "--token", tok, "--endpoint", "10.0.0.1:6443", "--certificate-key", strings.Repeat("cd", 32)},
	} {
		t.Run(role, func(t *testing.T) {
			code, out := execute(t, append([]string{"render", "--role", role}, args...)...)
			if code != 0 {
				t.Fatalf("render exited %d: %s", code, out)
			}
			if role != "control-plane" && !strings.Contains(out, `"path": "/etc/kubernetes/patches/kube-apiserver+strategic.yaml"`) {
				t.Errorf("the patch is not in the config:\n%s", out)
			}
			p := filepath.Join(t.TempDir(), role+".ign")
			os.WriteFile(p, []byte(out), 0o644)
			if res, err := exec.Command("ignition-validate", p).CombinedOutput(); err != nil {
				t.Errorf("ignition-validate: %v\n%s", err, res)
			}
			// Spec 3.4, read back by firstboot validate (Ignition's v3_4
			// parser); Debian 12's ignition-validate stops at 3.3.
			code, out34 := execute(t, append([]string{"render", "--role", role, "--spec", "3.4.0"}, args...)...)
			p34 := filepath.Join(t.TempDir(), role+"-3.4.ign")
			os.WriteFile(p34, []byte(out34), 0o644)
			if code != 0 || !strings.Contains(out34, `"version": "3.4.0"`) {
				t.Fatalf("render --spec 3.4.0 exited %d: %s", code, out34)
			}
			if code, msg := execute(t, "validate", p34); code != 0 {
				t.Errorf("validate of spec 3.4 exited %d: %s", code, msg)
			}
			if code, msg := execute(t, "validate", p); code != 0 || !strings.Contains(msg, "valid: role "+role) {
				t.Errorf("validate exited %d: %s", code, msg)
			}
		})
	}
}

func TestRenderRefuses(t *testing.T) {
	badPatches, noPatches := t.TempDir(), t.TempDir()
	evil := filepath.Join(t.TempDir(), "evil")
	os.WriteFile(evil, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(badPatches, "apiserver.yaml"), []byte("spec: {}\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string // in the output: the flag at fault, by its name
	}{
		{[]string{"render", "--role", "init", "--patches", badPatches}, "apiserver.yaml"},
		{[]string{"render", "--role", "init", "--patches", noPatches}, "--patches"},
		{[]string{"render", "--role", "init", "--encryption-algorithm", "ed25519"}, "--encryption-algorithm: must be one of"},
		{[]string{"render", "--role", "join", "--token", "abcdef.0123456789abcdef", "--endpoint", "10.0.0.1:6443"}, "--ca-cert-hash (or --ca-cert): needed to join"},
		{[]string{"render", "--role", "init", "--token", "not-a-token"}, "--token: must look like abcdef.0123456789abcdef"},
		{[]string{"render", "--role", "primary"}, `--role: must be init, join or control-plane, not "primary"`},
		{[]string{"render", "--role", "join"}, "--endpoint and --token: needed to join"},
		{[]string{"render", "--role", "init", "--leader-election-lease", "5s"}, "--leader-election-lease: must be at least 15s"},
		{[]string{"render", "--role", "control-plane", "--token", "abcdef.0123456789abcdef", "--endpoint", "x:6443", "--ca-cert-hash", "sha256:" + strings.Repeat("0", 64)}, "--certificate-key: needed for a control-plane join"},
		// What kubeadm, the node or validate would refuse later.
		{[]string{"render", "--role", "init", "--pod-cidr", "10.96.0.0/16"}, "--pod-cidr and --service-cidr: 10.96.0.0/16 and 10.96.0.0/12 overlap"},
		{[]string{"render", "--role", "init", "--pod-cidr", "10.0.0.0/8", "--service-cidr", "10.1.0.0/16"}, "overlap"},
		{[]string{"render", "--role", "init", "--pod-cidr", "banana"}, `--pod-cidr: "banana" must be a network`},
		{[]string{"render", "--role", "init", "--pod-cidr", "0.0.0.0/0"}, "is every address"},
		{[]string{"render", "--role", "init", "--service-cidr", "10.96.0.1/12"}, "has host bits set"},
		{[]string{"render", "--role", "init", "--node-name", "My_Node"}, `--node-name: "My_Node" must be a DNS name`},
		{[]string{"render", "--role", "init", "--node-name", "cp-1\nevil"}, "--node-name"},
		{[]string{"render", "--role", "init", "--advertise-address", "not-an-ip"}, `--advertise-address: "not-an-ip" must be an IP address`},
		{[]string{"render", "--role", "init", "--file", "/usr/bin/evil=" + evil}, "/usr/bin/evil"},
		{[]string{"render", "--role", "init", "--ssh-key", "/root/.ssh/id_ed25519.pub.typo"}, "neither an SSH public key"},
		{[]string{"render", "--role", "init", "--ssh-key", evil}, "neither an SSH public key"},
	} {
		if code, out := execute(t, c.args...); code != exitBadInput || !strings.Contains(out, c.want) {
			t.Errorf("%v exited %d, want %d and %q: %s", c.args, code, exitBadInput, c.want, out)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"spec2.ign":     `{"ignition":{"version":"2.3.0"}}`,
		"usr.ign":       `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/usr/bin/x","contents":{"source":"data:,x"}}]}}`,
		"nokubeadm.ign": `{"ignition":{"version":"3.4.0"}}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(doc), 0o644)
		if code, out := execute(t, "validate", p); code != exitBadInput {
			t.Errorf("%s: exit %d: %s", name, code, out)
		}
	}
	for _, p := range []string{filepath.Join(dir, "missing.ign"), dir, "/dev/zero"} {
		if code, out := execute(t, "validate", p); code != exitBadInput {
			t.Errorf("validate %s exits %d: %s", p, code, out)
		}
	}
	// An --image that is no image: a FIFO is refused unopened.
	fifo := filepath.Join(dir, "fifo.raw")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ok.ign")
	os.WriteFile(cfg, []byte(`{"ignition":{"version":"3.4.0"}}`), 0o644)
	for _, img := range []string{fifo, "/dev/zero", filepath.Join(dir, "missing.raw"), cfg} {
		if code, out := execute(t, "validate", cfg, "--image", img); code != exitBadInput || !strings.Contains(out, "not a nodebake disk image") {
			t.Errorf("validate --image %s exits %d: %s", img, code, out)
		}
	}
}

func TestStatusOfANewNode(t *testing.T) {
	code, out := execute(t, "status", "--root", t.TempDir())
	if code != 0 || !strings.Contains(out, "result:   not started") {
		t.Errorf("exit %d: %s", code, out)
	}
}
