package ignitioncfg

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/vincent-petithory/dataurl"

	"github.com/nodebake/nodebake/internal/retry"
)

// Fetcher gets the contents of a resource: data URLs, and http(s) URLs
// retried with backoff until Deadline.
type Fetcher struct {
	Client *http.Client
	Log    *slog.Logger
	// Deadline bounds the retries of one http(s) resource.
	Deadline time.Duration
	// Backoff is the first wait between attempts; it doubles up to a
	// minute.
	Backoff time.Duration
}

// maxResource bounds one resource's size.
const maxResource = 256 << 20

// Contents is what a config's file holds once Apply has written it: its
// contents (or existing, what is there, when it has none), then each of
// its appends. A check of a file's contents must read these, not its
// contents alone.
func (f *Fetcher) Contents(ctx context.Context, file types.File, existing []byte) ([]byte, error) {
	data := existing
	if file.Contents.Source != nil {
		var err error
		if data, err = f.Fetch(ctx, file.Contents); err != nil {
			return nil, fmt.Errorf("contents: %w", err)
		}
	}
	return f.appended(ctx, data, file.Append)
}

// CheckData fetches every data URL a config's files hold, contents and
// appends, which needs no network, and reports each that would fail on
// the node: one that does not decode, or does not match its hash.
func (f *Fetcher) CheckData(ctx context.Context, c Config) []Problem {
	var out []Problem
	for i, file := range c.Storage.Files {
		for j, r := range append([]types.Resource{file.Contents}, file.Append...) {
			if r.Source == nil || !strings.HasPrefix(*r.Source, "data:") {
				continue
			}
			if _, err := f.Fetch(ctx, r); err != nil {
				where := fmt.Sprintf("$.storage.files.%d.contents", i)
				if j > 0 {
					where = fmt.Sprintf("$.storage.files.%d.append.%d", i, j-1)
				}
				out = append(out, Problem{Kind: "error", Path: where, Message: err.Error(), Fatal: true})
			}
		}
	}
	return out
}

// appended is data with each fragment fetched and added, in order.
func (f *Fetcher) appended(ctx context.Context, data []byte, fragments []types.Resource) ([]byte, error) {
	data = append([]byte(nil), data...)
	for i, a := range fragments {
		frag, err := f.Fetch(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("append.%d: %w", i, err)
		}
		data = append(data, frag...)
	}
	return data, nil
}

// Fetch returns a resource's contents, decompressed, checked against its
// verification hash.
func (f *Fetcher) Fetch(ctx context.Context, r types.Resource) ([]byte, error) {
	if r.Source == nil {
		return nil, nil
	}
	raw, err := f.get(ctx, *r.Source, r.HTTPHeaders)
	if err != nil {
		return nil, err
	}
	data := raw
	if r.Compression != nil && *r.Compression != "" {
		if *r.Compression != "gzip" {
			return nil, fmt.Errorf("compression %q: only gzip is supported", *r.Compression)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if data, err = io.ReadAll(io.LimitReader(zr, maxResource+1)); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if len(data) > maxResource {
			return nil, fmt.Errorf("decompressed contents are larger than %d bytes", maxResource)
		}
	}
	if r.Verification.Hash != nil {
		if err := verify(*r.Verification.Hash, data); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// verify checks data against a hash written sha256-HEX or sha512-HEX.
func verify(want string, data []byte) error {
	kind, sum, ok := strings.Cut(want, "-")
	var h hash.Hash
	switch {
	case !ok:
		return fmt.Errorf("verification hash %q is not TYPE-HEX", want)
	case kind == "sha256":
		h = sha256.New()
	case kind == "sha512":
		h = sha512.New()
	default:
		return fmt.Errorf("verification hash type %q: sha256 or sha512", kind)
	}
	h.Write(data)
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(sum) {
		return fmt.Errorf("%w: %s-%s, want %s", ErrHash, kind, got, want)
	}
	return nil
}

// ErrHash is contents that do not match their verification hash.
var ErrHash = errors.New("contents do not match their verification hash")

func (f *Fetcher) get(ctx context.Context, source string, headers types.HTTPHeaders) ([]byte, error) {
	u, err := url.Parse(source)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", source, err)
	}
	switch u.Scheme {
	case "data":
		d, err := dataurl.DecodeString(source)
		if err != nil {
			return nil, fmt.Errorf("data URL: %w", err)
		}
		return d.Data, nil
	case "http", "https":
		return f.getHTTP(ctx, u, headers)
	default:
		return nil, fmt.Errorf("source scheme %q: nodebake fetches data, http and https", u.Scheme)
	}
}

// getHTTP retries until the deadline: the network may not be up yet when
// the first attempt is made. A 4xx answer other than 408 and 429 is final.
func (f *Fetcher) getHTTP(ctx context.Context, u *url.URL, headers types.HTTPHeaders) ([]byte, error) {
	deadline := f.Deadline
	if deadline == 0 {
		deadline = 5 * time.Minute
	}
	client := f.Client
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	var data []byte
	err := retry.Do(ctx, retry.Policy{Deadline: deadline, First: f.Backoff, Max: time.Minute,
		OnRetry: func(attempt int, err error, wait time.Duration) {
			if f.Log != nil {
				f.Log.Warn("fetch failed, retrying", "url", redact(u), "attempt", attempt, "error", err, "retry_in", wait.String())
			}
		}}, func(ctx context.Context) error {
		d, final, err := f.once(ctx, client, u, headers)
		if err != nil && final {
			return retry.Final(err)
		}
		data = d
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redact(u), err)
	}
	return data, nil
}

func (f *Fetcher) once(ctx context.Context, client *http.Client, u *url.URL, headers types.HTTPHeaders) ([]byte, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, true, err
	}
	for _, h := range headers {
		if h.Value != nil {
			req.Header.Set(h.Name, *h.Value)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		final := resp.StatusCode >= 400 && resp.StatusCode < 500 &&
			resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests
		return nil, final, fmt.Errorf("%s: HTTP %s", redact(u), resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResource+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > maxResource {
		return nil, true, fmt.Errorf("%s: larger than %d bytes", redact(u), maxResource)
	}
	return data, false, nil
}

// redact drops a URL's user information and query, which may hold
// credentials, for logs.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}
