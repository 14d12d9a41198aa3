package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// sparseOracle is SparseSHA256 by its definition, from the whole content.
func sparseOracle(data []byte) string {
	h := sha256.New()
	var head [8]byte
	for off := 0; off < len(data); off += sparseBlock {
		block := data[off:min(off+sparseBlock, len(data))]
		if bytes.Count(block, []byte{0}) == len(block) {
			continue
		}
		binary.BigEndian.PutUint64(head[:], uint64(off))
		h.Write(head[:])
		h.Write(block)
	}
	binary.BigEndian.PutUint64(head[:], uint64(len(data)))
	h.Write([]byte("size"))
	h.Write(head[:])
	return hex.EncodeToString(h.Sum(nil))
}

// TestSparseSHA256NamesContent: the digest follows the content, byte by
// byte, and not the holes: a sparse file and its dense copy share it.
func TestSparseSHA256NamesContent(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int64, runs [][2]int64, dense bool) (string, []byte) {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		content := make([]byte, size)
		for _, r := range runs {
			for i := r[0]; i < r[0]+r[1]; i++ {
				content[i] = byte(i%251) | 1
			}
		}
		if dense {
			if _, err := f.Write(content); err != nil {
				t.Fatal(err)
			}
			return p, content
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if _, err := f.WriteAt(content[r[0]:r[0]+r[1]], r[0]); err != nil {
				t.Fatal(err)
			}
		}
		return p, content
	}
	for name, c := range map[string]struct {
		size int64
		runs [][2]int64
	}{
		"empty":                 {0, nil},
		"only a hole":           {9 << 20, nil},
		"dense":                 {3<<20 + 5, [][2]int64{{0, 3<<20 + 5}}},
		"runs off block bounds": {12 << 20, [][2]int64{{5<<20 + 100, 1 << 20}, {9<<20 + 17, 4000}, {9<<20 + 9000, 10}}},
		"data at the end":       {7<<20 + 100, [][2]int64{{7 << 20, 100}}},
		"a short last block":    {8193, [][2]int64{{8192, 1}}},
	} {
		sparse, content := write(name+".sparse", c.size, c.runs, false)
		dense, _ := write(name+".dense", c.size, c.runs, true)
		want := sparseOracle(content)
		for _, p := range []string{sparse, dense} {
			got, err := SparseSHA256(p)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s: %s, want %s", filepath.Base(p), got, want)
			}
		}
		// One byte more, in a hole or in the data, is another content.
		if c.size > 0 {
			f, err := os.OpenFile(sparse, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{0x80}, c.size/2)
			f.Close()
			if got, _ := SparseSHA256(sparse); got == want {
				t.Errorf("%s: a changed byte at %d kept the digest", name, c.size/2)
			}
		}
	}
	// The size counts: a longer file of zeros is another content.
	a, _ := write("zeros-a", 4096, nil, false)
	b, _ := write("zeros-b", 8192, nil, false)
	da, _ := SparseSHA256(a)
	db, _ := SparseSHA256(b)
	if da == db {
		t.Error("two sizes of zeros share a digest")
	}
}

// TestFolderEntries: a folder is one entry, verified file by file; a
// changed file is a miss and the entry goes; Prune removes folders too.
func TestFolderEntries(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	commit := func(key string, files map[string]string) string {
		t.Helper()
		tmp, err := c.TempDir("builds")
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			p := filepath.Join(tmp, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		path, err := c.Commit("builds", key, tmp)
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	files := map[string]string{"disk.raw": "disk", "pxe/root.squashfs": "root", "manifest.json": "{}"}
	path := commit("a", files)
	if got, ok, err := c.Lookup("builds", "a"); !ok || err != nil || got != path {
		t.Fatalf("lookup after commit: %q %v %v", got, ok, err)
	}
	// The same key again (two builds at once): the second replaces the
	// first.
	files["manifest.json"] = `{"again":true}`
	if p := commit("a", files); p != path {
		t.Fatalf("second commit at %s, not %s", p, path)
	}
	if data, _ := os.ReadFile(filepath.Join(path, "manifest.json")); string(data) != files["manifest.json"] {
		t.Errorf("after the second commit the manifest is %q", data)
	}
	if _, ok, _ := c.Lookup("builds", "a"); !ok {
		t.Fatal("the second commit is not found")
	}
	// A file changed, renamed or added is a miss, and the entry goes.
	for name, change := range map[string]func(){
		"changed": func() { os.WriteFile(filepath.Join(path, "pxe/root.squashfs"), []byte("r00t"), 0o644) },
		"renamed": func() { os.Rename(filepath.Join(path, "disk.raw"), filepath.Join(path, "disk.img")) },
		"added":   func() { os.WriteFile(filepath.Join(path, "extra"), nil, 0o644) },
	} {
		commit("a", files)
		change()
		if _, ok, _ := c.Lookup("builds", "a"); ok {
			t.Errorf("%s: a corrupt folder entry was returned", name)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s: corrupt folder entry left in place: %v", name, err)
		}
	}
	// Only files and folders: a link is refused.
	tmp, _ := c.TempDir("builds")
	os.Symlink("/etc/passwd", filepath.Join(tmp, "link"))
	if _, err := c.Commit("builds", "b", tmp); err == nil {
		t.Error("a folder holding a link was committed")
	}
	os.RemoveAll(tmp)
	// Prune keeps the last used.
	for _, k := range []string{"k1", "k2", "k3"} {
		commit(k, map[string]string{"f": k})
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(c.Path("builds", "k1"), old, old)
	os.Chtimes(c.Path("builds", "k2"), old.Add(time.Minute), old.Add(time.Minute))
	if err := c.Prune("builds", 2); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]bool{"k1": false, "k2": true, "k3": true} {
		if _, ok, _ := c.Lookup("builds", k); ok != want {
			t.Errorf("after Prune, %s found: %v, want %v", k, ok, want)
		}
	}
	if _, err := os.Stat(c.Path("builds", "k1")); !os.IsNotExist(err) {
		t.Errorf("a pruned folder is left: %v", err)
	}
}
