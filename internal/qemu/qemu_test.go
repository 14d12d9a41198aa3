package qemu

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWatchPanicStopsOnAKernelPanic feeds a serial log the way QEMU
// writes it, a piece at a time and the panic line split across two
// writes, and expects the watch to stop the boot with the kernel's line.
func TestWatchPanicStopsOnAKernelPanic(t *testing.T) {
	log := filepath.Join(t.TempDir(), "serial.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	done := make(chan struct{})
	go func() { watchPanic(ctx, stop, log); close(done) }()

	write := func(s string) {
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // past one of the watch's reads
	}
	write("[    3.301319] Hardware name: QEMU Standard PC\r\n[    3.305228] Kernel pan")
	if ctx.Err() != nil {
		t.Fatalf("stopped before the panic line was whole: %v", context.Cause(ctx))
	}
	write("ic - not syncing: Fatal exception in interrupt\r\n")
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the watch did not stop the boot")
	}
	cause := context.Cause(ctx)
	if !errors.Is(cause, ErrGuestPanic) || !strings.Contains(cause.Error(), "Kernel panic - not syncing: Fatal exception in interrupt") ||
		!strings.Contains(cause.Error(), log) {
		t.Errorf("cause = %v", cause)
	}
}

// TestWatchPanicIgnoresAHealthyBoot reads a whole boot with no panic
// and must leave it running.
func TestWatchPanicIgnoresAHealthyBoot(t *testing.T) {
	log := filepath.Join(t.TempDir(), "serial.log")
	boot := "[    0.000000] Linux version 6.1.0\n[    2.1] systemd[1]: Reached target multi-user.target\n" +
		"[    2.2] kernel: panic=10 on the command line is not a panic\n"
	if err := os.WriteFile(log, []byte(boot), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancelCause(context.Background())
	watch, end := context.WithTimeout(ctx, 3*time.Second)
	defer end()
	watchPanic(watch, stop, log)
	if cause := context.Cause(ctx); cause != nil {
		t.Errorf("a healthy boot was stopped: %v", cause)
	}
}
