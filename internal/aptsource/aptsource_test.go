package aptsource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, data := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFromHostRewritesSuites(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\n",
		"etc/apt/sources.list.d/debian.sources": `Types: deb deb-src
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
`,
		"etc/apt/sources.list": "# a comment\ndeb [arch=amd64 signed-by=/k.gpg] http://other.invalid/debian bookworm main\ndeb http://thirdparty.invalid/repo stable main\ndeb-src http://mirror.invalid/debian bookworm main\n",
	})
	got, err := FromHost(root, "trixie")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"deb [signed-by=/k.gpg] http://other.invalid/debian trixie main",
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.invalid/debian trixie main contrib",
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.invalid/debian trixie-updates main contrib",
		"deb http://mirror.invalid/debian-security trixie-security main",
	}, "\n") + "\n"
	if string(Render(got)) != want {
		t.Errorf("got:\n%s\nwant:\n%s", Render(got), want)
	}
}

func TestFromHostWithoutDebianSources(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"etc/os-release":       "VERSION_CODENAME=bookworm\n",
		"etc/apt/sources.list": "deb http://thirdparty.invalid/repo stable main\n",
	})
	if _, err := FromHost(root, "bookworm"); err == nil || !strings.Contains(err.Error(), "no Debian apt sources") {
		t.Errorf("err = %v", err)
	}
}

func TestForMirror(t *testing.T) {
	got := string(Render(ForMirror("http://mirror.invalid/debian", "bookworm")))
	want := "deb http://mirror.invalid/debian bookworm main\ndeb http://mirror.invalid/debian bookworm-updates main\n"
	if got != want {
		t.Errorf("got %q", got)
	}
}
