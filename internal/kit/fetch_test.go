package kit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/profile"
)

// releaseTarball is shaped like containerd's release archive: bin/ and
// the three programs.
func releaseTarball(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755})
	for _, name := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "containerd-stress"} {
		data := []byte("program " + name)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/" + name, Mode: 0o755, Size: int64(len(data))})
		tw.Write(data)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func testBuilder(t *testing.T) *Builder {
	return &Builder{
		Run:   &command.Runner{},
		Cache: &cache.Cache{Dir: t.TempDir()},
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Epoch: time.Unix(1735689600, 0),
	}
}

// cacheFiles lists every file in the builder's cache.
func cacheFiles(t *testing.T, b *Builder) []string {
	var out []string
	filepath.Walk(b.Cache.Dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestURLSource serves a release archive on loopback and fetches the
// containerd component from it, pinned, mispinned and unpinned.
func TestURLSource(t *testing.T) {
	archive := releaseTarball(t)
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/containerd-2.4.2-linux-amd64.tar.gz" {
			http.NotFound(w, r)
			return
		}
		hits++
		w.Write(archive)
	}))
	defer srv.Close()
	url := srv.URL + "/containerd-2.4.2-linux-amd64.tar.gz"
	kitOf := func(pin string) *profile.Kit {
		return &profile.Kit{Components: map[string]profile.Component{
			profile.ComponentContainerd: {Source: profile.SourceURL, Version: "v2.4.2", URL: url, SHA256: pin},
		}}
	}
	ctx := context.Background()

	t.Run("wrong sha256", func(t *testing.T) {
		b := testBuilder(t)
		_, err := b.Build(ctx, kitOf(strings.Repeat("0", 64)))
		if err == nil || !strings.Contains(err.Error(), "component containerd") || !strings.Contains(err.Error(), "sha256 is "+sha(archive)) {
			t.Fatalf("error %v, want one naming the component and both sha256s", err)
		}
		if files := cacheFiles(t, b); len(files) != 0 {
			t.Errorf("a failed fetch left %v", files)
		}
	})

	t.Run("unpinned", func(t *testing.T) {
		b := testBuilder(t)
		if _, err := b.Build(ctx, kitOf("")); !errors.Is(err, ErrUnpinned) {
			t.Fatalf("error %v, want ErrUnpinned", err)
		}
		// The lock's pin is enough.
		b.Pins = func(c string) string {
			if c == profile.ComponentContainerd {
				return sha(archive)
			}
			return ""
		}
		if _, err := b.Build(ctx, kitOf("")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("pinned", func(t *testing.T) {
		b := testBuilder(t)
		arts, err := b.Build(ctx, kitOf(sha(archive)))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, a := range arts {
			got[a.Dest] = a.SHA256
			if a.Source != "url:"+url || a.Component != "containerd" {
				t.Errorf("artifact %+v", a)
			}
		}
		for _, name := range []string{"containerd", "containerd-shim-runc-v2", "ctr"} {
			if got["/usr/bin/"+name] != sha([]byte("program "+name)) {
				t.Errorf("%s: sha256 %q", name, got["/usr/bin/"+name])
			}
		}
		if len(arts) != 3 {
			t.Errorf("%d artifacts, want the recipe's 3", len(arts))
		}
		if d := b.Downloads(); len(d) != 1 || d[0].SHA256 != sha(archive) || d[0].Component != "containerd" {
			t.Errorf("downloads %+v", d)
		}
		// A second build is served from the cache.
		before := hits
		if _, err := b.Build(ctx, kitOf(sha(archive))); err != nil {
			t.Fatal(err)
		}
		if hits != before {
			t.Errorf("the pinned archive was downloaded again")
		}
	})
}

// TestFileSource reads a single program from a local mirror.
func TestFileSource(t *testing.T) {
	dir := t.TempDir()
	prog := []byte("crictl program")
	p := filepath.Join(dir, "crictl")
	os.WriteFile(p, prog, 0o755)
	b := testBuilder(t)
	k := &profile.Kit{Components: map[string]profile.Component{
		profile.ComponentCrictl: {Source: profile.SourceFile, Version: "v1.36.0", Path: p, SHA256: sha(prog)},
	}}
	arts, err := b.Build(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 1 || arts[0].Dest != "/usr/bin/crictl" || arts[0].SHA256 != sha(prog) {
		t.Errorf("artifacts %+v", arts)
	}
	// A multi-program component needs an archive.
	k.Components = map[string]profile.Component{
		profile.ComponentContainerd: {Source: profile.SourceFile, Version: "v2.4.2", Path: p, SHA256: sha(prog)},
	}
	if _, err := b.Build(context.Background(), k); err == nil || !strings.Contains(err.Error(), "give a .tar.gz") {
		t.Errorf("error %v", err)
	}
}
