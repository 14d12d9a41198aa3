// Package command runs outside programs. It is the only package in nodebake
// that starts a process, so every tool the builder depends on is called
// from one place, with its output captured for error messages.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
)

// ErrNotFound is wrapped when a required program is not installed.
var ErrNotFound = errors.New("program not found")

// Cmd is one program invocation.
type Cmd struct {
	Name  string
	Args  []string
	Env   []string // added to the current environment
	Dir   string
	Stdin io.Reader
	// Files are passed open to the program as descriptors 3, 4 and so on.
	Files []*os.File
	// As runs the program as this user, where nodebake runs as root.
	As *User
	// Label names the program in errors in place of Name and its first
	// argument, for a program that runs another.
	Label string
	// Stdout receives the standard output when set; otherwise it is
	// captured and returned by Run.
	Stdout io.Writer
	// Stderr also receives the standard error when set, for programs
	// that report failures there but still exit 0. Set to Stdout's
	// writer, it receives both streams through one pipe, in order.
	Stderr io.Writer
}

// User is a numeric user and group to run a program as.
type User struct{ UID, GID uint32 }

// Runner starts programs and waits for them.
type Runner struct {
	Log *slog.Logger
}

// Run runs c and returns its standard output. On failure the error holds
// the program's name, its exit status and the tail of its standard error.
func (r *Runner) Run(ctx context.Context, c Cmd) ([]byte, error) {
	cmd, err := r.command(ctx, c, "exec")
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	switch {
	case c.Stdout != nil && c.Stdout == c.Stderr:
		// One writer for both: exec then gives the program one pipe for
		// both, so the lines keep the order the program wrote them in,
		// and copies it in one goroutine. The error's tail is of both.
		w := io.MultiWriter(&stderr, c.Stdout)
		cmd.Stdout, cmd.Stderr = w, w
	default:
		cmd.Stdout = &stdout
		if c.Stdout != nil {
			cmd.Stdout = c.Stdout
		}
		cmd.Stderr = &stderr
		if c.Stderr != nil {
			cmd.Stderr = io.MultiWriter(&stderr, c.Stderr)
		}
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, ctx.Err())
		}
		return nil, fmt.Errorf("%s: %w: %s", c.label(), err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes(), nil
}

// Start starts c in the background with its output going to out, for
// programs such as QEMU that run while the caller works.
func (r *Runner) Start(ctx context.Context, c Cmd, out io.Writer) (*exec.Cmd, error) {
	cmd, err := r.command(ctx, c, "start")
	if err != nil {
		return nil, err
	}
	cmd.Stdout = out
	cmd.Stderr = out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	return cmd, nil
}

// command finds the program and sets up everything but its output.
func (r *Runner) command(ctx context.Context, c Cmd, verb string) (*exec.Cmd, error) {
	path, err := exec.LookPath(c.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (the Makefile's deps target installs it)", c.Name, ErrNotFound)
	}
	cmd := exec.CommandContext(ctx, path, c.Args...)
	cmd.Env = append(environ(), c.Env...)
	cmd.Dir = c.Dir
	cmd.Stdin = c.Stdin
	cmd.ExtraFiles = c.Files
	if c.As != nil {
		runAs(cmd, *c.As)
	}
	if r.Log != nil {
		r.Log.Debug(verb, "cmd", c.Name, "args", strings.Join(c.Args, " "))
	}
	return cmd, nil
}

// environ is this process's environment without NOTIFY_SOCKET: a program
// the first-boot agent runs (systemd-networkd-wait-online, say) must not
// speak to systemd for the agent's unit.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			env = append(env, kv)
		}
	}
	return env
}

// Available reports whether a program is on PATH.
func Available(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

func (c Cmd) label() string {
	switch {
	case c.Label != "":
		return c.Label
	case len(c.Args) == 0:
		return c.Name
	}
	return c.Name + " " + c.Args[0]
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
