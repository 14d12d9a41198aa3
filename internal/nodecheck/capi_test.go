package nodecheck

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/capi"
	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/kubeadm"
)

// TestCheckClusterAPI checks Cluster API's own user data (make
// capi-fixtures) as any config: its /etc/kubeadm.yml is the kubeadm
// configuration that kubeadm validates on the target, and its role is
// that file's.
func TestCheckClusterAPI(t *testing.T) {
	for name, role := range map[string]kubeadm.Role{"init.ign": kubeadm.RoleInit, "join.ign": kubeadm.RoleJoin, "cp-join.ign": kubeadm.RoleControlPlane} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "capi", "testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			tg := &target{baked: "v1.37.2"}
			res, err := Check(context.Background(), Input{Config: raw, Fetch: &ignitioncfg.Fetcher{Deadline: time.Second}, Target: tg, Scratch: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if res.Kubeadm.Role != role || res.KubeadmPath != capi.ConfigPath || res.CAPI == nil ||
				!strings.Contains(res.Summary, "Cluster API bootstrap") {
				t.Errorf("result %+v", res)
			}
			if !strings.Contains(tg.validate, "kind: ") || string(res.KubeadmYAML) != tg.validate {
				t.Errorf("kubeadm validated %q", tg.validate)
			}
		})
	}
}

// TestCheckClusterAPIMismatch: a script that runs kubeadm init on a join
// configuration, and a config with both kubeadm files, are refused.
func TestCheckClusterAPIMismatch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "capi", "testdata", "join.ign"))
	if err != nil {
		t.Fatal(err)
	}
	// kubeadm.sh's data URL, with its join turned into an init.
	initScript := strings.Replace(string(raw), "kubeadm%20join%20--config", "kubeadm%20init%20--config", 1)
	if initScript == string(raw) {
		t.Fatal("the fixture's script has no kubeadm join")
	}
	both := strings.Replace(string(raw), `"storage":{"files":[`,
		`"storage":{"files":[{"filesystem":"root","path":"/etc/kubernetes/kubeadm.yaml","mode":384,"contents":{"source":"data:,kind%3A%20JoinConfiguration"}},`, 1)
	if both == string(raw) {
		t.Fatal("no files in the fixture")
	}
	for _, tc := range []struct {
		name, cfg string
		is        error
		says      string
	}{
		{"init script, join config", initScript, kubeadm.ErrInvalidConfig, "runs kubeadm init, but /etc/kubeadm.yml is for join"},
		{"both files", both, nil, "give one kubeadm configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check(context.Background(), Input{Config: []byte(tc.cfg), Fetch: &ignitioncfg.Fetcher{Deadline: time.Second}})
			if err == nil || tc.is != nil && !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %v, want %q", err, tc.says)
			}
		})
	}
}
