package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// ErrGuestPanic is returned when the guest kernel panicked: a panicked
// kernel never powers off, so QEMU is stopped rather than left to wait
// for a deadline.
var ErrGuestPanic = errors.New("the guest kernel panicked")

// ErrGuestStuck is returned when the guest made no progress on its
// serial console in time: a broken accelerator (a nested KVM that takes
// a guest and never runs it) or firmware that found nothing to boot.
var ErrGuestStuck = errors.New("the guest is stuck")

// DefaultStuckAfter bounds the two waits a healthy boot never comes
// near, even under TCG on a loaded host, where the firmware prints within
// seconds and the kernel starts systemd within a minute.
const DefaultStuckAfter = 5 * time.Minute

// The console lines the watch knows.
const (
	panicLine = "Kernel panic - not syncing"
	// kernelLine is the kernel's first line: the firmware is done.
	kernelLine = "Linux version "
)

// systemLines show that the guest's own system runs: from there on its
// console may be quiet for as long as it likes (a join waiting for its
// control plane, an idle node).
var systemLines = []string{"Welcome to ", " login: "}

// escapes are the terminal's control sequences that firmware menus
// print, left out of the line a report quotes.
var escapes = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// console follows a guest's serial console. It stops the boot when the
// kernel panics, and when the guest makes no progress: the firmware's
// output counts as progress only until the kernel must have started, and
// the console may not be silent for stuckAfter until the system runs.
type console struct {
	accel      Accel
	stuckAfter time.Duration // <= 0: never stuck

	mu             sync.Mutex
	start, last    time.Time
	kernel         bool
	system         bool
	carry          []byte // an unfinished line, kept for the next write
	lastLine       string
	panicked       string
	panicNoticedAt time.Time
}

func newConsole(accel Accel, stuckAfter time.Duration, now time.Time) *console {
	return &console{accel: accel, stuckAfter: stuckAfter, start: now, last: now}
}

// Write takes console output as it comes.
func (c *console) Write(p []byte) (int, error) {
	c.observe(p, time.Now())
	return len(p), nil
}

func (c *console) observe(p []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) == 0 {
		return
	}
	c.last = now
	data := append(c.carry, p...)
	end := bytes.LastIndexByte(data, '\n') + 1
	c.carry = append([]byte(nil), data[end:]...)
	if len(c.carry) > 4096 { // a line that never ends: judge it as it is
		end, c.carry = len(data), nil
	}
	for _, l := range bytes.Split(data[:end], []byte("\n")) {
		line := string(l)
		if t := strings.TrimSpace(escapes.ReplaceAllString(line, "")); t != "" {
			c.lastLine = t
		}
		if i := strings.Index(line, panicLine); i >= 0 && c.panicked == "" {
			c.panicked = strings.TrimSpace(line[i:])
			c.panicNoticedAt = now
		}
	}
	// A prompt ends no line: the markers are looked for in the unfinished
	// line too.
	if bytes.Contains(data, []byte(kernelLine)) {
		c.kernel = true
	}
	for _, s := range systemLines {
		if bytes.Contains(data, []byte(s)) {
			c.system = true
		}
	}
}

// verdict is nil while the guest may go on, else why it must stop. A
// panic is reported a moment after its line, so that the kernel's whole
// report reaches the log.
func (c *console) verdict(now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.panicked != "" {
		if now.Sub(c.panicNoticedAt) < 2*time.Second {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrGuestPanic, c.panicked)
	}
	if c.stuckAfter <= 0 || c.system {
		return nil
	}
	if !c.kernel && now.Sub(c.start) >= c.stuckAfter {
		what := "printed nothing"
		if c.lastLine != "" {
			what = fmt.Sprintf("last printed %q", tailString(c.lastLine, 200))
		}
		return fmt.Errorf("%w (accel=%s): the firmware started no kernel in %s; the console %s",
			ErrGuestStuck, c.accel, c.stuckAfter, what)
	}
	if now.Sub(c.last) >= c.stuckAfter {
		return fmt.Errorf("%w (accel=%s): no output on the serial console for %s before the system started; last line %q",
			ErrGuestStuck, c.accel, c.stuckAfter, tailString(c.lastLine, 200))
	}
	return nil
}

// follow reads the serial log as it grows, when there is one (else the
// console is fed as QEMU's output), and stops the boot with the
// console's verdict.
func (c *console) follow(ctx context.Context, stop context.CancelCauseFunc, serialLog string, offset int64) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if serialLog != "" {
			offset += c.readFrom(serialLog, offset)
		}
		if err := c.verdict(time.Now()); err != nil {
			if serialLog != "" {
				err = fmt.Errorf("%w (serial log %s)", err, serialLog)
			}
			stop(err)
			return
		}
	}
}

// logSize is where this boot's console starts in a log that earlier boots
// of the same machine wrote to: only what follows is this boot's.
func logSize(serialLog string) int64 {
	fi, err := os.Stat(serialLog)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom feeds the console what the log holds past offset, and returns
// how much that was.
func (c *console) readFrom(serialLog string, offset int64) int64 {
	f, err := os.Open(serialLog)
	if err != nil {
		return 0 // QEMU has not made it yet
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<40))
	if err != nil || len(data) == 0 {
		return 0
	}
	c.observe(data, time.Now())
	return int64(len(data))
}
