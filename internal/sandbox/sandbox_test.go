package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/command"
)

// probe builds testdata/probe, static, into a private folder.
func probe(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "probe")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}
	return bin
}

func sandbox(bin string) *Sandbox {
	return &Sandbox{Runner: &command.Runner{}, Files: []File{{Host: bin, Path: "/usr/bin/probe", Exec: true}}}
}

// TestConfined runs a program inside and asks it what it sees: none of
// the host's files, no network even to the host's loopback, no
// capabilities, nobody as its user inside and out, and a read-only root.
func TestConfined(t *testing.T) {
	bin := probe(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	secret := filepath.Join(t.TempDir(), "host-only")
	if err := os.WriteFile(secret, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := sandbox(bin).Run(context.Background(), command.Cmd{
		Name: "/usr/bin/probe", Args: []string{"report", l.Addr().String(), secret},
	})
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		UID             int
		CapEff          string
		Dial            string
		HostFileVisible bool
		RootWritable    bool
		TmpWritable     bool
		Interfaces      []string
		Root            []string
		Env             []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.UID != Nobody {
		t.Errorf("uid inside = %d, want %d", r.UID, Nobody)
	}
	if r.CapEff != "0000000000000000" {
		t.Errorf("effective capabilities = %q, want none", r.CapEff)
	}
	if r.Dial == "connected" {
		t.Errorf("the program reached the host's loopback at %s", l.Addr())
	}
	if !slices.Equal(r.Interfaces, []string{"lo"}) {
		t.Errorf("interfaces = %v, want only a private lo", r.Interfaces)
	}
	if r.HostFileVisible {
		t.Errorf("the program sees the host's %s", secret)
	}
	if r.RootWritable {
		t.Error("the program could write to its root")
	}
	if !r.TmpWritable {
		t.Error("the program could not write to its /tmp")
	}
	for _, name := range r.Root {
		if !slices.Contains([]string{"usr", "proc", "dev", "tmp"}, name) {
			t.Errorf("the program's root holds %q; want only usr, proc, dev and tmp", name)
		}
	}
	for _, kv := range r.Env {
		if !strings.HasPrefix(kv, "PATH=") && kv != "PWD=/" {
			t.Errorf("the program got the host's environment: %s", kv)
		}
	}
}

// TestNotHostRoot looks at the confined program from the host: its
// user there is nobody, not root.
func TestNotHostRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Log("not root: the program runs as this user, ", os.Geteuid())
	}
	bin := probe(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	marker := fmt.Sprintf("marker-%d", time.Now().UnixNano())
	done := make(chan error, 1)
	go func() {
		_, err := sandbox(bin).Run(ctx, command.Cmd{Name: "/usr/bin/probe", Args: []string{"sleep", marker}})
		done <- err
	}()
	want := strconv.Itoa(os.Geteuid())
	if want == "0" {
		want = strconv.Itoa(Nobody)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		uids, ok := hostUIDs(marker)
		if !ok {
			continue
		}
		for _, u := range uids {
			if u != want {
				t.Errorf("the host sees the program as uids %v, want all %s", uids, want)
				break
			}
		}
		cancel()
		<-done
		return
	}
	t.Fatal("the confined program never appeared in the host's /proc")
}

// hostUIDs finds the process whose command line holds marker and returns
// its real, effective, saved and filesystem uids as the host sees them.
func hostUIDs(marker string) ([]string, bool) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !strings.HasPrefix(string(cmdline), "/usr/bin/probe\x00sleep\x00"+marker) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(p), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				return strings.Fields(v), true
			}
		}
	}
	return nil, false
}

// TestBounded stops a program that takes too much memory, CPU or time.
func TestBounded(t *testing.T) {
	bin := probe(t)
	cases := []struct {
		mode string
		sb   func(*Sandbox)
		want error
	}{
		{"alloc", func(s *Sandbox) {}, nil},
		{"spin", func(s *Sandbox) { s.CPU = time.Second }, nil},
		{"sleep", func(s *Sandbox) { s.Timeout = 2 * time.Second }, ErrTimeout},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			sb := sandbox(bin)
			c.sb(sb)
			start := time.Now()
			_, err := sb.Run(context.Background(), command.Cmd{Name: "/usr/bin/probe", Args: []string{c.mode}})
			if err == nil {
				t.Fatal("the program ran to its end unbounded")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("stopped after %s", d)
			}
			t.Logf("%s: %v", c.mode, err)
		})
	}
}

// TestMissingFile is an error before anything runs.
func TestMissingFile(t *testing.T) {
	sb := sandbox(filepath.Join(t.TempDir(), "absent"))
	if _, err := sb.Run(context.Background(), command.Cmd{Name: "/usr/bin/probe"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not exist", err)
	}
}
