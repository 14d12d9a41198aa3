package termlog

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a terminal the test reads while the line's clock writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testHandler is a Handler on a fake terminal whose clock the test
// drives: now moves only when the test says, and each tick is one the
// test sends.
func testHandler(width int) (*Handler, *syncBuffer, chan time.Time, *time.Time) {
	w := &syncBuffer{}
	h := New(w, slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	ticks := make(chan time.Time)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	h.s.ticker = func() <-chan time.Time { return ticks }
	h.s.now = func() time.Time { return now }
	h.s.width = func() int { return width }
	return h, w, ticks, &now
}

func record(msg string, at time.Time, args ...any) slog.Record {
	r := slog.NewRecord(at, slog.LevelInfo, msg, 0)
	r.Add(args...)
	return r
}

func TestProgressIsOneUpdatingLine(t *testing.T) {
	h, w, ticks, now := testHandler(0)
	log := slog.New(h)
	start := *now
	h.Handle(t.Context(), record("step", start, "name", "kit", "status", "start"))
	h.Handle(t.Context(), record(Progress, start, "part", "kit programs", "component", "kubernetes", "binary", "kubelet", "done", 2, "total", 9, "elapsed", 61.0))
	// The clock ticks: the line is drawn again with the time gone by.
	*now = start.Add(72 * time.Second)
	ticks <- *now
	for i := 0; strings.Count(w.String(), "\r") < 2; i++ {
		if i > 500 {
			t.Fatalf("a tick drew nothing: %q", w.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.Handle(t.Context(), record(Progress, *now, "part", "kit programs", "component", "crictl", "binary", "crictl", "done", 3, "total", 9, "elapsed", 133.0))
	log.Info("step", "name", "kit", "status", "done", "seconds", 140)

	want := "level=INFO msg=step name=kit status=start\n" +
		"\r\033[Kkit programs 3/9: kubelet (kubernetes) 0s, 1m1s in all" +
		"\r\033[Kkit programs 3/9: kubelet (kubernetes) 1m12s, 2m13s in all" +
		"\r\033[Kkit programs 4/9: crictl 0s, 2m13s in all" +
		"\r\033[K" + "level=INFO msg=step name=kit status=done seconds=140\n"
	if got := w.String(); got != want {
		t.Errorf("the terminal got\n%q\nwant\n%q", got, want)
	}
	// The line ended: its clock no longer draws.
	select {
	case ticks <- *now:
		t.Error("the line's clock still ticks after the line ended")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestProgressLineFitsTheTerminal(t *testing.T) {
	h, w, _, now := testHandler(20)
	h.Handle(t.Context(), record(Progress, *now, "part", "kit images", "binary", "kube-controller-manager", "done", 0, "total", 6))
	h.Close()
	want := "\r\033[Kkit images 1/6: kub" + "\r\033[K" // 19 of 20 columns
	if got := w.String(); got != want {
		t.Errorf("the terminal got %q, want %q", got, want)
	}
}

// TestNotATerminal: a pipe or a file is no terminal, and gets the
// progress records as lines (the CLI wraps only a terminal's handler).
func TestNotATerminal(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer pw.Close()
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []any{pw, f, &bytes.Buffer{}} {
		if IsTerminal(w.(interface{ Write([]byte) (int, error) })) {
			t.Errorf("%T is a terminal", w)
		}
	}
	if tty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0); err == nil {
		defer tty.Close()
		if !IsTerminal(tty) {
			t.Error("a pseudo-terminal's master is no terminal")
		}
	} else if !strings.Contains(err.Error(), "no such") {
		t.Logf("no pseudo-terminal here: %v", err)
	}
}
