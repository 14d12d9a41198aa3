package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nodebake/nodebake/internal/command"
)

// KVMDevice is the KVM device the probe proves.
const KVMDevice = "/dev/kvm"

// ProbeKVM proves that KVM can run a guest on this host, twice over:
//   - through the KVM API, a vCPU runs a few instructions to a HLT
//     (catches a device that opens but fails its ioctls, or runs
//     nothing), in milliseconds;
//   - then QEMU itself, with the accelerator, machine, CPU model and
//     firmware a boot uses (OVMF), must run the firmware until it
//     writes to the serial console. That catches what the API alone
//     passes: QEMU's own vCPU set-up failing (an MSR the host's KVM
//     refuses aborts QEMU with an assertion), a nested KVM that accepts
//     a guest and then never runs it, and one that cannot emulate what
//     OVMF's first instructions need (its FPU set-up stops the vCPU
//     with "KVM internal error ... emulation failure", where SeaBIOS,
//     QEMU's default firmware, gets as far as its banner).
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

// kvmInternalError is what QEMU prints when KVM stops a vCPU it cannot
// run further; QEMU then keeps the guest paused, never exiting.
const kvmInternalError = "KVM internal error"

// qemuRunsKVM starts QEMU on KVM with the boot's firmware and no disk,
// and waits for the firmware's first output on the serial console (its
// console driver, after the phases that set the CPU up): proof that
// QEMU's vCPU ran the firmware a boot runs. QEMU is stopped then; when it
// exits first, or says KVM stopped its vCPU, its own message is the
// reason.
func qemuRunsKVM(ctx context.Context, run *command.Runner) error {
	return firmwareRuns(ctx, run, Choice{Accel: AccelKVM})
}

// firmwareRuns is qemuRunsKVM's test on accelerator c.
func firmwareRuns(ctx context.Context, run *command.Runner, c Choice) error {
	code, vars, err := firmware()
	if err != nil {
		return fmt.Errorf("kvm: %w", err)
	}
	dir, err := os.MkdirTemp("", "nodebake-kvm-probe-")
	if err != nil {
		return fmt.Errorf("kvm: %w", err)
	}
	defer os.RemoveAll(dir)
	varsCopy, serial := filepath.Join(dir, "vars.fd"), filepath.Join(dir, "serial.log")
	if err := copyFile(vars, varsCopy); err != nil {
		return fmt.Errorf("kvm: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args := append([]string{
		"-nodefaults", "-no-user-config", "-display", "none",
		"-machine", machine, "-m", "64", "-smp", "1",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code,
		"-drive", "if=pflash,format=raw,unit=1,file=" + varsCopy,
		"-serial", "file:" + serial,
	}, c.args()...)
	out := &outputWriter{}
	cmd, err := run.Start(ctx, command.Cmd{Name: "qemu-system-x86_64", Args: args}, out)
	if err != nil {
		return fmt.Errorf("kvm: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	stop := func() { cancel(); <-exited }
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("kvm: QEMU could not run a vCPU (%v): %s", err, out.message())
		case <-ctx.Done():
			<-exited
			return fmt.Errorf("kvm: QEMU's vCPU ran no firmware: %w", ctx.Err())
		case <-tick.C:
			if out.contains(kvmInternalError) {
				stop()
				return fmt.Errorf("kvm: KVM stopped QEMU's vCPU in the firmware: %s", out.lines(kvmInternalError, "failure"))
			}
			if fi, err := os.Stat(serial); err == nil && fi.Size() > 0 {
				stop()
				return nil
			}
		}
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// outputWriter keeps the start of what QEMU prints.
type outputWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *outputWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() < 64<<10 {
		w.buf.Write(p)
	}
	return len(p), nil
}

func (w *outputWriter) contains(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Contains(w.buf.Bytes(), []byte(s))
}

// lines are the lines of QEMU's output that hold any of words, joined
// with "; ".
func (w *outputWriter) lines(words ...string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, l := range strings.Split(w.buf.String(), "\n") {
		for _, word := range words {
			if strings.Contains(l, word) {
				out = append(out, strings.TrimSpace(l))
				break
			}
		}
	}
	return strings.Join(out, "; ")
}

// message is QEMU's output on one line, for a reason.
func (w *outputWriter) message() string {
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
