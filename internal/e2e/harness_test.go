package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/nodebake/nodebake/internal/workdir"
)

// repoRoot is the checkout, two levels above this package.
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	binMu  sync.Mutex
	binDir string
	bins   = map[string]string{}
)

// TestMain runs the tests with TMPDIR set to a work folder of their own,
// and removes it at the end: the commands and the shared test images they
// built (about 6 GB), every t.TempDir, and what imagebuild and QEMU made.
// A run that is killed (a timeout panics past this) leaves the folder
// behind, and the next run removes it (workdir.New).
func TestMain(m *testing.M) {
	wd, err := workdir.New("nodebake-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", wd.Path)
	code := m.Run()
	wd.Remove()
	os.Exit(code)
}

// program builds one of the repository's commands (cmd/NAME) once per
// test binary and returns its path.
func program(t testing.TB, name string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := bins[name]; ok {
		return p
	}
	if binDir == "" {
		dir, err := os.MkdirTemp("", "nodebake-e2e-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = dir
	}
	p := filepath.Join(binDir, name)
	cmd := exec.Command("go", "build", "-o", p, "./cmd/"+name)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	bins[name] = p
	return p
}

// imagebuild is the builder's command.
func imagebuild(t testing.TB) string { return program(t, "imagebuild") }

// firstboot is the first-boot agent's command, for render and validate.
func firstboot(t testing.TB) string { return program(t, "firstboot") }

// result is a finished command.
type result struct {
	stdout, stderr string
	code           int
}

// run runs imagebuild with args from the repository root.
func run(t testing.TB, args ...string) result {
	t.Helper()
	cmd := exec.Command(imagebuild(t), args...)
	cmd.Dir = repoRoot(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("running imagebuild %s: %v", strings.Join(args, " "), err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// tool runs a standard tool and fails the test when it fails.
func tool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needIntegration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the end-to-end tests need root (mmdebstrap --mode=root); run `make test` as root")
	}
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// built is a profile's image, built once per test binary by whichever
// test needs it first.
type built struct {
	profile string
	once    sync.Once
	dir     string
	err     string
}

var (
	testBuild = &built{profile: "profiles/test.yaml"}
	liveBuild = &built{profile: "profiles/test-live.yaml"}
)

// testImage builds profiles/test.yaml once per test binary and returns its
// output folder.
func testImage(t testing.TB) string { return testBuild.get(t) }

// liveImage builds profiles/test-live.yaml (the probe without the kit, as
// an ISO and a PXE folder) once per test binary and returns its output
// folder.
func liveImage(t testing.TB) string { return liveBuild.get(t) }

func (b *built) get(t testing.TB) string {
	t.Helper()
	needIntegration(t)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "nodebake-e2e-out-")
		if err != nil {
			b.err = err.Error()
			return
		}
		r := run(t, "build", "-p", b.profile, "-o", dir)
		if r.code != 0 {
			os.RemoveAll(dir)
			b.err = r.stderr
			return
		}
		t.Logf("build log:\n%s", r.stderr)
		b.dir = dir
	})
	if b.err != "" {
		t.Fatalf("building %s: %s", b.profile, b.err)
	}
	return b.dir
}

// readFile is a file's text, or "" when it cannot be read: for logs a
// failed test shows, which may not have been written.
func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// logLines are the lines of a serial log that a guest wrote after
// "PREFIX ", without the prefix.
func logLines(path, prefix string) []string {
	var out []string
	for _, l := range strings.Split(readFile(path), "\n") {
		if i := strings.Index(l, prefix+" "); i >= 0 {
			out = append(out, strings.TrimRight(l[i+len(prefix)+1:], "\r"))
		}
	}
	return out
}

// lines collects "PREFIX key=value ..." lines of a serial log.
func lines(path, prefix string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		i := strings.Index(l, prefix+" ")
		if i < 0 {
			continue
		}
		fields := strings.Fields(strings.TrimRight(l[i+len(prefix)+1:], "\r"))
		scope := ""
		if len(fields) > 0 && strings.HasPrefix(fields[0], "boot=") {
			scope = fields[0] + "."
			fields = fields[1:]
		}
		for _, kv := range fields {
			k, v, _ := strings.Cut(kv, "=")
			out[scope+k] = v
		}
	}
	return out
}
