// Package sandbox runs a program that came out of an image, not from this
// host, confined by bubblewrap (Debian's bwrap). The program sees an empty
// read-only root that holds only the files it is given, a private /proc,
// /dev and a small /tmp. It has no network (a new, empty network
// namespace) and no capabilities, and it runs as nobody in a user
// namespace of its own: when nodebake runs as root, bubblewrap itself is
// started as nobody, so nobody inside is nobody on the host too. Its
// address space, CPU time, file size and wall time are bounded.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nodebake/nodebake/internal/command"
)

// Nobody is the user the program runs as, inside and, for a root caller,
// outside.
const Nobody = 65534

// The default bounds: kubeadm's config validate and images list use
// under 100 MB and well under a second.
const (
	DefaultMemory  = 1 << 30
	DefaultCPU     = 30 * time.Second
	DefaultTimeout = 60 * time.Second
	maxFileSize    = 64 << 20 // what the program may write, beyond its inputs
	tmpSize        = 64 << 20
)

// ErrTimeout is wrapped when the program outlives Timeout.
var ErrTimeout = errors.New("the confined program ran out of time")

// File is a host file the program sees, read-only, at Path. The sandbox
// copies it in through an open descriptor, so the host file needs no
// permission for nobody and its folder stays private.
type File struct {
	Host string
	Path string // absolute, inside the sandbox
	Exec bool   // mode 0555 rather than 0444
}

// Sandbox runs programs confined. The zero bounds take the defaults.
type Sandbox struct {
	Runner  *command.Runner
	Files   []File
	Memory  int64 // bytes of address space
	CPU     time.Duration
	Timeout time.Duration
}

// Run runs c confined: c.Name is the program's path inside the sandbox
// (one of Files), and c.Env, c.Dir and c.Files are not passed in.
func (s *Sandbox) Run(ctx context.Context, c command.Cmd) ([]byte, error) {
	files := make([]*os.File, 0, len(s.Files))
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var binds []string
	var largest int64
	for i, f := range s.Files {
		fd, err := os.OpenFile(f.Host, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		files = append(files, fd)
		st, err := fd.Stat()
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("sandbox: %s is not a regular file", f.Host)
		}
		largest = max(largest, st.Size())
		perms := "0444"
		if f.Exec {
			perms = "0555"
		}
		binds = append(binds, "--perms", perms, "--ro-bind-data", strconv.Itoa(3+i), f.Path)
	}
	timeout := or(s.Timeout, DefaultTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := s.Runner.Run(ctx, command.Cmd{
		Name:  "prlimit",
		Args:  append(s.limits(largest), append(append(bwrapArgs(), binds...), append([]string{"--remount-ro", "/", "--", c.Name}, c.Args...)...)...),
		Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr,
		Files: files,
		As:    caller(),
		Label: strings.TrimSpace(c.Name + " " + strings.Join(c.Args[:min(1, len(c.Args))], "") + " (confined)"),
	})
	switch {
	case err != nil && ctx.Err() == context.DeadlineExceeded:
		return out, fmt.Errorf("%s: %w (%s)", c.Name, ErrTimeout, timeout)
	}
	return out, err
}

// limits are prlimit's arguments; bubblewrap and the program inherit
// them. The file-size bound leaves room for bubblewrap's copies of the
// largest file.
func (s *Sandbox) limits(largest int64) []string {
	return []string{
		"--as=" + strconv.FormatInt(or(s.Memory, DefaultMemory), 10),
		"--cpu=" + strconv.Itoa(int(or(s.CPU, DefaultCPU).Seconds())),
		"--fsize=" + strconv.FormatInt(largest+maxFileSize, 10),
		"--nofile=1024",
		"--core=0",
		"--",
	}
}

// bwrapArgs make the empty, networkless, unprivileged world.
func bwrapArgs() []string {
	return []string{
		"bwrap",
		"--unshare-all", // user, ipc, pid, net, uts and cgroup
		"--uid", strconv.Itoa(Nobody), "--gid", strconv.Itoa(Nobody),
		"--cap-drop", "ALL",
		"--die-with-parent", "--new-session", "--clearenv",
		"--setenv", "PATH", "/usr/bin:/bin",
		"--hostname", "sandbox",
		"--proc", "/proc", "--dev", "/dev",
		"--size", strconv.Itoa(tmpSize), "--tmpfs", "/tmp",
		"--chdir", "/",
	}
}

// caller is whom bubblewrap starts as: nobody when nodebake is root, so
// that the sandbox's user namespace maps nobody to nobody; otherwise the
// caller, who is unprivileged already.
func caller() *command.User {
	if os.Geteuid() != 0 {
		return nil
	}
	return &command.User{UID: Nobody, GID: Nobody}
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
