package cache

import (
	"os"
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
