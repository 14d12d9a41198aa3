package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommitLookupAndCorruption(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	if _, ok, err := c.Lookup("base", "k"); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	tmp, err := c.TempPath("base", "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	path, err := c.Commit("base", "k", tmp)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.Lookup("base", "k"); !ok || err != nil || got != path {
		t.Fatalf("lookup after commit: %q %v %v", got, ok, err)
	}
	// A changed entry no longer matches its digest: it is a miss, and
	// it is removed so it gets rebuilt.
	if err := os.WriteFile(path, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Lookup("base", "k"); ok {
		t.Fatal("a corrupt entry was returned")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("corrupt entry left in place: %v", err)
	}
}

func TestKeyIsUnambiguous(t *testing.T) {
	if Key([]byte("ab"), []byte("c")) == Key([]byte("a"), []byte("bc")) {
		t.Error("two part lists share a key")
	}
	if Key([]byte("x")) != Key([]byte("x")) {
		t.Error("a key is not stable")
	}
}

// TestFileSHA256OfSparseFiles: holes hash as the zeros they read as,
// wherever they are.
func TestFileSHA256OfSparseFiles(t *testing.T) {
	dir := t.TempDir()
	for name, layout := range map[string][][2]int64{
		"empty":             nil,
		"dense":             {{0, 3 << 20}},
		"holes around data": {{5 << 20, 1 << 20}, {9<<20 + 17, 4096}},
		"a hole to the end": {{0, 4096}},
		"data at the end":   {{7 << 20, 100}},
		"only a hole":       {},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		f, _ := os.Create(p)
		size := int64(12 << 20)
		if name == "empty" {
			size = 0
		}
		f.Truncate(size)
		for _, run := range layout {
			b := bytes.Repeat([]byte{0xa5}, int(run[1]))
			f.WriteAt(b, run[0])
			if end := run[0] + run[1]; end > size {
				size = end
			}
		}
		f.Close()
		data, _ := os.ReadFile(p)
		want := sha256.Sum256(data)
		got, err := FileSHA256(p)
		if err != nil {
			t.Fatal(err)
		}
		if got != hex.EncodeToString(want[:]) {
			t.Errorf("%s: %s, want %x", name, got, want)
		}
	}
}
