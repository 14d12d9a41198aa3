package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"
)

// Notifier tells systemd how the agent is doing (sd_notify).
type Notifier interface {
	Status(text string)
	Ready()
}

// SystemdNotifier sends sd_notify messages; outside a Type=notify unit it
// does nothing.
type SystemdNotifier struct{}

func (SystemdNotifier) Status(text string) { daemon.SdNotify(false, "STATUS="+text) }
func (SystemdNotifier) Ready()             { daemon.SdNotify(false, daemon.SdNotifyReady) }

// JournalHandler writes slog records to the journal with their attributes
// as structured fields (NODEBAKE_PHASE=apply, ...), falling back to next
// when the journal is not there.
type JournalHandler struct {
	next  slog.Handler
	attrs []slog.Attr
}

// NewJournalHandler wraps next, used when there is no journal.
func NewJournalHandler(next slog.Handler) slog.Handler {
	if !journal.Enabled() {
		return next
	}
	return &JournalHandler{next: next}
}

func (h *JournalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo
}

func (h *JournalHandler) Handle(_ context.Context, r slog.Record) error {
	vars := map[string]string{"SYSLOG_IDENTIFIER": "firstboot"}
	msg := r.Message
	add := func(a slog.Attr) {
		key := "NODEBAKE_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(a.Key))
		vars[key] = a.Value.String()
		msg += fmt.Sprintf(" %s=%s", a.Key, a.Value.String())
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(a); return true })
	prio := journal.PriInfo
	switch {
	case r.Level >= slog.LevelError:
		prio = journal.PriErr
	case r.Level >= slog.LevelWarn:
		prio = journal.PriWarning
	}
	return journal.Send(msg, prio, vars)
}

func (h *JournalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &JournalHandler{next: h.next, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *JournalHandler) WithGroup(string) slog.Handler { return h }
