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

// TestConsoleStopsOnAKernelPanic feeds a serial log the way QEMU writes
// it, a piece at a time and the panic line split across two writes, and
// expects the watch to stop the boot with the kernel's line.
func TestConsoleStopsOnAKernelPanic(t *testing.T) {
	log := filepath.Join(t.TempDir(), "serial.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	done := make(chan struct{})
	watch := newConsole(AccelTCG, DefaultStuckAfter, time.Now())
	go func() { watch.follow(ctx, stop, log, 0); close(done) }()

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

// TestConsoleIgnoresAHealthyBoot reads a whole boot with no panic and
// must leave it running.
func TestConsoleIgnoresAHealthyBoot(t *testing.T) {
	log := filepath.Join(t.TempDir(), "serial.log")
	boot := "[    0.000000] Linux version 6.1.0\n[    2.1] systemd[1]: Reached target multi-user.target\n" +
		"[    2.2] kernel: panic=10 on the command line is not a panic\n"
	if err := os.WriteFile(log, []byte(boot), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancelCause(context.Background())
	watch, end := context.WithTimeout(ctx, 3*time.Second)
	defer end()
	newConsole(AccelTCG, DefaultStuckAfter, time.Now()).follow(watch, stop, log, 0)
	if cause := context.Cause(ctx); cause != nil {
		t.Errorf("a healthy boot was stopped: %v", cause)
	}
}

// TestConsoleStuck plays consoles against the clock: what a guest
// printed when, and whether the watch calls it stuck at the end.
func TestConsoleStuck(t *testing.T) {
	const after = 5 * time.Minute
	type out struct {
		at   time.Duration
		text string
	}
	firmware := "BdsDxe: loading Boot0001 \"UEFI Misc Device\"\r\n"
	kernel := "[    0.000000] Linux version 6.1.0-40-amd64\r\n"
	welcome := "\r\nWelcome to Debian GNU/Linux 12 (bookworm)!\r\n"
	cases := []struct {
		name       string
		accel      Accel
		stuckAfter time.Duration
		console    []out
		at         time.Duration
		want       string // in the error; "" for none
	}{
		{name: "a nested KVM that never runs the firmware", accel: AccelKVM, stuckAfter: after,
			at: after, want: "(accel=kvm): the firmware started no kernel in 5m0s; the console printed nothing"},
		{name: "not yet", accel: AccelKVM, stuckAfter: after, at: after - time.Second},
		{name: "firmware that network-boots forever", accel: AccelTCG, stuckAfter: after,
			console: []out{{10 * time.Second, firmware}, {2 * time.Minute, ">>Start PXE over IPv4.\r\n"}, {4*time.Minute + 50*time.Second, ">>Start PXE over IPv4.\r\n"}},
			at:      after, want: `(accel=tcg): the firmware started no kernel in 5m0s; the console last printed ">>Start PXE over IPv4."`},
		{name: "a kernel that stops printing before the system", accel: AccelKVM, stuckAfter: after,
			console: []out{{5 * time.Second, firmware}, {20 * time.Second, kernel}, {30 * time.Second, "[    3.1] virtio_blk virtio1: [vda]\r\n"}},
			at:      30*time.Second + after, want: `(accel=kvm): no output on the serial console for 5m0s before the system started; last line "[    3.1] virtio_blk virtio1: [vda]"`},
		{name: "a slow kernel that keeps printing", accel: AccelTCG, stuckAfter: after,
			console: []out{{5 * time.Second, firmware}, {4 * time.Minute, kernel}, {8 * time.Minute, "[  200.0] still going\r\n"}},
			at:      12 * time.Minute},
		{name: "a running system may be quiet", accel: AccelTCG, stuckAfter: after,
			console: []out{{5 * time.Second, firmware}, {20 * time.Second, kernel}, {30 * time.Second, welcome}},
			at:      3 * time.Hour},
		{name: "a login prompt is a running system", accel: AccelKVM, stuckAfter: after,
			console: []out{{20 * time.Second, kernel}, {40 * time.Second, "\r\nnode-1 login: "}},
			at:      time.Hour},
		{name: "never stuck when told so", accel: AccelKVM, stuckAfter: -1, at: 24 * time.Hour},
		{name: "a panic wins", accel: AccelTCG, stuckAfter: after,
			console: []out{{20 * time.Second, kernel}, {30 * time.Second, "[ 9.1] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n"}},
			at:      time.Minute, want: "the guest kernel panicked: Kernel panic - not syncing: VFS: Unable to mount root fs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Unix(1_800_000_000, 0)
			c := newConsole(tc.accel, tc.stuckAfter, start)
			for _, o := range tc.console {
				c.observe([]byte(o.text), start.Add(o.at))
				if err := c.verdict(start.Add(o.at)); err != nil && !strings.Contains(err.Error(), "panicked") {
					t.Fatalf("stopped at %s: %v", o.at, err)
				}
			}
			err := c.verdict(start.Add(tc.at))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("stopped: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("verdict = %v, want one with %q", err, tc.want)
			case tc.want != "" && strings.Contains(tc.want, "stuck") && !errors.Is(err, ErrGuestStuck):
				t.Errorf("%v is not ErrGuestStuck", err)
			}
		})
	}
}

// TestConsoleIgnoresEarlierBoots: a kept machine's log holds its earlier
// boots; a panic there (a power cut's aftermath, say) is not this boot's.
func TestConsoleIgnoresEarlierBoots(t *testing.T) {
	log := filepath.Join(t.TempDir(), "serial.log")
	earlier := "Kernel panic - not syncing: Fatal exception\r\nWelcome to Debian\r\n"
	if err := os.WriteFile(log, []byte(earlier), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	watch := newConsole(AccelTCG, DefaultStuckAfter, time.Now())
	go watch.follow(ctx, stop, log, logSize(log))
	time.Sleep(2500 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatalf("an earlier boot's panic stopped this one: %v", context.Cause(ctx))
	}
	f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("Kernel panic - not syncing: VFS: Unable to mount root fs\r\n")
	select {
	case <-ctx.Done():
		if !errors.Is(context.Cause(ctx), ErrGuestPanic) {
			t.Errorf("stopped with %v", context.Cause(ctx))
		}
	case <-time.After(5 * time.Second):
		t.Error("this boot's panic did not stop it")
	}
}
