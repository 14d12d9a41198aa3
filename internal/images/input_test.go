package images

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

var epoch = time.Unix(1735689600, 0).UTC()

// pushed starts go-containerregistry's in-memory registry on loopback and
// pushes the test image to it as repo:tag.
func pushed(t *testing.T, repo string) (host string, img v1.Image, digest string) {
	t.Helper()
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "http://")
	img, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ = Digest(img)
	return host, img, digest
}

// TestRegistrySource pulls an image by digest from a registry standing in
// for a mirror of registry.k8s.io: the archive names it as the node knows
// it and keeps its digest; a wrong pin fails naming the image.
func TestRegistrySource(t *testing.T) {
	host, _, digest := pushed(t, "pause:3.10.2")
	ctx := context.Background()
	in := Input{Ref: "registry.k8s.io/pause:3.10.2", Registry: host}

	got, err := Resolve(ctx, in, Options{})
	if err != nil || got != digest {
		t.Fatalf("Resolve = %s, %v; want %s", got, err, digest)
	}
	if in.Source() != "registry:"+host+"/pause" {
		t.Errorf("source %q", in.Source())
	}

	if _, err := BuildArchive(ctx, &bytes.Buffer{}, []Input{in}, epoch, Options{}); !errors.Is(err, ErrUnpinned) {
		t.Errorf("unpinned pull: %v, want ErrUnpinned", err)
	}

	in.Digest = digest
	var buf bytes.Buffer
	entries, err := BuildArchive(ctx, &buf, []Input{in}, epoch, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Ref != in.Ref || entries[0].Digest != digest {
		t.Errorf("entries %+v", entries)
	}
	p := filepath.Join(t.TempDir(), "a.tar")
	os.WriteFile(p, buf.Bytes(), 0o644)
	if read, err := ReadArchive(p); err != nil || len(read) != 1 || read[0].Digest != digest {
		t.Errorf("ReadArchive = %+v, %v", read, err)
	}

	// A digest the registry does not have.
	in.Digest = "sha256:" + strings.Repeat("a", 64)
	_, err = BuildArchive(ctx, &bytes.Buffer{}, []Input{in}, epoch, Options{})
	if err == nil || !strings.Contains(err.Error(), "image registry.k8s.io/pause:3.10.2") {
		t.Errorf("wrong pin: %v, want an error naming the image", err)
	}
}

// TestLayoutSource reads an image from an OCI layout folder, by reference
// when resolving and by digest when pinned.
func TestLayoutSource(t *testing.T) {
	img, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "3.10.2"})); err != nil {
		t.Fatal(err)
	}
	digest, _ := Digest(img)
	in := Input{Ref: "registry.k8s.io/pause:3.10.2", Layout: dir}
	ctx := context.Background()
	if got, err := Resolve(ctx, in, Options{}); err != nil || got != digest {
		t.Fatalf("Resolve = %s, %v", got, err)
	}
	in.Digest = digest
	if _, err := BuildArchive(ctx, &bytes.Buffer{}, []Input{in}, epoch, Options{}); err != nil {
		t.Fatal(err)
	}
	in.Digest = "sha256:" + strings.Repeat("b", 64)
	if _, err := BuildArchive(ctx, &bytes.Buffer{}, []Input{in}, epoch, Options{}); err == nil || !strings.Contains(err.Error(), "holds no image") {
		t.Errorf("wrong pin: %v", err)
	}
}
