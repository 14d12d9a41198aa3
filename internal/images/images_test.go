package images

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func testSpec() Spec {
	return Spec{
		Ref:        "registry.k8s.io/pause:3.10.2",
		Files:      []File{{Path: "/pause", Data: []byte("not really pause"), Mode: 0o755}, {Path: "/etc/x/y", Data: []byte("y"), Mode: 0o644}},
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
		Epoch:      time.Unix(1735689600, 0).UTC(),
	}
}

func TestBuildIsReproducible(t *testing.T) {
	a, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	da, _ := Digest(a)
	db, _ := Digest(b)
	if da != db || len(da) != len("sha256:")+64 {
		t.Fatalf("digests %s and %s", da, db)
	}
	other := testSpec()
	other.Files[0].Data = []byte("changed")
	c, _ := Build(other)
	if dc, _ := Digest(c); dc == da {
		t.Error("changed content kept its digest")
	}
}

func TestImageConfigAndLayer(t *testing.T) {
	img, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || cfg.Config.User != "65535:65535" ||
		len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/pause" || !cfg.Created.Time.Equal(testSpec().Epoch) {
		t.Errorf("config %+v", cfg)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %v %v", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(testSpec().Epoch) {
			t.Errorf("%s: owner %d:%d time %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
		names = append(names, h.Name)
	}
	want := []string{"etc/", "etc/x/", "etc/x/y", "pause"}
	if len(names) != len(want) {
		t.Fatalf("layer holds %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("layer entry %d is %s, want %s", i, names[i], want[i])
		}
	}
}

func TestWriteArchiveKeepsDigestsAndNames(t *testing.T) {
	img, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	imgs := map[string]v1.Image{"registry.k8s.io/pause:3.10.2": img}
	if err := WriteArchive(&a, imgs, testSpec().Epoch); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(&b, imgs, testSpec().Epoch); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two archives of the same image differ")
	}
	// Unpack the archive and read it back as an OCI layout.
	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(a.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		data, _ := io.ReadAll(tr)
		os.WriteFile(p, data, 0o644)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("index %+v %v", m, err)
	}
	want, _ := img.Digest()
	if m.Manifests[0].Digest != want {
		t.Errorf("archive holds %s, built %s", m.Manifests[0].Digest, want)
	}
	if got := m.Manifests[0].Annotations["io.containerd.image.name"]; got != "registry.k8s.io/pause:3.10.2" {
		t.Errorf("image name annotation %q", got)
	}
}
