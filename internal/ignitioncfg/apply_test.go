package ignitioncfg

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/command"
)

// testRoot is a folder with the passwd files useradd --prefix needs and a
// file that a config appends to.
func testRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range map[string]string{
		"etc/passwd":        "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":         "root:x:0:\nwheel:x:10:\n",
		"etc/shadow":        "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":       "root:*::\nwheel:*::\n",
		"etc/motd":          "welcome\n",
		"root/.placeholder": "",
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "etc/shadow"), 0o640)
	return root
}

func gz(t *testing.T, s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// server answers the first request for /flaky with 503, as a metadata
// service still starting would.
func server(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var flaky atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flaky":
			if flaky.Add(1) == 1 {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, "from the network\n")
		case "/header":
			fmt.Fprintf(w, "token=%s\n", r.Header.Get("X-Test"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &flaky
}

func config(t *testing.T, srvURL string) Config {
	t.Helper()
	sha := sha512.Sum512([]byte("zipped\n"))
	raw := fmt.Sprintf(`{"ignition":{"version":"3.4.0"},
	"passwd":{"users":[
		{"name":"core","groups":["wheel"],"sshAuthorizedKeys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample core@test"],
		 "passwordHash":"$6$salt$hash"},
		{"name":"root","sshAuthorizedKeys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRoot root@test"]}]},
	"storage":{
		"directories":[{"path":"/var/lib/app","mode":448}],
		"files":[
			{"path":"/etc/hostname","contents":{"source":"data:,node-1%%0A"},"mode":420},
			{"path":"/etc/app/zipped","contents":{"source":"data:;base64,%s","compression":"gzip","verification":{"hash":"sha512-%s"}}},
			{"path":"/etc/app/net","contents":{"source":"%s/flaky"}},
			{"path":"/etc/app/header","contents":{"source":"%s/header","httpHeaders":[{"name":"X-Test","value":"42"}]}},
			{"path":"/etc/motd","append":[{"source":"data:,appended%%0A"}]},
			{"path":"/etc/kubernetes/kubeadm.yaml","contents":{"source":"data:,token"},"mode":420},
			{"path":"/etc/systemd/network/10-eth.network","contents":{"source":"data:,%%5BMatch%%5D%%0AName=eth0%%0A"}},
			{"path":"/var/lib/app/owned","contents":{"source":"data:,x"},"user":{"name":"core"},"group":{"name":"wheel"}}],
		"links":[{"path":"/etc/app/link","target":"/etc/app/net"}]},
	"systemd":{"units":[
		{"name":"app.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
		 "dropins":[{"name":"10-env.conf","contents":"[Service]\nEnvironment=A=1\n"}]},
		{"name":"unwanted.service","mask":true}]}}`, gz(t, "zipped\n"), hex.EncodeToString(sha[:]), srvURL, srvURL)
	cfg, _, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if p := Check(cfg); len(p) > 0 {
		t.Fatal(p)
	}
	return cfg
}

func target(root string) *Target {
	return &Target{
		Root:  root,
		Fetch: &Fetcher{Deadline: 10 * time.Second, Backoff: 10 * time.Millisecond},
		Run:   &command.Runner{},
	}
}

func read(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mode(t *testing.T, root, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestApply(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("useradd and chown need root")
	}
	srv, flaky := server(t)
	root := testRoot(t)
	res, err := Apply(context.Background(), config(t, srv.URL), target(root))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"etc/hostname":      "node-1\n",
		"etc/app/zipped":    "zipped\n",
		"etc/app/net":       "from the network\n",
		"etc/app/header":    "token=42\n",
		"etc/motd":          "welcome\nappended\n",
		"var/lib/app/owned": "x",
		"etc/systemd/system/app.service.d/10-env.conf": "[Service]\nEnvironment=A=1\n",
	} {
		if got := read(t, root, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if flaky.Load() != 2 {
		t.Errorf("the flaky source was asked %d times, want 2 (one retry)", flaky.Load())
	}
	if m := mode(t, root, "etc/kubernetes/kubeadm.yaml"); m.Perm() != 0o600 {
		t.Errorf("kubeadm.yaml mode %v: it holds secrets, want 0600", m)
	}
	if m := mode(t, root, "var/lib/app"); m.Perm() != 0o700 || !m.IsDir() {
		t.Errorf("/var/lib/app mode %v", m)
	}
	if l, _ := os.Readlink(filepath.Join(root, "etc/app/link")); l != "/etc/app/net" {
		t.Errorf("link to %q", l)
	}
	if l, _ := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/app.service")); l == "" {
		t.Error("app.service is not enabled")
	}
	if l, _ := os.Readlink(filepath.Join(root, "etc/systemd/system/unwanted.service")); l != "/dev/null" {
		t.Errorf("unwanted.service masked to %q", l)
	}
	if !strings.Contains(read(t, root, "etc/passwd"), "core:x:1000:1000::/home/core:") ||
		!strings.Contains(read(t, root, "etc/group"), "wheel:x:10:core") {
		t.Errorf("core not created in wheel:\n%s%s", read(t, root, "etc/passwd"), read(t, root, "etc/group"))
	}
	if !strings.Contains(read(t, root, "etc/shadow"), "core:$6$salt$hash:") {
		t.Errorf("password hash not set:\n%s", read(t, root, "etc/shadow"))
	}
	if m := mode(t, root, "etc/shadow"); m.Perm() != 0o640 {
		t.Errorf("shadow mode changed to %v", m)
	}
	if k := read(t, root, "home/core/.ssh/authorized_keys"); !strings.Contains(k, "core@test") || mode(t, root, "home/core/.ssh/authorized_keys").Perm() != 0o600 {
		t.Errorf("core's keys: %q", k)
	}
	if k := read(t, root, "root/.ssh/authorized_keys"); !strings.Contains(k, "root@test") {
		t.Errorf("root's keys: %q", k)
	}
	if !res.NetworkChanged || !res.UnitsChanged || res.Hostname != "node-1" || strings.Join(res.Start, ",") != "app.service" {
		t.Errorf("result %+v", res)
	}
}

var errCrash = errors.New("simulated crash")

// TestApplyResumesAfterACrashAtEveryStep stops the apply after each
// recorded step in turn, as a power cut would, then applies again from the
// saved record: the result is the same as one clean apply, and nothing is
// appended twice.
func TestApplyResumesAfterACrashAtEveryStep(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("useradd and chown need root")
	}
	srv, _ := server(t)
	clean := testRoot(t)
	if _, err := Apply(context.Background(), config(t, srv.URL), target(clean)); err != nil {
		t.Fatal(err)
	}
	for crashAt := 1; ; crashAt++ {
		root := testRoot(t)
		saved := map[string]string{}
		tg := target(root)
		n := 0
		tg.Save = func(done map[string]string) error {
			if n++; n == crashAt {
				return errCrash
			}
			for k, v := range done {
				saved[k] = v
			}
			return nil
		}
		_, err := Apply(context.Background(), config(t, srv.URL), tg)
		if err == nil {
			if crashAt == 1 {
				t.Fatal("the config recorded nothing")
			}
			t.Logf("resumed cleanly after a crash at each of %d steps", crashAt-1)
			return
		}
		if !errors.Is(err, errCrash) {
			t.Fatalf("crash at %d: %v", crashAt, err)
		}
		again := target(root)
		again.Done = saved
		if _, err := Apply(context.Background(), config(t, srv.URL), again); err != nil {
			t.Fatalf("resuming after a crash at step %d: %v", crashAt, err)
		}
		for _, p := range []string{"etc/motd", "etc/hostname", "etc/app/net", "etc/kubernetes/kubeadm.yaml", "home/core/.ssh/authorized_keys"} {
			if got, want := read(t, root, p), read(t, clean, p); got != want {
				t.Errorf("crash at step %d: %s = %q, want %q", crashAt, p, got, want)
			}
		}
	}
}

func TestFetchRejectsAWrongHash(t *testing.T) {
	f := &Fetcher{}
	cfg, _, err := Parse([]byte(`{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/x",
		"contents":{"source":"data:,abc","verification":{"hash":"sha256-0000000000000000000000000000000000000000000000000000000000000000"}}}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fetch(context.Background(), cfg.Storage.Files[0].Contents); !errors.Is(err, ErrHash) {
		t.Errorf("error %v, want ErrHash", err)
	}
}
