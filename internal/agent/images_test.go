package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodebake/nodebake/internal/command"
)

// TestImagesByRole: a control plane has the node's, the workloads' and
// its own images imported before kubeadm runs; a worker only queues the
// node's and the workloads', joins beside the imports (its kubelet waits
// for the node's), and then checks them. Each records when its imports
// were in.
func TestImagesByRole(t *testing.T) {
	cpJoin := kubeadmJoin + "controlPlane:\n  certificateKey: " + strings.Repeat("ab", 32) + "\n"
	for _, c := range []struct {
		name, kubeadmYAML, kubeadm string
		calls                      []string // in this order, each once
	}{
		{"init", kubeadmInit("v1.37.2"), "init", []string{"import node,workloads,control-plane", "init"}},
		{"worker", kubeadmJoin, "join", []string{"queue node,workloads", "join", "import node,workloads"}},
		{"control-plane join", cpJoin, "join", []string{"import node,workloads,control-plane", "join"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := newRoot(t, ignition(c.kubeadmYAML))
			node := &fakeNode{root: root}
			a, _ := newAgent(root, node, nil)
			if err, _ := run(a); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, call := range node.calls {
				if call == c.kubeadm || strings.HasPrefix(call, "import ") || strings.HasPrefix(call, "queue ") {
					got = append(got, call)
				}
			}
			if !slices.Equal(got, c.calls) {
				t.Errorf("calls %v: want %v in this order", node.calls, c.calls)
			}
			names := map[string]bool{}
			for _, m := range status(t, root).Milestones {
				names[m.Name] = true
			}
			for _, m := range []string{MilestoneImages, MilestoneImagesWorkloads} {
				if !names[m] {
					t.Errorf("milestone %s not recorded", m)
				}
			}
			if want := c.name != "worker"; names[MilestoneImagesControlPlane] != want {
				t.Errorf("milestone %s recorded: %v, want %v", MilestoneImagesControlPlane, names[MilestoneImagesControlPlane], want)
			}
		})
	}
}

// TestWorkerImportFailure: a worker whose import fails fails as
// images-missing, whatever the join said (its kubelet, which requires the
// import, never started), and a queue that fails stops it before the
// join.
func TestWorkerImportFailure(t *testing.T) {
	t.Run("import", func(t *testing.T) {
		root := newRoot(t, ignition(kubeadmJoin))
		node := &fakeNode{root: root, importErr: errors.New("exit status 1"),
			joinErrs: []error{errors.New("failed while waiting for the kubelet to start")}}
		a, _ := newAgent(root, node, nil)
		err, _ := run(a)
		st := status(t, root)
		if err == nil || st.ErrorClass != "images-missing" || st.Phase != "kubeadm" || node.count("join") != 1 || node.count("import node,workloads") != 1 {
			t.Errorf("error %v, status %+v, calls %v", err, st, node.calls)
		}
	})
	t.Run("queue", func(t *testing.T) {
		root := newRoot(t, ignition(kubeadmJoin))
		node := &fakeNode{root: root, queueErr: errors.New("exit status 5")}
		a, _ := newAgent(root, node, nil)
		err, _ := run(a)
		st := status(t, root)
		if err == nil || st.ErrorClass != "images-missing" || st.Phase != "images" || node.count("join") != 0 {
			t.Errorf("error %v, status %+v, calls %v", err, st, node.calls)
		}
	})
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

// TestLiveNodeImports: the live node asks systemd for the import units,
// waiting for them or only queueing them.
func TestLiveNodeImports(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	os.WriteFile(filepath.Join(dir, "systemctl"), []byte("#!/bin/sh\necho \"$*\" >>"+calls+"\n"), 0o755)
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	n := &LiveNode{Run: &command.Runner{}}
	ctx := context.Background()
	if err := n.ImportImages(ctx, []string{"node", "control-plane"}); err != nil {
		t.Fatal(err)
	}
	if err := n.QueueImport(ctx, []string{"node"}); err != nil {
		t.Fatal(err)
	}
	want := "start -- nodebake-images.service nodebake-images-control-plane.service\n" +
		"start --no-block -- nodebake-images.service\n"
	if got, _ := os.ReadFile(calls); string(got) != want {
		t.Errorf("systemctl was run as:\n%s\nwant:\n%s", got, want)
	}
}
