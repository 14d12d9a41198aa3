package nodecheck

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/manifest"
)

// writeImage writes a small nodebake disk whose root holds a manifest that
// bakes baked, and kubeadm as its /usr/bin/kubeadm.
func writeImage(t *testing.T, kubeadm []byte, baked ...string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	m := &manifest.Manifest{SchemaVersion: manifest.SchemaVersion, Kit: &manifest.Kit{KubernetesVersion: "v1.37.2"}}
	for _, ref := range baked {
		m.Kit.Images = append(m.Kit.Images, manifest.Image{Ref: ref})
	}
	for path, data := range map[string][]byte{manifest.Path: m.Marshal(), "/usr/bin/kubeadm": kubeadm} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "test.raw")
	l := diskimage.Plan("nodecheck-test", 64<<20, 64<<20, 16<<20)
	if err := diskimage.Write(context.Background(), &command.Runner{}, img, l, diskimage.Contents{
		RootDir: root, StateDir: state, Epoch: time.Unix(1700000000, 0),
	}); err != nil {
		t.Fatal(err)
	}
	return img
}

// hostile builds testdata/hostilekubeadm, static, to write marker and
// call addr, and to list images.
func hostile(t *testing.T, marker, addr, images string) []byte {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kubeadm")
	cmd := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X main.marker="+marker+" -X main.addr="+addr+" -X main.images="+images,
		"./testdata/hostilekubeadm")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the kubeadm: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// listener counts the connections made to it.
func listener(t *testing.T) (string, *atomic.Int32) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return l.Addr().String(), &n
}

// TestImageKubeadmIsConfined checks a config against an image whose
// kubeadm tries to write to the host and to call it. The check runs it,
// and it can do neither.
func TestImageKubeadmIsConfined(t *testing.T) {
	addr, calls := listener(t)
	marker := filepath.Join(t.TempDir(), "escaped")
	const ref = "registry.k8s.io/pause:3.10.2"
	img := writeImage(t, hostile(t, marker, addr, ref), ref)
	target, err := OpenImage(img)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	_, err = Check(context.Background(), Input{Config: ignition(t, initPinned), Fetch: &ignitioncfg.Fetcher{Deadline: time.Second}, Target: target, Scratch: target.Scratch()})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the image's kubeadm wrote %s on the host (stat: %v)", marker, err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the image's kubeadm called the host's %s %d times", addr, n)
	}
}

// TestImageKubeadmScript is an image whose kubeadm is a shell script: in
// the sandbox there is no shell to run it, so the check fails and the
// script never runs.
func TestImageKubeadmScript(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "escaped")
	img := writeImage(t, []byte("#!/bin/sh\necho escaped > "+marker+"\n"), "registry.k8s.io/pause:3.10.2")
	target, err := OpenImage(img)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	_, err = Check(context.Background(), Input{Config: ignition(t, initPinned), Fetch: &ignitioncfg.Fetcher{Deadline: time.Second}, Target: target, Scratch: target.Scratch()})
	if err == nil {
		t.Error("a kubeadm that is a shell script passed the check")
	}
	t.Log(err)
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the image's kubeadm script ran on the host (stat: %v)", err)
	}
}

// TestImageKubeadmListsNoImages is an error, not "bakes all 0 images".
func TestImageKubeadmListsNoImages(t *testing.T) {
	img := writeImage(t, hostile(t, "/nonexistent/x", "127.0.0.1:1", ""))
	target, err := OpenImage(img)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	_, err = Check(context.Background(), Input{Config: ignition(t, initPinned), Fetch: &ignitioncfg.Fetcher{Deadline: time.Second}, Target: target, Scratch: target.Scratch()})
	if !errors.Is(err, ErrNoImages) {
		t.Errorf("err = %v, want %v", err, ErrNoImages)
	}
}
