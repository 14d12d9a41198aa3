// Package aptsource turns the build host's apt sources into the sources of
// the image's Debian suite, so a build uses whatever mirror the host is set
// up for and no mirror host is ever written into nodebake.
package aptsource

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoSources is returned when the host has no Debian sources to rewrite.
var ErrNoSources = errors.New("no Debian apt sources found on the host")

// Entry is one apt source: a URI, one suite and its components.
type Entry struct {
	URI        string
	Suite      string
	Components []string
	SignedBy   string
}

// Line is the entry in apt's one-line format.
func (e Entry) Line() string {
	opts := ""
	if e.SignedBy != "" {
		opts = "[signed-by=" + e.SignedBy + "] "
	}
	return fmt.Sprintf("deb %s%s %s %s", opts, e.URI, e.Suite, strings.Join(e.Components, " "))
}

// Render is the entries as a sources.list file.
func Render(entries []Entry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		b.WriteString(e.Line())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ForMirror is the sources of suite from one mirror: the suite itself and
// its -updates suite.
func ForMirror(mirror, suite string) []Entry {
	return []Entry{
		{URI: mirror, Suite: suite, Components: []string{"main"}},
		{URI: mirror, Suite: suite + "-updates", Components: []string{"main"}},
	}
}

// FromHost reads the host's apt sources below root (normally "/"), keeps
// the binary entries of the host's own Debian release and rewrites their
// suites for suite: bookworm-security becomes trixie-security and so on.
func FromHost(root, suite string) ([]Entry, error) {
	hostCodename, err := codename(filepath.Join(root, "etc/os-release"))
	if err != nil {
		return nil, err
	}
	all, err := readAll(filepath.Join(root, "etc/apt"))
	if err != nil {
		return nil, err
	}
	var out []Entry
	seen := map[string]bool{}
	for _, e := range all {
		rest, ok := strings.CutPrefix(e.Suite, hostCodename)
		if !ok || (rest != "" && !strings.HasPrefix(rest, "-")) {
			continue
		}
		e.Suite = suite + rest
		if !seen[e.Line()] {
			seen[e.Line()] = true
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w for release %q under %s", ErrNoSources, hostCodename, filepath.Join(root, "etc/apt"))
	}
	return out, nil
}

func codename(osRelease string) (string, error) {
	data, err := os.ReadFile(osRelease)
	if err != nil {
		return "", fmt.Errorf("reading host release: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", fmt.Errorf("%s has no VERSION_CODENAME", osRelease)
}

func readAll(aptDir string) ([]Entry, error) {
	var entries []Entry
	files := []string{filepath.Join(aptDir, "sources.list")}
	more, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*"))
	sort.Strings(more)
	files = append(files, more...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		switch {
		case strings.HasSuffix(f, ".sources"):
			entries = append(entries, parseDeb822(data)...)
		case strings.HasSuffix(f, ".list") || filepath.Base(f) == "sources.list":
			entries = append(entries, parseOneLine(data)...)
		}
	}
	return entries, nil
}

func parseOneLine(data []byte) []Entry {
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		var e Entry
		fields = fields[1:]
		if strings.HasPrefix(fields[0], "[") {
			for len(fields) > 0 {
				opt := strings.Trim(fields[0], "[]")
				if v, ok := strings.CutPrefix(opt, "signed-by="); ok {
					e.SignedBy = v
				}
				done := strings.HasSuffix(fields[0], "]")
				fields = fields[1:]
				if done {
					break
				}
			}
		}
		if len(fields) < 2 {
			continue
		}
		e.URI, e.Suite, e.Components = fields[0], fields[1], fields[2:]
		out = append(out, e)
	}
	return out
}

func parseDeb822(data []byte) []Entry {
	var out []Entry
	for _, stanza := range strings.Split(string(data), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if ok && !strings.HasPrefix(line, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !strings.Contains(" "+fields["types"]+" ", " deb ") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			for _, suite := range strings.Fields(fields["suites"]) {
				out = append(out, Entry{
					URI: uri, Suite: suite,
					Components: strings.Fields(fields["components"]),
					SignedBy:   fields["signed-by"],
				})
			}
		}
	}
	return out
}
