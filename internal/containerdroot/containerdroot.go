// Package containerdroot prepares containerd's root folder at build time:
// the kit's own containerd imports and unpacks OCI archives into a
// private root, and the parts of that root a node needs (the metadata,
// the content store and the overlayfs snapshots) are copied into the
// image's /var/lib/containerd, its timestamps set to the build's epoch
// so that the state partition stays reproducible. A node booted from the
// image finds those images ready, with nothing to unpack.
//
// containerd runs on the build host as the image's own kit built it, in
// its own mount, network, IPC and UTS namespaces, with every plugin that
// could reach past its root turned off (CRI, NRI, the runtimes' opt
// folder, the other snapshotters). It runs no code from the images: it
// writes their files.
package containerdroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nodebake/nodebake/internal/command"
)

// ErrNotReady is wrapped when containerd did not come up on the build host.
var ErrNotReady = errors.New("containerd did not start")

// Namespace is the containerd namespace the CRI plugin, and so the
// kubelet, sees.
const Namespace = "k8s.io"

// kept are the parts of containerd's root a node needs; the rest
// (introspection's random UUID, the runtimes' folders) containerd makes
// on its first start.
var kept = []string{
	"io.containerd.metadata.v1.bolt",
	"io.containerd.content.v1.content",
	"io.containerd.snapshotter.v1.overlayfs",
}

// databases are the bolt files among kept, whose timestamps Prepare sets.
var databases = []string{
	"io.containerd.metadata.v1.bolt/meta.db",
	"io.containerd.snapshotter.v1.overlayfs/metadata.db",
}

// Request is one root to prepare.
type Request struct {
	// Containerd and Ctr are the kit's programs on the build host.
	Containerd, Ctr string
	// Archives are OCI archives, imported in this order, each image
	// unpacked for the overlayfs snapshotter.
	Archives []string
	// Labels are set on every image, "key=value".
	Labels []string
	// Epoch is the build's time: every record's creation and update
	// time.
	Epoch time.Time
}

// Prepare imports r's archives with r's containerd into a fresh root and
// writes that root's kept parts into dst, which must not exist. It runs
// in a folder beside dst, so that the result is renamed into place: a
// failed Prepare leaves no dst.
func Prepare(ctx context.Context, run *command.Runner, dst string, r Request) (err error) {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s: %w", dst, os.ErrExist)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(filepath.Dir(dst), ".containerdroot-")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(work); err == nil {
			err = rerr
		}
	}()
	if err := importAll(ctx, run, work, r); err != nil {
		return err
	}
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o711); err != nil {
		return err
	}
	for _, k := range kept {
		if err := os.Rename(filepath.Join(work, "root", k), filepath.Join(out, k)); err != nil {
			return fmt.Errorf("containerd's root: %w", err)
		}
	}
	for _, db := range databases {
		if err := normalize(filepath.Join(out, db), r.Epoch); err != nil {
			return fmt.Errorf("%s: %w", db, err)
		}
	}
	// Nothing was being written when containerd stopped.
	if err := removeContents(filepath.Join(out, "io.containerd.content.v1.content", "ingest")); err != nil {
		return err
	}
	return os.Rename(out, dst)
}

// importAll runs containerd on a root under work, imports every archive
// and stops it. Its state folder, which holds its sockets, is a short
// temporary folder of its own: a socket's path has at most 107 bytes.
func importAll(ctx context.Context, run *command.Runner, work string, r Request) (err error) {
	state, err := os.MkdirTemp("", "containerd-")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(state); err == nil {
			err = rerr
		}
	}()
	bin := filepath.Join(work, "bin")
	if err := os.Mkdir(bin, 0o700); err != nil {
		return err
	}
	containerd, ctr := filepath.Join(bin, "containerd"), filepath.Join(bin, "ctr")
	for _, p := range [][2]string{{r.Containerd, containerd}, {r.Ctr, ctr}} {
		data, err := os.ReadFile(p[0])
		if err != nil {
			return err
		}
		if err := os.WriteFile(p[1], data, 0o700); err != nil {
			return err
		}
	}
	socket := filepath.Join(state, "containerd.sock")
	config := filepath.Join(work, "config.toml")
	if err := os.WriteFile(config, []byte(configFor(filepath.Join(work, "root"), state, socket)), 0o600); err != nil {
		return err
	}
	var log lockedBuffer
	daemon, err := run.Start(ctx, command.Cmd{
		Name: "unshare",
		Args: []string{"--mount", "--propagation", "private", "--net", "--ipc", "--uts", containerd, "--config", config},
	}, &log)
	if err != nil {
		return err
	}
	// exited is closed once containerd has exited, with its status in
	// waitErr.
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = daemon.Wait()
		close(exited)
	}()
	defer func() {
		// SIGTERM: containerd closes its databases and exits. Its exit
		// status is not the work's: each import reported its own, and
		// normalize opens both databases after.
		_ = daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = daemon.Process.Kill()
			<-exited
			if err == nil {
				err = errors.New("containerd did not stop within 30 s of SIGTERM")
			}
		}
	}()
	ctrCmd := func(args ...string) command.Cmd {
		return command.Cmd{Name: ctr, Args: append([]string{"--address", socket, "--namespace", Namespace}, args...)}
	}
	if err := waitReady(ctx, run, ctrCmd("version"), exited, &waitErr, &log); err != nil {
		return err
	}
	for _, a := range r.Archives {
		args := []string{"images", "import", "--local"}
		for _, l := range r.Labels {
			args = append(args, "--label", l)
		}
		if _, err := run.Run(ctx, ctrCmd(append(args, a)...)); err != nil {
			return fmt.Errorf("importing %s: %w", a, err)
		}
	}
	return nil
}

// waitReady waits until containerd answers on its socket, for at most a
// minute.
func waitReady(ctx context.Context, run *command.Runner, version command.Cmd, exited <-chan struct{}, waitErr *error, log *lockedBuffer) error {
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := run.Run(ctx, version)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%w: it exited (%v): %s", ErrNotReady, *waitErr, lastLines(log.String(), 10))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w within a minute: %v: %s", ErrNotReady, err, lastLines(log.String(), 10))
		}
	}
}

// configFor is the build host's containerd configuration: its root and
// state where given, and nothing that reaches past them.
func configFor(root, state, socket string) string {
	return fmt.Sprintf(`version = 3
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.nri.v1.nri",
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.snapshotter.v1.native",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = %q

[ttrpc]
  address = %q
`, root, state, socket, socket+".ttrpc")
}

// lockedBuffer is containerd's output, written by exec's copying
// goroutine while waitReady may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func removeContents(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
