package kit

import (
	"context"
	"strings"
	"testing"

	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/profile"
)

// TestImageTagsAreKubeadms refuses an image source for one of kubeadm's
// images under another tag.
func TestImageTagsAreKubeadms(t *testing.T) {
	b := testBuilder(t)
	k := &profile.Kit{KubernetesVersion: "v1.37.2", Images: []profile.ImageSource{
		{Ref: "registry.k8s.io/etcd:3.6.8-0", Source: profile.ImageSourceRegistry},
	}}
	_, err := b.Images(context.Background(), k, []string{"registry.k8s.io/etcd:3.7.0-0"}, "/")
	if err == nil || !strings.Contains(err.Error(), "want registry.k8s.io/etcd:3.7.0-0") {
		t.Fatalf("error %v", err)
	}
}

func TestSplitRef(t *testing.T) {
	for ref, want := range map[string][2]string{
		"registry.k8s.io/coredns/coredns:v1.14.6": {"coredns/coredns", "v1.14.6"},
		"ghcr.io/flannel-io/flannel:v0.28.10":     {"flannel-io/flannel", "v0.28.10"},
		"registry.k8s.io/etcd:3.7.0-0":            {"etcd", "3.7.0-0"},
	} {
		repo, tag, err := splitRef(ref)
		if err != nil || repo != want[0] || tag != want[1] {
			t.Errorf("splitRef(%s) = %s, %s, %v", ref, repo, tag, err)
		}
	}
	if _, _, err := splitRef("pause"); err == nil {
		t.Error("a bare name was accepted")
	}
}

// TestArchiveFor: the images of kubeadm's static pods go in the control
// plane's archive; pause, kube-proxy and the pod network's in the node's;
// CoreDNS, the extras, and an extra image that only shares a repository
// name, in the workloads'.
func TestArchiveFor(t *testing.T) {
	refs := []string{
		"registry.k8s.io/kube-apiserver:v1.37.2", "registry.k8s.io/kube-controller-manager:v1.37.2",
		"registry.k8s.io/kube-scheduler:v1.37.2", "registry.k8s.io/kube-proxy:v1.37.2",
		"registry.k8s.io/coredns/coredns:v1.14.6", "registry.k8s.io/pause:3.10.2",
		"registry.k8s.io/etcd:3.7.0-0", FlannelImage("v0.28.10"),
	}
	want := map[string]string{
		refs[0]: manifest.ArchiveControlPlane, refs[1]: manifest.ArchiveControlPlane,
		refs[2]: manifest.ArchiveControlPlane, refs[6]: manifest.ArchiveControlPlane,
		refs[3]: manifest.ArchiveNode, refs[5]: manifest.ArchiveNode, refs[7]: manifest.ArchiveNode,
		refs[4]:                    manifest.ArchiveWorkloads,
		"example.com/etcd:3.7.0-0": manifest.ArchiveWorkloads,
		"example.com/pause:3.10.2": manifest.ArchiveWorkloads,
		"registry.k8s.io/e2e-test-images/agnhost:2.66.1": manifest.ArchiveWorkloads,
	}
	for ref, w := range want {
		if got := archiveFor(ref, refs); got != w {
			t.Errorf("archiveFor(%s) = %s, want %s", ref, got, w)
		}
	}
}
