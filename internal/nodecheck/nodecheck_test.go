package nodecheck

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/kubeadm"
)

// target is a Target that records what the check asked of it; the real
// ones (the live node, an image) are run by the agent's and the
// end-to-end tests.
type target struct {
	baked    string
	missing  []string
	refuse   error
	calls    []string
	validate string // the file kubeadm was given
}

func (t *target) BakedVersion(context.Context) (string, error) {
	t.calls = append(t.calls, "version")
	return t.baked, nil
}

func (t *target) ValidateKubeadm(_ context.Context, path string) error {
	t.calls = append(t.calls, "validate")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	t.validate = string(data)
	return t.refuse
}

func (t *target) MissingImages(_ context.Context, version string) ([]string, error) {
	t.calls = append(t.calls, "images "+version)
	return t.missing, nil
}

// ignition is a spec 3.4 config that writes kubeYAML at kubeadm's path,
// or writes nothing there when kubeYAML is "".
func ignition(t *testing.T, kubeYAML string) []byte {
	files := []map[string]any{}
	if kubeYAML != "" {
		files = append(files, map[string]any{
			"path": kubeadm.ConfigPath, "mode": 0o600,
			"contents": map[string]any{"source": "data:," + url.PathEscape(kubeYAML)},
		})
	}
	raw, err := json.Marshal(map[string]any{"ignition": map[string]any{"version": "3.4.0"}, "storage": map[string]any{"files": files}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

const (
	initPinned = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nbootstrapTokens:\n- token: abcdef.0123456789abcdef\n---\n" +
		"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.37.2\n"
	initUnpinned = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
	initOld      = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.36.0\n"
	worker       = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n    apiServerEndpoint: 10.0.0.1:6443\n"
	// A control-plane join has no ClusterConfiguration: it takes the
	// cluster's version, as a worker does.
	controlPlane = worker + "controlPlane:\n  certificateKey: " + "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd" + "\n"
	workerPinned = worker + "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.36.0\n"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name     string
		kubeYAML string
		target   *target
		wantErr  error
		wantRole kubeadm.Role
		calls    []string
	}{
		{"a pinned init", initPinned, &target{baked: "v1.37.2"}, nil, kubeadm.RoleInit, []string{"version", "validate", "images v1.37.2"}},
		{"an init that pins nothing", initUnpinned, &target{baked: "v1.37.2"}, kubeadm.ErrVersionMismatch, kubeadm.RoleInit, nil},
		{"an init for another version", initOld, &target{baked: "v1.37.2"}, kubeadm.ErrVersionMismatch, kubeadm.RoleInit, []string{"version"}},
		{"a worker", worker, &target{baked: "v1.37.2"}, nil, kubeadm.RoleJoin, []string{"version", "validate", "images v1.37.2"}},
		{"a worker pinned to another version", workerPinned, &target{baked: "v1.37.2"}, kubeadm.ErrVersionMismatch, kubeadm.RoleJoin, []string{"version"}},
		{"a control-plane join", controlPlane, &target{baked: "v1.37.2"}, nil, kubeadm.RoleControlPlane, []string{"version", "validate", "images v1.37.2"}},
		{"kubeadm refuses it", worker, &target{baked: "v1.37.2", refuse: kubeadm.ErrInvalidConfig}, kubeadm.ErrInvalidConfig, kubeadm.RoleJoin, []string{"version", "validate"}},
		{"an image missing", controlPlane, &target{baked: "v1.37.2", missing: []string{"registry.k8s.io/etcd:3.7.0-0"}}, kubeadm.ErrImagesMissing, kubeadm.RoleControlPlane, []string{"version", "validate", "images v1.37.2"}},
		{"no kubeadm configuration", "", &target{baked: "v1.37.2"}, ErrNoKubeadm, "", nil},
		{"a kubeadm configuration that does not parse", "kind: [", &target{baked: "v1.37.2"}, kubeadm.ErrInvalidConfig, "", nil},
		{"the config alone", initPinned, nil, nil, kubeadm.RoleInit, nil},
		{"the config alone, an init that pins nothing", initUnpinned, nil, kubeadm.ErrVersionMismatch, kubeadm.RoleInit, nil},
		{"a join with no discovery", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n", nil, kubeadm.ErrInvalidConfig, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scratch := filepath.Join(t.TempDir(), "scratch")
			in := Input{Config: ignition(t, tc.kubeYAML), Fetch: &ignitioncfg.Fetcher{Deadline: time.Second}, Scratch: scratch}
			if tc.target != nil {
				in.Target = tc.target
			}
			res, err := Check(context.Background(), in)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Check = %v, want %v", err, tc.wantErr)
			}
			if tc.wantRole != "" && (res.Kubeadm == nil || res.Kubeadm.Role != tc.wantRole) {
				t.Errorf("role = %+v, want %s", res.Kubeadm, tc.wantRole)
			}
			if tc.target == nil {
				return
			}
			if !slices.Equal(tc.target.calls, tc.calls) {
				t.Errorf("asked the target %v, want %v", tc.target.calls, tc.calls)
			}
			if slices.Contains(tc.calls, "validate") && tc.target.validate != tc.kubeYAML {
				t.Errorf("kubeadm validated %q, want the config's own file", tc.target.validate)
			}
			if entries, _ := os.ReadDir(scratch); len(entries) != 0 {
				t.Errorf("the check left %v in its scratch folder", entries)
			}
		})
	}
}

// TestCheckSaysWhy: a version mismatch names both versions and the fix.
func TestCheckSaysWhy(t *testing.T) {
	_, err := Check(context.Background(), Input{Config: ignition(t, initOld), Fetch: &ignitioncfg.Fetcher{Deadline: time.Second},
		Target: &target{baked: "v1.37.2"}, Scratch: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `the config says "v1.36.0", the image has v1.37.2; pin kubernetesVersion: v1.37.2`) {
		t.Errorf("Check = %v", err)
	}
}

// TestCheckReadsTheFileAsWritten: the kubeadm configuration checked is
// its contents and every append, as the node gets it; an appended
// ClusterConfiguration cannot slip an unpinned version past the check.
func TestCheckReadsTheFileAsWritten(t *testing.T) {
	unpin := "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: stable\n"
	raw, err := json.Marshal(map[string]any{"ignition": map[string]any{"version": "3.4.0"}, "storage": map[string]any{"files": []any{
		map[string]any{"path": kubeadm.ConfigPath, "mode": 0o600,
			"contents": map[string]any{"source": "data:," + url.PathEscape(initPinned)},
			"append":   []any{map[string]any{"source": "data:," + url.PathEscape(unpin)}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	target := &target{baked: "v1.37.2"}
	_, err = Check(context.Background(), Input{Config: raw, Fetch: &ignitioncfg.Fetcher{Deadline: time.Second}, Target: target, Scratch: t.TempDir()})
	if !errors.Is(err, kubeadm.ErrVersionMismatch) || !strings.Contains(err.Error(), `"stable"`) {
		t.Errorf("Check = %v, want the appended version refused", err)
	}
}

// TestCheckVerifiesDataURLs: a data URL whose contents do not match its
// hash fails here, offline, as it would on the node.
func TestCheckVerifiesDataURLs(t *testing.T) {
	raw, err := json.Marshal(map[string]any{"ignition": map[string]any{"version": "3.4.0"}, "storage": map[string]any{"files": []any{
		map[string]any{"path": kubeadm.ConfigPath, "contents": map[string]any{"source": "data:," + url.PathEscape(initPinned)}},
		map[string]any{"path": "/etc/motd", "contents": map[string]any{"source": "data:,hello",
			"verification": map[string]any{"hash": "sha256-" + strings.Repeat("0", 64)}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Check(context.Background(), Input{Config: raw, Fetch: &ignitioncfg.Fetcher{Deadline: time.Second}})
	var inv *ignitioncfg.InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != 1 || inv.Problems[0].Path != "$.storage.files.1.contents" ||
		!strings.Contains(inv.Problems[0].Message, "do not match their verification hash") {
		t.Errorf("Check = %v", err)
	}
}
