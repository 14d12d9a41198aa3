// Package kit builds the pinned Kubernetes node kit (kubelet, kubeadm,
// kubectl, containerd, runc, crictl, the CNI plugins) from Go module
// sources, reproducibly, and caches each build by its inputs.
package kit

import (
	"strings"
	"time"

	"github.com/nodebake/nodebake/internal/profile"
)

// binary is one program a recipe builds: a package path inside the module
// and its name in the image.
type binary struct {
	pkg  string // relative to the module; "" is the module root
	name string
}

// recipe is how one component is built from its Go module.
type recipe struct {
	module   string
	binaries []binary
	dir      string // install folder in the image
	cgo      bool   // with cgo, linked statically
	tags     []string
	// dropImports are, per binary, blank imports removed from its main
	// package before building: the package's files are copied into the
	// building module without them. Each must be found exactly once.
	dropImports map[string][]string
	// ldflags stamps the version into the binaries.
	ldflags func(version string, epoch time.Time) []string
	// replaces are added to the building module's go.mod.
	replaces func(version string) map[string]string
}

// kubernetesStaging are the k8s.io modules k8s.io/kubernetes keeps in its
// staging folder and replaces with relative paths. The module zip has no
// staging folder, so the building module replaces each with its published
// v0.X.Y release.
var kubernetesStaging = []string{
	"api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime",
	"client-go", "cloud-provider", "cluster-bootstrap", "code-generator",
	"component-base", "component-helpers", "controller-manager", "cri-api",
	"cri-client", "cri-streaming", "csi-translation-lib", "dynamic-resource-allocation",
	"endpointslice", "externaljwt", "kms", "kube-aggregator", "kube-controller-manager",
	"kube-proxy", "kube-scheduler", "kubectl", "kubelet", "metrics", "mount-utils",
	"pod-security-admission", "sample-apiserver", "streaming",
}

func kubernetesReplaces(version string) map[string]string {
	// v1.37.2 publishes its staging modules as v0.37.2.
	staging := "v0" + strings.TrimPrefix(version, "v1")
	r := make(map[string]string, len(kubernetesStaging))
	for _, m := range kubernetesStaging {
		r["k8s.io/"+m] = "k8s.io/" + m + " " + staging
	}
	return r
}

// kubernetesLdflags stamps the version where kubeadm, kubelet and kubectl
// read it; without it kubeadm reports v0.0.0-master and lists placeholder
// images. The tree state "archive" is the one upstream uses for builds
// from a source archive, which has no commit.
func kubernetesLdflags(version string, epoch time.Time) []string {
	major, minor := "1", ""
	if parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	var out []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		out = append(out,
			"-X", pkg+".gitVersion="+version,
			"-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitTreeState=archive",
			"-X", pkg+".buildDate="+epoch.UTC().Format(time.RFC3339),
		)
	}
	return out
}

func kubernetesRecipe(cmd string) recipe {
	return recipe{
		module:   "k8s.io/kubernetes",
		binaries: []binary{{"cmd/" + cmd, cmd}},
		dir:      "/usr/bin",
		ldflags:  kubernetesLdflags,
		replaces: kubernetesReplaces,
	}
}

// cniLdflags stamp the CNI plugins' version.
func cniLdflags(v string, _ time.Time) []string {
	return []string{"-X", "github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=" + v}
}

var recipes = map[string]recipe{
	profile.ComponentKubeadm: kubernetesRecipe("kubeadm"),
	profile.ComponentKubelet: kubernetesRecipe("kubelet"),
	profile.ComponentKubectl: kubernetesRecipe("kubectl"),
	profile.ComponentContainerd: {
		module:   "github.com/containerd/containerd/v2",
		binaries: []binary{{"cmd/containerd", "containerd"}, {"cmd/containerd-shim-runc-v2", "containerd-shim-runc-v2"}, {"cmd/ctr", "ctr"}},
		dir:      "/usr/bin",
		tags:     []string{"no_btrfs"},
		ldflags: func(v string, _ time.Time) []string {
			return []string{
				"-X", "github.com/containerd/containerd/v2/version.Version=" + v,
				"-X", "github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2",
			}
		},
	},
	// runc needs cgo for seccomp; it links Debian's static libseccomp.
	// Its default tags also name a Rust library Debian 12 lacks; only
	// seccomp is kept.
	profile.ComponentRunc: {
		module:   "github.com/opencontainers/runc",
		binaries: []binary{{"", "runc"}},
		dir:      "/usr/bin",
		cgo:      true,
		tags:     []string{"seccomp", "urfave_cli_no_docs", "netgo", "osusergo"},
		ldflags: func(v string, _ time.Time) []string {
			return []string{"-X", "main.version=" + strings.TrimPrefix(v, "v")}
		},
	},
	profile.ComponentCrictl: {
		module:   "sigs.k8s.io/cri-tools",
		binaries: []binary{{"cmd/crictl", "crictl"}},
		dir:      "/usr/bin",
		ldflags: func(v string, _ time.Time) []string {
			return []string{"-X", "sigs.k8s.io/cri-tools/pkg/version.Version=" + v}
		},
	},
	profile.ComponentCNIPlugins: {
		module: "github.com/containernetworking/plugins",
		binaries: []binary{
			{"plugins/main/bridge", "bridge"}, {"plugins/main/loopback", "loopback"},
			{"plugins/main/ptp", "ptp"}, {"plugins/main/host-device", "host-device"},
			{"plugins/ipam/host-local", "host-local"}, {"plugins/ipam/static", "static"},
			{"plugins/meta/portmap", "portmap"}, {"plugins/meta/bandwidth", "bandwidth"},
			{"plugins/meta/firewall", "firewall"}, {"plugins/meta/tuning", "tuning"},
		},
		dir:     "/opt/cni/bin",
		ldflags: cniLdflags,
	},
	// flannel's CNI plugin is baked into /opt/cni/bin, which is read-only:
	// upstream's DaemonSet copies it there with an init container instead.
	profile.ComponentFlannelCNI: {
		module:   "github.com/containernetworking/plugins",
		binaries: []binary{{"plugins/meta/flannel", "flannel"}},
		dir:      "/opt/cni/bin",
		ldflags:  cniLdflags,
	},
}
