package kit

import (
	"strings"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/profile"
)

func TestEveryComponentHasARecipe(t *testing.T) {
	for _, name := range profile.ComponentNames {
		r, ok := recipes[name]
		if !ok || r.module == "" || len(r.binaries) == 0 || r.dir == "" || r.ldflags == nil {
			t.Errorf("component %s has no complete recipe", name)
		}
	}
}

func TestKubernetesModuleReplacesStagingWithReleases(t *testing.T) {
	mod := string(goMod(recipes[profile.ComponentKubeadm], "v1.37.2"))
	for _, want := range []string{
		"require k8s.io/kubernetes v1.37.2",
		"k8s.io/client-go => k8s.io/client-go v0.37.2",
		"k8s.io/apimachinery => k8s.io/apimachinery v0.37.2",
		"k8s.io/kubelet => k8s.io/kubelet v0.37.2",
	} {
		if !strings.Contains(mod, want) {
			t.Errorf("go.mod lacks %q:\n%s", want, mod)
		}
	}
	for _, unwanted := range []string{"sample-cli-plugin", "sample-controller", "./staging"} {
		if strings.Contains(mod, unwanted) {
			t.Errorf("go.mod names %q:\n%s", unwanted, mod)
		}
	}
	if other := string(goMod(recipes[profile.ComponentCrictl], "v1.36.0")); strings.Contains(other, "replace") {
		t.Errorf("crictl's module has replacements:\n%s", other)
	}
}

func TestKubernetesVersionIsStampedInBothPackages(t *testing.T) {
	flags := strings.Join(kubernetesLdflags("v1.36.3", time.Unix(1735689600, 0)), " ")
	for _, want := range []string{
		"k8s.io/component-base/version.gitVersion=v1.36.3",
		"k8s.io/client-go/pkg/version.gitVersion=v1.36.3",
		"k8s.io/component-base/version.gitMajor=1",
		"k8s.io/component-base/version.gitMinor=36",
		"k8s.io/client-go/pkg/version.buildDate=2025-01-01T00:00:00Z",
	} {
		if !strings.Contains(flags, want) {
			t.Errorf("ldflags lack %q: %s", want, flags)
		}
	}
}

func TestBuildKeyChangesWithEveryInput(t *testing.T) {
	b := &Builder{Epoch: time.Unix(1735689600, 0)}
	r := recipes[profile.ComponentKubelet]
	bin := r.binaries[0]
	base := b.key("kubelet", r, "v1.37.2", "go1.26.8", bin)
	if base != b.key("kubelet", r, "v1.37.2", "go1.26.8", bin) {
		t.Fatal("the key is not stable")
	}
	for what, k := range map[string]string{
		"version":   b.key("kubelet", r, "v1.37.1", "go1.26.8", bin),
		"toolchain": b.key("kubelet", r, "v1.37.2", "go1.26.9", bin),
		"binary":    b.key("kubelet", r, "v1.37.2", "go1.26.8", binary{"cmd/kubeadm", "kubeadm"}),
		"epoch":     (&Builder{Epoch: time.Unix(1, 0)}).key("kubelet", r, "v1.37.2", "go1.26.8", bin),
	} {
		if k == base {
			t.Errorf("changing the %s kept the key", what)
		}
	}
}

func TestPauseImage(t *testing.T) {
	got, err := PauseImage([]string{"registry.k8s.io/kube-apiserver:v1.37.2", "registry.k8s.io/pause:3.10.2"})
	if err != nil || got != "registry.k8s.io/pause:3.10.2" {
		t.Errorf("PauseImage = %q, %v", got, err)
	}
	if _, err := PauseImage([]string{"registry.k8s.io/etcd:3.7.0-0"}); err == nil {
		t.Error("no pause image, no error")
	}
}

func TestContainerdConfigCarriesSandboxAndSystemdCgroup(t *testing.T) {
	got, err := render("containerd-config.toml.tmpl", Config{SandboxImage: "registry.k8s.io/pause:3.10.2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"version = 3", `sandbox = "registry.k8s.io/pause:3.10.2"`, "SystemdCgroup = true", `config_path = "/etc/containerd/certs.d"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("config lacks %q", want)
		}
	}
}

// TestArtifactsInRecipeOrder: programs come back in the recipe's order
// whether cached or just built, so cold and warm builds agree.
func TestArtifactsInRecipeOrder(t *testing.T) {
	r := recipes["cni-plugins"]
	var arts []Artifact
	for _, name := range []string{"tuning", "bridge", "portmap", "loopback"} {
		arts = append(arts, Artifact{Program: manifest.Program{Name: name}})
	}
	got := inRecipeOrder(r, arts)
	var names []string
	for _, a := range got {
		names = append(names, a.Name)
	}
	if strings.Join(names, ",") != "bridge,loopback,portmap,tuning" {
		t.Errorf("order %v", names)
	}
}
