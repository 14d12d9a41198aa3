package images

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Entry is one image in an archive: its full reference and manifest digest.
type Entry struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// Key is the cache key of the archive of inputs: every input of every
// built image and the pinned digest of every other, so an archive cached
// under it is the one BuildArchive would write.
func Key(inputs []Input, epoch time.Time) string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s", len(s), s) }
	field("nodebake-images-v4")
	field(layerCompression)
	field(strconv.FormatInt(epoch.Unix(), 10))
	sorted := append([]Input(nil), inputs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Ref < sorted[j].Ref })
	for _, in := range sorted {
		field(in.Ref)
		if in.Spec == nil {
			field("digest")
			field(in.Digest)
			continue
		}
		s := in.Spec
		field("spec")
		field(strings.Join(s.Entrypoint, "\x00"))
		field(strings.Join(s.Cmd, "\x00"))
		field(strings.Join(s.Env, "\x00"))
		field(s.User)
		field(strconv.FormatInt(s.Epoch.Unix(), 10))
		files := append([]File(nil), s.Files...)
		sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
		for _, f := range files {
			sum := sha256.Sum256(f.Data)
			field(f.Path)
			field(f.Link)
			field(strconv.FormatInt(f.Mode, 8))
			field(hex.EncodeToString(sum[:]))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// BuildArchive builds or fetches every input, checks each against its
// pinned digest, and writes them to w as one OCI archive (see
// WriteArchive). It returns the images in reference order.
func BuildArchive(ctx context.Context, w io.Writer, inputs []Input, epoch time.Time, o Options) ([]Entry, error) {
	imgs := make(map[string]v1.Image, len(inputs))
	for _, in := range inputs {
		if _, dup := imgs[in.Ref]; dup {
			return nil, fmt.Errorf("image %s is listed twice", in.Ref)
		}
		img, err := load(ctx, in, o)
		if err != nil {
			return nil, err
		}
		imgs[in.Ref] = img
	}
	if err := WriteArchive(w, imgs, epoch); err != nil {
		return nil, err
	}
	entries := make([]Entry, 0, len(imgs))
	for ref, img := range imgs {
		d, err := Digest(img)
		if err != nil {
			return nil, err
		}
		entries = append(entries, Entry{Ref: ref, Digest: d})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Ref < entries[j].Ref })
	return entries, nil
}

// ReadArchive lists the images of an OCI archive written by WriteArchive,
// from its index.json, in reference order.
func ReadArchive(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no index.json: not an OCI archive", path)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if h.Name != "index.json" {
			continue
		}
		var index v1.IndexManifest
		if err := json.NewDecoder(tr).Decode(&index); err != nil {
			return nil, fmt.Errorf("%s: index.json: %w", path, err)
		}
		var entries []Entry
		for _, m := range index.Manifests {
			ref := m.Annotations["io.containerd.image.name"]
			if ref == "" {
				return nil, fmt.Errorf("%s: manifest %s has no io.containerd.image.name", path, m.Digest)
			}
			entries = append(entries, Entry{Ref: ref, Digest: m.Digest.String()})
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Ref < entries[j].Ref })
		return entries, nil
	}
}
