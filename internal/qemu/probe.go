package qemu

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/nodebake/nodebake/internal/command"
)

// KVMDevice is the KVM device the probe proves.
const KVMDevice = "/dev/kvm"

// ProbeKVM proves that KVM can run a guest on this host, twice over:
//   - through the KVM API, a vCPU runs a few instructions to a HLT
//     (catches a device that opens but fails its ioctls, or runs
//     nothing), in milliseconds;
//   - then QEMU itself, with the accelerator, machine and CPU model a
//     boot uses, must run its firmware to the firmware's banner. That
//     catches what the API alone passes: QEMU's own vCPU set-up failing
//     (an MSR the host's KVM refuses aborts QEMU with an assertion), or a
//     nested KVM that accepts a guest and then never runs it.
//
// It returns nil when both pass, else the first failure.
func ProbeKVM(run *command.Runner) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := kvmRuns(KVMDevice); err != nil {
			return err
		}
		return qemuRunsKVM(ctx, run)
	}
}

// seaBIOSBanner is what the firmware prints on QEMU's debug console as
// soon as it runs.
const seaBIOSBanner = "SeaBIOS (version"

// qemuRunsKVM starts QEMU on KVM with no disk and its default firmware,
// SeaBIOS, and waits for the firmware's banner on the debug console:
// proof that QEMU's vCPU ran guest code. QEMU is stopped then; when it
// exits first, its own message is the reason.
func qemuRunsKVM(ctx context.Context, run *command.Runner) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args := append([]string{
		"-nodefaults", "-no-user-config", "-display", "none",
		"-machine", machine, "-m", "32", "-smp", "1",
		"-debugcon", "stdio", "-global", "isa-debugcon.iobase=0x402",
	}, Choice{Accel: AccelKVM}.args()...)
	out := &bannerWriter{seen: make(chan struct{})}
	cmd, err := run.Start(ctx, command.Cmd{Name: "qemu-system-x86_64", Args: args}, out)
	if err != nil {
		return fmt.Errorf("kvm: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-out.seen:
		cancel()
		<-exited
		return nil
	case err := <-exited:
		return fmt.Errorf("kvm: QEMU could not run a vCPU (%v): %s", err, out.message())
	case <-ctx.Done():
		<-exited
		return fmt.Errorf("kvm: QEMU's vCPU ran no firmware: %w", ctx.Err())
	}
}

// bannerWriter keeps what QEMU prints and tells when the firmware's
// banner has appeared.
type bannerWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	seen chan struct{}
	done bool
}

func (w *bannerWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() < 64<<10 {
		w.buf.Write(p)
	}
	if !w.done && bytes.Contains(w.buf.Bytes(), []byte(seaBIOSBanner)) {
		w.done = true
		close(w.seen)
	}
	return len(p), nil
}

// message is QEMU's output on one line, for a reason.
func (w *bannerWriter) message() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.Join(strings.Fields(w.buf.String()), " ")
	if s == "" {
		return "no output"
	}
	return tailString(s, 400)
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
