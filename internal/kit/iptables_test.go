package kit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodebake/nodebake/internal/images"
)

// TestELFClosureRunsInAChroot collects a host program with everything it
// loads, writes the files into an empty folder and runs the program there:
// if a library were missing, the loader would refuse to start it.
func TestELFClosureRunsInAChroot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	c := &closure{root: "/", files: map[string]images.File{}}
	if err := c.addELF("/usr/bin/ls"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.files["/lib64/ld-linux-x86-64.so.2"]; !ok {
		t.Errorf("the dynamic loader is missing from %v", keys(c.files))
	}
	dir := t.TempDir()
	for p, f := range c.files {
		dst := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, f.Data, os.FileMode(f.Mode)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("chroot", dir, "/usr/bin/ls", "/").CombinedOutput()
	if err != nil {
		t.Fatalf("ls in the chroot: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "usr") {
		t.Errorf("ls / in the chroot printed %q", out)
	}
}

func TestResolveStaysInTheRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/lib", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "usr/lib/real"), []byte("x"), 0o644)
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	os.Symlink("/lib/real", filepath.Join(root, "etc/abs"))
	os.Symlink("../../../../../etc/passwd", filepath.Join(root, "etc/escape"))
	c := &closure{root: root}
	got, err := c.resolve("/etc/abs")
	if err != nil || got != filepath.Join(root, "usr/lib/real") {
		t.Errorf("resolve(/etc/abs) = %q, %v", got, err)
	}
	// A relative link climbing past the root stops at the root, as in a
	// chroot: /etc/passwd of the root, which does not exist.
	if got, err := c.resolve("/etc/escape"); err == nil {
		t.Errorf("resolve(/etc/escape) = %q, want an error", got)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestIptablesFilesRunInAChroot takes the iptables userspace from the
// build host's root (ci/deps.sh installs iptables), lays it out as an
// image layer would be, and runs iptables-save -V there through its link.
func TestIptablesFilesRunInAChroot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	files, err := IptablesFiles("/")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range files {
		dst := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if f.Link != "" {
			err = os.Symlink(f.Link, dst)
		} else {
			err = os.WriteFile(dst, f.Data, os.FileMode(f.Mode))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("chroot", dir, "/usr/sbin/iptables-save", "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save in the chroot: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "nf_tables") {
		t.Errorf("iptables-save -V printed %q, want the nf_tables backend", out)
	}
}
