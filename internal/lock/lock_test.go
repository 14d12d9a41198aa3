package lock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample() *Lock {
	return &Lock{
		APIVersion: APIVersion, Kind: Kind, Profile: "default", Suite: "bookworm",
		Packages: []Package{{"systemd", "252.38-1~deb12u1"}, {"iptables", "1.8.9-2"}},
		Kit: Kit{
			Go:         "go1.26.0",
			Modules:    []Module{{"k8s.io/kubernetes", "v1.37.2", "h1:abc="}},
			Downloads:  []Download{{"runc", "url:https://example.invalid/runc", strings.Repeat("c", 64)}},
			Components: []Component{{"kubelet", "go:k8s.io/kubernetes@v1.37.2", strings.Repeat("a", 64)}},
			Images:     []Image{{"registry.k8s.io/pause:3.10.2", "sha256:" + strings.Repeat("b", 64), "build"}},
		},
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "default.lock")
	if err := sample().Write(p); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Compare(sample(), got); err != nil {
		t.Errorf("a lock read back differs: %v", err)
	}
	if got.DownloadSHA256("runc") != strings.Repeat("c", 64) || got.ImageDigest("registry.k8s.io/pause:3.10.2") == "" {
		t.Errorf("pins not found in %+v", got)
	}
	os.WriteFile(p, []byte("apiVersion: nodebake.dev/v1alpha1\nkind: Lock\nimagez: []\n"), 0o644)
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "imagez") {
		t.Errorf("unknown field: %v", err)
	}
}

func TestCompareNamesEveryDrift(t *testing.T) {
	got := sample()
	got.Images[0].Digest = "sha256:" + strings.Repeat("d", 64)
	got.Packages[0].Version = "252.39-1~deb12u1"
	got.Modules = append(got.Modules, Module{"github.com/coredns/coredns", "v1.14.6", "h1:x="})
	err := Compare(sample(), got)
	if !IsDrift(err) {
		t.Fatalf("Compare = %v, want a drift", err)
	}
	for _, want := range []string{
		"image registry.k8s.io/pause:3.10.2: sha256:bbbb",
		"package systemd: 252.38-1~deb12u1 in the lock, 252.39-1~deb12u1 resolved",
		"go module github.com/coredns/coredns@v1.14.6: h1:x= in the build, not in the lock",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("drift report lacks %q:\n%v", want, err)
		}
	}
	if n := len(err.(*DriftError).Drifts); n != 3 {
		t.Errorf("%d drifts reported, want 3", n)
	}
}

func TestPath(t *testing.T) {
	if got := Path("profiles/default.yaml"); got != "profiles/default.lock" {
		t.Errorf("Path = %s", got)
	}
}
