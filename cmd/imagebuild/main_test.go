package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nodebake/nodebake/internal/lock"
)

// execute runs the command line in-process and returns its exit code and
// what it printed.
func execute(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		out.WriteString(err.Error())
	}
	return exitCode(err), out.String()
}

func writeProfile(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const badProfile = `apiVersion: nodebake.dev/v1alpha1
kind: Profile
metadata: {name: bad}
spec:
  disk: {rootSize: 512MiB, stateSize: 1GiB}
  node: {modules: ["no/such"]}
`

func TestValidateExitCodes(t *testing.T) {
	code, out := execute(t, "validate", "-p", "../../profiles/default.yaml", "--source-dir", "../..")
	if code != exitOK || !strings.Contains(out, "valid") {
		t.Errorf("default profile: exit %d: %s", code, out)
	}
	code, out = execute(t, "validate", "-p", writeProfile(t, badProfile), "--source-dir", "../..")
	if code != exitBadInput {
		t.Errorf("bad profile: exit %d, want %d", code, exitBadInput)
	}
	for _, want := range []string{"spec.disk.rootSize: must be at least 1GiB", `spec.node.modules[0]: "no/such" is not a kernel module name`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A profile that is not there, or not a file, is bad input, as a
	// missing image is for inspect; a FIFO or a device is not waited on.
	for _, p := range []string{filepath.Join(t.TempDir(), "missing.yaml"), t.TempDir(), "/dev/zero"} {
		if code, out := execute(t, "validate", "-p", p); code != exitBadInput {
			t.Errorf("validate -p %s: exit %d, want %d: %s", p, code, exitBadInput, out)
		}
	}
	if code, _ := execute(t, "validate", "--no-such-flag"); code != exitBadInput {
		t.Errorf("bad flag: exit %d, want %d", code, exitBadInput)
	}
}

func TestBuildWritesNothingForABadProfile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, msg := execute(t, "build", "-p", writeProfile(t, badProfile), "--source-dir", "../..", "-o", out, "--cache-dir", t.TempDir())
	if code != exitBadInput || !strings.Contains(msg, "spec.disk.rootSize") {
		t.Errorf("exit %d: %s", code, msg)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("build made %s for a bad profile", out)
	}
}

func TestInspectRejectsWhatIsNotAnImage(t *testing.T) {
	notImage := filepath.Join(t.TempDir(), "x.raw")
	if err := os.WriteFile(notImage, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := execute(t, "inspect", notImage)
	if code != exitBadInput || !strings.Contains(out, "not a nodebake disk image") {
		t.Errorf("exit %d: %s", code, out)
	}
	// A FIFO is refused unopened (opening it would block beyond any
	// signal); so are a character device, a folder and a missing file.
	fifo := filepath.Join(t.TempDir(), "fifo.raw")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero", t.TempDir(), filepath.Join(t.TempDir(), "missing.raw")} {
		if code, out := execute(t, "inspect", p); code != exitBadInput || !strings.Contains(out, "not a nodebake disk image") {
			t.Errorf("inspect %s: exit %d: %s", p, code, out)
		}
	}
}

func TestBootRejectsNonLoopbackForwards(t *testing.T) {
	code, out := execute(t, "boot", "x.raw", "--forward", "0.0.0.0:2222:22")
	if code != exitBadInput || !strings.Contains(out, "loopback") {
		t.Errorf("exit %d: %s", code, out)
	}
}

// TestBootRejectsABadAccelerator: a misspelt --accel or NODEBAKE_ACCEL,
// or a negative --stuck-after, is bad input before anything is probed.
func TestBootRejectsABadAccelerator(t *testing.T) {
	image := filepath.Join(t.TempDir(), "x.raw")
	if err := os.WriteFile(image, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := execute(t, "boot", "missing.raw")
	if code != exitBadInput || !strings.Contains(out, "missing.raw: no such file") || strings.Contains(out, "accelerator") {
		t.Errorf("a missing image: exit %d: %s", code, out)
	}
	// Not an image, before anything is probed or booted.
	for _, bad := range []string{image, t.TempDir(), writeProfile(t, "not a disk")} {
		code, out = execute(t, "boot", bad)
		if code != exitBadInput || !strings.Contains(out, "not a nodebake disk image") || strings.Contains(out, "accelerator") {
			t.Errorf("boot %s: exit %d: %s", bad, code, out)
		}
	}
	fakeQcow2 := filepath.Join(t.TempDir(), "x.qcow2")
	os.WriteFile(fakeQcow2, []byte("QFI"), 0o644)
	if code, out = execute(t, "boot", fakeQcow2); code != exitBadInput || !strings.Contains(out, "no qcow2 header") {
		t.Errorf("boot of a short qcow2: exit %d: %s", code, out)
	}
	for _, flags := range [][]string{
		{"--memory", "-5"}, {"--memory", "64"}, {"--cpus", "0"}, {"--cpus", "1000"}, {"--firmware", "coreboot"},
		{"--mac", "zz:zz"}, {"--mac", "01:00:5e:00:00:01", "--link", "1:2"}, {"--mac", "52:54:00:12:34:56"},
	} {
		code, out = execute(t, append([]string{"boot", image}, flags...)...)
		if code != exitBadInput || !strings.Contains(out, flags[0]) {
			t.Errorf("boot %v: exit %d: %s", flags, code, out)
		}
	}
	code, out = execute(t, "boot", image, "--accel", "kmv")
	if code != exitBadInput || !strings.Contains(out, `--accel (or NODEBAKE_ACCEL): accelerator "kmv": want auto, kvm or tcg`) {
		t.Errorf("--accel kmv: exit %d: %s", code, out)
	}
	code, out = execute(t, "boot", image, "--stuck-after", "-1m")
	if code != exitBadInput || !strings.Contains(out, "--stuck-after -1m0s") {
		t.Errorf("--stuck-after -1m: exit %d: %s", code, out)
	}
	t.Setenv("NODEBAKE_ACCEL", "hvf")
	code, out = execute(t, "boot", image)
	if code != exitBadInput || !strings.Contains(out, `accelerator "hvf"`) {
		t.Errorf("NODEBAKE_ACCEL=hvf: exit %d: %s", code, out)
	}
	// The flag wins over the environment: the next flag is the one refused.
	code, out = execute(t, "boot", image, "--accel", "tcg", "--link", "x")
	if code != exitBadInput || !strings.Contains(out, `--link "x"`) || strings.Contains(out, "hvf") {
		t.Errorf("--accel tcg over NODEBAKE_ACCEL=hvf: exit %d: %s", code, out)
	}
}

// TestLockedBuildNeedsALock fails before any work when --locked finds no
// lock beside the profile, and a drift maps to its own exit code.
func TestLockedBuildNeedsALock(t *testing.T) {
	good := "apiVersion: nodebake.dev/v1alpha1\nkind: Profile\nmetadata: {name: good}\nspec: {}\n"
	out := filepath.Join(t.TempDir(), "out")
	code, msg := execute(t, "build", "--locked", "-p", writeProfile(t, good), "--source-dir", "../..", "-o", out, "--cache-dir", t.TempDir())
	if code != exitBadInput || !strings.Contains(msg, "p.lock does not exist") {
		t.Errorf("exit %d: %s", code, msg)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("build made %s", out)
	}
	if got := exitCode(fmt.Errorf("lock: %w", &lock.DriftError{Drifts: []string{"image x"}})); got != exitDrift {
		t.Errorf("a drift exits %d, want %d", got, exitDrift)
	}
}

// TestALockOfAnotherProfileIsRefused: a lock made for another profile or
// suite is bad input for validate and build, before any work; a profile
// named *.lock would be its own lock and is refused.
func TestALockOfAnotherProfileIsRefused(t *testing.T) {
	good := "apiVersion: nodebake.dev/v1alpha1\nkind: Profile\nmetadata: {name: good}\nspec: {}\n"
	for name, lockDoc := range map[string]string{
		"another profile": "apiVersion: nodebake.dev/v1alpha1\nkind: Lock\nprofile: other\nsuite: bookworm\npackages: []\n",
		"another suite":   "apiVersion: nodebake.dev/v1alpha1\nkind: Lock\nprofile: good\nsuite: trixie\npackages: []\n",
	} {
		p := writeProfile(t, good)
		if err := os.WriteFile(lock.Path(p), []byte(lockDoc), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out")
		for _, args := range [][]string{
			{"validate", "-p", p, "--source-dir", "../.."},
			{"build", "-p", p, "--source-dir", "../..", "-o", out, "--cache-dir", t.TempDir()},
		} {
			code, msg := execute(t, args...)
			if code != exitBadInput || !strings.Contains(msg, "p.lock is the lock of profile") {
				t.Errorf("%s: %s: exit %d: %s", name, args[0], code, msg)
			}
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: build made %s", name, out)
		}
	}
	self := filepath.Join(t.TempDir(), "p.lock")
	os.WriteFile(self, []byte(good), 0o644)
	if code, msg := execute(t, "lock", "-p", self, "--source-dir", "../.."); code != exitBadInput || !strings.Contains(msg, "would be its own lock file") {
		t.Errorf("lock -p p.lock: exit %d: %s", code, msg)
	}
	if data, _ := os.ReadFile(self); string(data) != good {
		t.Errorf("the profile was overwritten: %q", data)
	}
}

// TestBootRefusesLiveFlagsWhereTheyDoNotApply: --disk is for an ISO or a
// PXE folder and must be a file; --kernel-args is for a PXE folder and has
// no control characters. Each is bad input before anything is probed.
func TestBootRefusesLiveFlagsWhereTheyDoNotApply(t *testing.T) {
	dir := t.TempDir()
	iso := filepath.Join(dir, "x.iso")
	data := make([]byte, 40960)
	copy(data[32769:], "CD001")
	if err := os.WriteFile(iso, data, 0o644); err != nil {
		t.Fatal(err)
	}
	pxe := filepath.Join(dir, "x.pxe")
	os.Mkdir(pxe, 0o755)
	for _, name := range []string{"boot.ipxe", "vmlinuz", "initrd.img", "root.squashfs", "state.squashfs"} {
		os.WriteFile(filepath.Join(pxe, name), []byte(name), 0o644)
	}
	qcow2 := filepath.Join(dir, "x.qcow2")
	os.WriteFile(qcow2, []byte("QFI\xfb"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{qcow2, "--disk", iso}, "--disk: a disk image boots its own disk"},
		{[]string{iso, "--disk", dir}, "--disk " + dir + ": not a regular file"},
		{[]string{iso, "--kernel-args", "nodebake.state=/dev/vda"}, "--kernel-args: for a PXE folder only"},
		{[]string{pxe, "--kernel-args", "a\nb"}, "--kernel-args: control characters"},
		{[]string{filepath.Join(dir, "empty.pxe")}, "no such file"},
	} {
		code, out := execute(t, append([]string{"boot"}, tc.args...)...)
		if code != exitBadInput || !strings.Contains(out, tc.want) || strings.Contains(out, "accelerator") {
			t.Errorf("boot %q: exit %d: %s", tc.args, code, out)
		}
	}
	os.Remove(filepath.Join(pxe, "state.squashfs"))
	if code, out := execute(t, "boot", pxe); code != exitBadInput || !strings.Contains(out, "not a nodebake disk image: a PXE folder holds") {
		t.Errorf("boot of a PXE folder without its state seed: exit %d: %s", code, out)
	}
}
