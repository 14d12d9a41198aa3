package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// brokenKVM is the command line that runs a program on a host whose
// /dev/kvm opens read-write but runs nothing: /dev/null bind-mounted over
// it in a private mount namespace, where it fails every KVM ioctl. On a
// host with no /dev/kvm at all there is nothing to cover, and the host
// itself is the case of no device. want is what the fallback's reason
// must say.
func brokenKVM(t *testing.T) (wrap []string, want string) {
	t.Helper()
	if _, err := os.Stat("/dev/kvm"); errors.Is(err, os.ErrNotExist) {
		t.Log("this host has no /dev/kvm: it is the no-device case")
		return nil, `reason="kvm: open /dev/kvm: no such file or directory"`
	}
	return []string{"unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
			`mount --bind /dev/null /dev/kvm && exec "$0" "$@"`},
		`reason="kvm: /dev/kvm: KVM_GET_API_VERSION: inappropriate ioctl for device"`
}

// TestBootOnABrokenKVM: where KVM cannot run a guest, --accel kvm fails
// at once with the reason, and auto falls back to TCG, says why in one
// log line, and boots the image to its system.
func TestBootOnABrokenKVM(t *testing.T) {
	image := filepath.Join(testImage(t), "test.qcow2")
	wrap, reason := brokenKVM(t)
	command := func(ctx context.Context, args ...string) *exec.Cmd {
		argv := append(append(wrap, imagebuild(t), "boot", image, "--no-network"), args...)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "NODEBAKE_ACCEL=") // the flags say it
		return cmd
	}

	start := time.Now()
	out, err := command(context.Background(), "--accel", "kvm").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("--accel kvm on a broken KVM: %v, want exit 1:\n%s", err, out)
	}
	if !strings.Contains(string(out), "imagebuild: KVM cannot run a guest on this host: kvm: ") ||
		strings.Contains(string(out), "Assertion") || strings.Contains(string(out), "msg=booting") {
		t.Errorf("--accel kvm on a broken KVM said:\n%s", out)
	}
	t.Logf("--accel kvm refused in %s: %s", time.Since(start).Round(time.Millisecond), bytes.TrimSpace(out))

	serial := filepath.Join(t.TempDir(), "serial.log")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	boot := command(ctx, "--accel", "auto", "--serial-log", serial)
	var stderr bytes.Buffer
	boot.Stdout, boot.Stderr = &stderr, &stderr
	boot.Cancel = func() error { return boot.Process.Signal(syscall.SIGTERM) }
	boot.WaitDelay = time.Minute
	start = time.Now()
	if err := boot.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- boot.Wait() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !strings.Contains(readFile(serial), "Welcome to ") {
		select {
		case err := <-exited:
			t.Fatalf("boot exited before the system started: %v\n%s\nserial tail:\n%s", err, stderr.String(), tail(readFile(serial), 3000))
		case <-ctx.Done():
			<-exited
			t.Fatalf("the system did not start under TCG in 10 min:\n%s\nserial tail:\n%s", stderr.String(), tail(readFile(serial), 3000))
		case <-tick.C:
		}
	}
	booted := time.Since(start)
	if err := boot.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-exited
	log := stderr.String()
	if n := strings.Count(log, "msg=accelerator"); n != 1 {
		t.Errorf("the choice was logged %d times:\n%s", n, log)
	}
	if !strings.Contains(log, "msg=accelerator accel=tcg "+reason) || !strings.Contains(log, "accel=tcg memory_mib=") {
		t.Errorf("auto on a broken KVM did not fall back to TCG with %s:\n%s", reason, log)
	}
	t.Logf("auto fell back and the system started in %s:\n%s", booted.Round(time.Second), log)
}
