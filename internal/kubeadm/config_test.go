package kubeadm

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const initDoc = `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: abcdef.0123456789abcdef
certificateKey: 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0
nodeRegistration:
  name: cp-1
---
# the cluster
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
networking:
  podSubnet: 10.244.0.0/16
`

func TestParseConfigRoles(t *testing.T) {
	c, err := ParseConfig([]byte(initDoc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Role != RoleInit || c.KubernetesVersion != "v1.37.2" || c.NodeName != "cp-1" || c.PodSubnet != "10.244.0.0/16" || len(c.CertificateKey) != 64 {
		t.Errorf("init: %+v", c)
	}
	if len(c.Secrets) != 2 {
		t.Errorf("secrets %d, want the token and the key", len(c.Secrets))
	}
	join := `apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: 10.0.0.1:6443
    token: abcdef.0123456789abcdef
    caCertHashes: [sha256:00]
`
	c, err = ParseConfig([]byte(join))
	if err != nil || c.Role != RoleJoin || len(c.Secrets) != 1 {
		t.Errorf("join: %+v, %v", c, err)
	}
	c, err = ParseConfig([]byte(join + "controlPlane:\n  certificateKey: " + strings.Repeat("a", 64) + "\n"))
	if err != nil || c.Role != RoleControlPlane || len(c.Secrets) != 2 {
		t.Errorf("control-plane join: %+v, %v", c, err)
	}
	for _, bad := range []string{
		"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n",
		"apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n",
		initDoc + "---\n" + join,
	} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}

func TestRedact(t *testing.T) {
	out := `kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef \
	--discovery-token-ca-cert-hash sha256:1234 --control-plane --certificate-key 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0
	my-secret-value
[upload-certs] Using certificate key:
a9b8c7d6e5f4a3b2c1d0a9b8c7d6e5f4a3b2c1d0a9b8c7d6e5f4a3b2c1d0a9b8`
	got := Redact(out, []string{"my-secret-value"})
	for _, s := range []string{"abcdef.0123456789abcdef", "0f1e2d3c4b5a6978", "my-secret-value", "a9b8c7d6e5f4"} {
		if strings.Contains(got, s) {
			t.Errorf("%q left in %q", s, got)
		}
	}
	if !strings.Contains(got, "sha256:1234") {
		t.Errorf("the CA hash, not a secret, was removed: %q", got)
	}
}

func TestClassify(t *testing.T) {
	for out, want := range map[string]error{
		`error execution phase preflight: couldn't validate the identity of the API Server: could not find a JWS signature in the cluster-info ConfigMap for token ID "abcdef"`: ErrTokenExpired,
		`error downloading the secret: Secret "kubeadm-certs" was not found in the "kube-system" Namespace. This Secret might have expired`:                                     ErrCertificateKeyExpired,
		`Get "https://10.0.0.1:6443/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s": dial tcp 10.0.0.1:6443: connect: connection refused`:                    ErrUnreachable,
		// Seen in the two-node test when a reset had replaced the supplied CA.
		`error execution phase preflight: couldn't validate the identity of the API Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "sha256:aac8640b96ab63410b94c3f5b1d49f5bc223c9dd8333839dba5d53c6bb15128b" are pinned`: ErrCAMismatch,
		`[ERROR NumCPU]: the number of available CPUs 1 is less than the required 2`: nil,
	} {
		f := &Failure{Output: out, class: classify(out)}
		if want == nil && Class(f) != "" || want != nil && !errors.Is(f, want) {
			t.Errorf("%q: class %q, want %v", out, Class(f), want)
		}
	}
}

// Reason picks kubeadm's own last word, not its advice to rerun with --v=5.
func TestReasonIsKubeadmsLastMessage(t *testing.T) {
	f := &Failure{Args: []string{"join"}, Output: "exit status 1: [preflight] Running pre-flight checks\n" +
		"error execution phase preflight: couldn't validate the identity of the API Server: Get \"https://10.0.0.1:6443/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s\": dial tcp 10.0.0.1:6443: connect: no route to host\n" +
		"To see the stack trace of this error execute with --v=5 or higher\n"}
	got := Reason(fmt.Errorf("joining: %w", f))
	if !strings.HasPrefix(got, "error execution phase preflight: couldn't validate") || !strings.HasSuffix(got, "no route to host") {
		t.Errorf("Reason = %q", got)
	}
}

// The controller manager and the scheduler get a lease a slow control
// plane can renew, and kubeadm's own v1beta4 form of extra arguments.
func TestRenderLeaderElectionLease(t *testing.T) {
	out, err := Render(RenderOptions{Role: RoleInit, KubernetesVersion: "v1.37.2", LeaderElectionLease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"controllerManager:\n  extraArgs:\n  - name: leader-elect-lease-duration\n    value: 1m0s\n  - name: leader-elect-renew-deadline\n    value: 40s\n  - name: leader-elect-retry-period\n    value: 5s\n",
		"scheduler:\n  extraArgs:\n  - name: leader-elect-lease-duration\n    value: 1m0s\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("render lacks\n%s\nin\n%s", want, out)
		}
	}
	out, err = Render(RenderOptions{Role: RoleInit, KubernetesVersion: "v1.37.2"})
	if err != nil || strings.Contains(string(out), "leader-elect") {
		t.Errorf("no lease asked, yet: %v\n%s", err, out)
	}
}

// Patches and the key type are kubeadm's own fields; render names the
// directory only when the node's config holds patches.
func TestRenderPatchesAndEncryptionAlgorithm(t *testing.T) {
	out, err := Render(RenderOptions{Role: RoleInit, KubernetesVersion: "v1.37.2", EncryptionAlgorithm: "ECDSA-P256", Patches: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"patches:\n  directory: /etc/kubernetes/patches\n", "encryptionAlgorithm: ECDSA-P256\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("render lacks %q in\n%s", want, out)
		}
	}
	join := RenderOptions{Role: RoleJoin, Endpoint: "10.0.0.1:6443", Token: "abcdef.0123456789abcdef",
		CACertHashes: []string{"sha256:" + strings.Repeat("0", 64)}}
	if out, err := Render(join); err != nil || strings.Contains(string(out), "patches") {
		t.Errorf("no patches asked, yet: %v\n%s", err, out)
	}
	join.Patches = true
	if out, err := Render(join); err != nil || !strings.Contains(string(out), "patches:\n  directory: /etc/kubernetes/patches\n") {
		t.Errorf("join with patches: %v\n%s", err, out)
	}
	join.EncryptionAlgorithm = "ECDSA-P256"
	if _, err := Render(join); err == nil {
		t.Error("a join took an encryption algorithm")
	}
	if _, err := Render(RenderOptions{Role: RoleInit, KubernetesVersion: "v1.37.2", EncryptionAlgorithm: "ed25519"}); err == nil {
		t.Error("an unknown algorithm was taken")
	}
}

func TestCheckPatchName(t *testing.T) {
	for name, ok := range map[string]bool{
		"kube-apiserver.yaml": true, "kube-apiserver0+strategic.yaml": true, "etcd+json.json": true,
		"kubeletconfiguration+merge.yaml": true, "corednsdeployment.yaml": true,
		"apiserver.yaml": false, "kube-apiserver.yml": false, "etcd+jsonpatch.yaml": false, "README": false,
	} {
		if err := CheckPatchName(name); (err == nil) != ok {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestRenderNamesItsOptions: Render's errors name RenderOptions' fields,
// every problem at once; flags are a command line's business.
func TestRenderNamesItsOptions(t *testing.T) {
	_, err := Render(RenderOptions{Role: RoleControlPlane, Token: "bad"})
	var opts [][]string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var oe *OptionError
		if !errors.As(e, &oe) {
			t.Fatalf("%v is not an OptionError", e)
		}
		opts = append(opts, oe.Options)
	}
	want := [][]string{{"Token"}, {"Endpoint", "Token"}, {"CACertHashes"}, {"CertificateKey"}}
	if !reflect.DeepEqual(opts, want) {
		t.Errorf("options at fault %v, want %v", opts, want)
	}
	if strings.Contains(err.Error(), "--") {
		t.Errorf("Render names flags: %v", err)
	}
}

// TestParseConfigRefusesWhatKubeadmReadsOtherwise: a key given twice, a
// separator with content after it, and a YAML document end are refused,
// not read one way here and another by kubeadm.
func TestParseConfigRefusesWhatKubeadmReadsOtherwise(t *testing.T) {
	init := "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.37.2\n"
	for name, tc := range map[string]struct{ doc, want string }{
		"a key twice":       {init + "kubernetesVersion: stable\n", `key "kubernetesVersion" already set`},
		"content after ---": {strings.Replace(init, "---\n", "--- kind: JoinConfiguration\n", 1), "is not a document separator"},
		"a document end":    {strings.Replace(init, "---\n", "...\n", 1), "a YAML document end"},
	} {
		if _, err := ParseConfig([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	// A separator with a comment, as kubeadm's reader allows.
	c, err := ParseConfig([]byte(strings.Replace(init, "---\n", "--- # the cluster\n", 1)))
	if err != nil || !slices.Equal(c.Kinds, []string{"InitConfiguration", "ClusterConfiguration"}) {
		t.Errorf("a commented separator: %v, %v", c, err)
	}
}

// TestParseConfigRefusesControlCharacters, which YAML forbids: a
// separator's comment is not a place to hide them either.
func TestParseConfigRefusesControlCharacters(t *testing.T) {
	for _, doc := range []string{"kind: InitConfiguration\n--- #\x03\n", "kind: Init\x00Configuration\n", "kind: \xff\n"} {
		if _, err := ParseConfig([]byte(doc)); !errors.Is(err, errNotPrintable) {
			t.Errorf("%q: err = %v", doc, err)
		}
	}
}
