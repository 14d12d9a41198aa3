package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockedBuildRefusesDrift locks a copy of the test profile, checks the
// lock against the test image's manifest, changes one image digest in the
// lock, and expects `build --locked` to fail with exit code 3, naming that
// image, and to write nothing.
func TestLockedBuildRefusesDrift(t *testing.T) {
	out := testImage(t)
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "profiles", "test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	profilePath := filepath.Join(dir, "test.yaml")
	if err := os.WriteFile(profilePath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "lock", "-p", profilePath)
	if r.code != 0 {
		t.Fatalf("lock exited %d:\n%s", r.code, r.stderr)
	}
	lockPath := filepath.Join(dir, "test.lock")
	if strings.TrimSpace(r.stdout) != lockPath {
		t.Errorf("lock printed %q, want %s", r.stdout, lockPath)
	}
	lockData, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	lock := string(lockData)

	// The lock pins what the test image was built with.
	var m struct {
		Kit struct {
			Images []struct{ Ref, Digest string } `json:"images"`
		} `json:"kit"`
		Packages []struct{ Name, Version string } `json:"packages"`
	}
	manifest, err := os.ReadFile(filepath.Join(out, "test.manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Kit.Images) == 0 {
		t.Fatal("the manifest lists no images")
	}
	for _, img := range m.Kit.Images {
		if !strings.Contains(lock, "digest: "+img.Digest) {
			t.Errorf("the lock lacks %s at %s", img.Ref, img.Digest)
		}
	}
	for _, want := range []string{"path: k8s.io/kubernetes", "sum: h1:", "name: systemd", "name: kubelet"} {
		if !strings.Contains(lock, want) {
			t.Errorf("the lock lacks %q", want)
		}
	}

	// One digest changed: pause's.
	pause := ""
	for _, img := range m.Kit.Images {
		if strings.Contains(img.Ref, "/pause:") {
			pause = img.Digest
		}
	}
	forged := "sha256:" + strings.Repeat("0", 64)
	if err := os.WriteFile(lockPath, []byte(strings.Replace(lock, pause, forged, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	r = run(t, "build", "--locked", "-p", profilePath, "-o", outDir)
	if r.code != 3 {
		t.Fatalf("build --locked exited %d, want 3:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"image registry.k8s.io/pause:3.10.2", forged + " in the lock", pause + " resolved"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error does not say %q:\n%s", want, tail(r.stderr, 2000))
		}
	}
	if entries, err := os.ReadDir(outDir); err == nil && len(entries) > 0 {
		t.Errorf("a refused build wrote %v", entries)
	}
}

// TestCommittedLockMatchesTheKit checks that profiles/default.lock pins
// what the kit builds here: the test profile's kit is the default one.
// Debian package versions move with the archive, and so do the two images
// that carry Debian's iptables (kube-proxy and flannel); everything else
// comes from pinned Go modules and must not drift.
func TestCommittedLockMatchesTheKit(t *testing.T) {
	out := testImage(t)
	var m struct {
		Kit struct {
			Components []struct{ Name, Source, SHA256 string } `json:"components"`
			Images     []struct{ Ref, Digest string }          `json:"images"`
		} `json:"kit"`
	}
	data, err := os.ReadFile(filepath.Join(out, "test.manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	lockData, err := os.ReadFile(filepath.Join(repoRoot(t), "profiles", "default.lock"))
	if err != nil {
		t.Fatal(err)
	}
	lock := string(lockData)
	for _, c := range m.Kit.Components {
		if c.Name == "firstboot" {
			continue // the project's own agent is not locked
		}
		if !strings.Contains(lock, "- name: "+c.Name+"\n  sha256: "+c.SHA256+"\n") {
			t.Errorf("profiles/default.lock does not pin %s at sha256 %s: run imagebuild lock -p profiles/default.yaml", c.Name, c.SHA256)
		}
	}
	for _, img := range m.Kit.Images {
		if strings.Contains(img.Ref, "/kube-proxy:") || strings.Contains(img.Ref, "/flannel:") {
			continue
		}
		if !strings.Contains(lock, "- digest: "+img.Digest+"\n  ref: "+img.Ref+"\n") {
			t.Errorf("profiles/default.lock does not pin %s at %s: run imagebuild lock -p profiles/default.yaml", img.Ref, img.Digest)
		}
	}
}
