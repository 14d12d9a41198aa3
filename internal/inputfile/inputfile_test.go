package inputfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "p.yaml")
	os.WriteFile(small, []byte("kind: Profile\n"), 0o644)
	if data, err := Read(small, 1<<10); err != nil || string(data) != "kind: Profile\n" {
		t.Fatalf("Read = %q, %v", data, err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 2<<10), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v is not os.ErrNotExist", err)
	}
	for path, want := range map[string]string{
		filepath.Join(dir, "missing"): "no such file",
		dir:                           "is not a regular file (d",
		fifo:                          "is not a regular file (p",
		"/dev/zero":                   "is not a regular file (D",
		big:                           "is 2048 bytes, more than the 1024",
	} {
		done := make(chan error, 1)
		go func() { _, err := Read(path, 1<<10); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), want) {
				t.Errorf("Read(%s) = %v, want ErrInput and %q", path, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Read(%s) hangs", path)
		}
	}
}
