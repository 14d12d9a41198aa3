package agent

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestImagesByRole: a worker has only the node's images imported, a
// control plane the control plane's too, before kubeadm runs; a control
// plane records when they were in.
func TestImagesByRole(t *testing.T) {
	cpJoin := kubeadmJoin + "controlPlane:\n  certificateKey: " + strings.Repeat("ab", 32) + "\n"
	for _, c := range []struct {
		name, kubeadmYAML, want, kubeadm string
	}{
		{"init", kubeadmInit("v1.37.2"), "import node,control-plane", "init"},
		{"worker", kubeadmJoin, "import node", "join"},
		{"control-plane join", cpJoin, "import node,control-plane", "join"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := newRoot(t, ignition(c.kubeadmYAML))
			node := &fakeNode{root: root}
			a, _ := newAgent(root, node, nil)
			if err, _ := run(a); err != nil {
				t.Fatal(err)
			}
			i, k := slices.Index(node.calls, c.want), slices.Index(node.calls, c.kubeadm)
			if i < 0 || k < 0 || i > k || node.count(c.want) != 1 {
				t.Errorf("calls %v: want one %q before %s", node.calls, c.want, c.kubeadm)
			}
			cp := slices.ContainsFunc(status(t, root).Milestones, func(m Milestone) bool { return m.Name == MilestoneImagesControlPlane })
			if want := strings.Contains(c.want, "control-plane"); cp != want {
				t.Errorf("milestone %s recorded: %v, want %v", MilestoneImagesControlPlane, cp, want)
			}
		})
	}
}

// TestImportFailureStopsBeforeKubeadm: an import that fails is the
// images-missing class, and kubeadm never runs on images that are not
// there.
func TestImportFailureStopsBeforeKubeadm(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	node := &fakeNode{root: root, importErr: errors.New("exit status 1")}
	a, _ := newAgent(root, node, nil)
	err, _ := run(a)
	st := status(t, root)
	if err == nil || st.ErrorClass != "images-missing" || st.Phase != "images" || node.count("init") != 0 {
		t.Errorf("error %v, status %+v, calls %v", err, st, node.calls)
	}
}

// TestBakedImages reads the references beside every baked archive.
func TestBakedImages(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "usr/share/nodebake/images")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "node.list"), []byte("registry.k8s.io/pause:3.10.2 sha256:aa\n\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "control-plane.list"), []byte("registry.k8s.io/etcd:3.7.0-0 sha256:bb\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "node.tar"), []byte("not a list"), 0o644)
	got, err := bakedImages(root)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"registry.k8s.io/etcd:3.7.0-0", "registry.k8s.io/pause:3.10.2"}) {
		t.Errorf("bakedImages: %v %v", got, err)
	}
}
