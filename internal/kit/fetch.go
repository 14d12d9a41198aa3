package kit

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"time"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/lock"
	"github.com/nodebake/nodebake/internal/profile"
)

// Download is a url or file source's content as fetched: what the lock
// pins for it.
type Download = lock.Download

// ErrUnpinned is returned for a url or file source with no sha256 in the
// profile or the lock.
var ErrUnpinned = errors.New("no sha256 pins it: set sha256 in the profile or run `imagebuild lock`")

// fetch gets a url or file component, verifies it against its pin and
// returns its programs. With no pin, it fails unless b.Resolve is set (the
// lock command), which records what it fetched.
func (b *Builder) fetch(ctx context.Context, name string, c profile.Component, r recipe) ([]Artifact, error) {
	source := c.Source + ":" + c.URL + c.Path
	pin := c.SHA256
	if pin == "" && b.Pins != nil {
		pin = b.Pins(name)
	}
	if pin == "" && !b.Resolve {
		return nil, fmt.Errorf("%s: %w", source, ErrUnpinned)
	}
	blob, ok := "", false
	var err error
	if pin != "" {
		if blob, ok, err = b.Cache.Lookup("downloads", pin); err != nil {
			return nil, err
		}
	}
	if !ok {
		if blob, err = b.download(ctx, c, pin); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
	}
	sum, err := cache.FileSHA256(blob)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.downloads = append(b.downloads, Download{Component: name, Source: source, SHA256: sum})
	b.mu.Unlock()
	return b.unpack(name, c.Version, source, r, blob, sum)
}

// download copies a url or file source into the downloads cache, named by
// its sha256, and checks it against pin when there is one. A mismatch
// leaves nothing in the cache.
func (b *Builder) download(ctx context.Context, c profile.Component, pin string) (string, error) {
	var body io.ReadCloser
	switch c.Source {
	case profile.SourceURL:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
		if err != nil {
			return "", err
		}
		resp, err := b.httpClient().Do(req)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return "", fmt.Errorf("HTTP %s", resp.Status)
		}
		body = resp.Body
	case profile.SourceFile:
		f, err := os.Open(c.Path)
		if err != nil {
			return "", err
		}
		body = f
	default:
		return "", fmt.Errorf("source %q is not fetched", c.Source)
	}
	defer body.Close()
	// The final name is the content's sha256, known only at the end.
	tmp, err := b.Cache.TempPath("downloads", "fetch")
	if err != nil {
		return "", err
	}
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if pin != "" && sum != pin {
		os.Remove(tmp)
		return "", fmt.Errorf("sha256 is %s, but %s is pinned", sum, pin)
	}
	return b.Cache.Commit("downloads", sum, tmp)
}

func (b *Builder) httpClient() *http.Client {
	if b.HTTP != nil {
		return b.HTTP
	}
	return &http.Client{Timeout: 30 * time.Minute}
}

// unpack turns a fetched blob into the recipe's programs: the blob itself
// for a single program, or the entries of a .tar.gz named like them.
func (b *Builder) unpack(name, version, source string, r recipe, blob, sum string) ([]Artifact, error) {
	f, err := os.Open(blob)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(2)
	if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		if len(r.binaries) != 1 {
			return nil, fmt.Errorf("%s: %s has %d programs; give a .tar.gz holding them", source, name, len(r.binaries))
		}
		a, err := b.artifact(name, version, source, r, r.binaries[0], blob)
		return []Artifact{a}, err
	}
	want := map[string]binary{}
	for _, bin := range r.binaries {
		want[bin.name] = bin
	}
	found := map[string]string{}
	var out []Artifact
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		bin, ok := want[path.Base(h.Name)]
		if !ok || h.Typeflag != tar.TypeReg || found[bin.name] != "" {
			continue
		}
		key := cache.Key([]byte("nodebake-kit-unpack-v1"), []byte(sum), []byte(h.Name))
		p, ok, err := b.Cache.Lookup("kit", key)
		if err != nil {
			return nil, err
		}
		if !ok {
			tmp, err := b.Cache.TempPath("kit", key)
			if err != nil {
				return nil, err
			}
			if err := writeFrom(tmp, tr); err != nil {
				return nil, err
			}
			if p, err = b.Cache.Commit("kit", key, tmp); err != nil {
				return nil, err
			}
		}
		found[bin.name] = p
		a, err := b.artifact(name, version, source, r, bin, p)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	for _, bin := range r.binaries {
		if found[bin.name] == "" {
			return nil, fmt.Errorf("%s: the archive has no %s", source, bin.name)
		}
	}
	return inRecipeOrder(r, out), nil
}

// Downloads are the url and file sources fetched so far.
func (b *Builder) Downloads() []Download {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Download(nil), b.downloads...)
}

func writeFrom(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
