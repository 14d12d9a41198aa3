// Package termlog shows a build's log on a terminal: every record as the
// text handler writes it, except "progress" records, which become one
// line that updates in place, its clock ticking each second, until the
// next record replaces or ends it. Under JSON, or when the output is not
// a terminal, the progress records are written like any other.
package termlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Progress is the message of a record shown as the updating line. Its
// attributes part (what is counted: "kit programs"), component, binary,
// done (finished before this one), total and elapsed (the part's seconds
// so far) make the line; any it lacks are left out.
const Progress = "progress"

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Handler writes records with next, and progress records as one updating
// line on w, which next writes to too.
type Handler struct {
	next slog.Handler
	s    *screen
}

// screen is the terminal and its updating line, shared by a Handler and
// those WithAttrs and WithGroup derive from it.
type screen struct {
	mu     sync.Mutex
	w      io.Writer
	line   *line
	stop   chan struct{} // closes to end the ticking of line
	ticker func() <-chan time.Time
	now    func() time.Time
	width  func() int // the terminal's columns; 0 for unknown
}

// line is the progress shown, and when it started.
type line struct {
	part, component, binary string
	done, total             int64
	elapsed                 float64 // the part's seconds at the record
	at                      time.Time
}

// New is a Handler over next, which writes to w, a terminal.
func New(w io.Writer, next slog.Handler) *Handler {
	return &Handler{next: next, s: &screen{
		w: w, now: time.Now,
		ticker: func() <-chan time.Time { return time.Tick(time.Second) },
		width: func() int {
			if f, ok := w.(*os.File); ok {
				if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
					return int(ws.Col)
				}
			}
			return 0
		},
	}}
}

func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), s: h.s}
}

func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), s: h.s}
}

// Handle shows a progress record as the updating line; any other record
// ends the line and is written below what came before.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Message == Progress {
		l := &line{at: r.Time}
		if l.at.IsZero() {
			l.at = s.now()
		}
		r.Attrs(func(a slog.Attr) bool {
			v := a.Value.Resolve()
			switch a.Key {
			case "part":
				l.part = v.String()
			case "component":
				l.component = v.String()
			case "binary":
				l.binary = v.String()
			case "done":
				l.done = v.Int64()
			case "total":
				l.total = v.Int64()
			case "elapsed":
				l.elapsed = v.Float64()
			}
			return true
		})
		if s.line == nil {
			s.stop = make(chan struct{})
			go s.tick(s.stop)
		}
		s.line = l
		s.draw()
		return nil
	}
	s.end()
	return h.next.Handle(ctx, r)
}

// Close ends the updating line.
func (h *Handler) Close() {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	h.s.end()
}

// end clears the line and stops its clock; the caller holds mu.
func (s *screen) end() {
	if s.line == nil {
		return
	}
	close(s.stop)
	s.line = nil
	io.WriteString(s.w, "\r\033[K")
}

func (s *screen) tick(stop chan struct{}) {
	t := s.ticker()
	for {
		select {
		case <-stop:
			return
		case <-t:
			s.mu.Lock()
			select {
			case <-stop:
			default:
				s.draw()
			}
			s.mu.Unlock()
		}
	}
}

// draw writes the line over itself, cut to the terminal's width (a line
// that wrapped would not be overwritten); the caller holds mu.
func (s *screen) draw() {
	text := s.line.text(s.now())
	if w := s.width(); w > 1 && len(text) >= w {
		text = text[:w-1]
	}
	io.WriteString(s.w, "\r\033[K"+text)
}

// text is what the line says at now: "kit programs 3/9:
// containerd-shim-runc-v2 (containerd) 1m12s, 6m3s in all", the
// component left out where it is the program's name.
func (l *line) text(now time.Time) string {
	var b strings.Builder
	b.WriteString(l.part)
	if l.total > 0 {
		fmt.Fprintf(&b, " %d/%d", l.done+1, l.total)
	}
	b.WriteString(":")
	if l.binary != "" {
		b.WriteString(" " + l.binary)
	}
	if l.component != "" && l.component != l.binary {
		b.WriteString(" (" + l.component + ")")
	}
	since := now.Sub(l.at)
	fmt.Fprintf(&b, " %s, %s in all", clock(since), clock(since+time.Duration(l.elapsed*float64(time.Second))))
	return b.String()
}

// clock is d in whole seconds: 1m12s.
func clock(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Truncate(time.Second).String()
}
