package qemu

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestKind tells a PXE folder, an ISO (by ISO 9660's identifier, not its
// name) and anything else apart.
func TestKind(t *testing.T) {
	dir := t.TempDir()
	iso := filepath.Join(dir, "image.raw")
	data := make([]byte, 40960)
	copy(data[isoMagicAt:], isoMagic)
	os.WriteFile(iso, data, 0o644)
	named := filepath.Join(dir, "fake.iso")
	os.WriteFile(named, make([]byte, 40960), 0o644)
	for path, want := range map[string]string{dir: KindPXE, iso: KindISO, named: KindDisk, filepath.Join(dir, "missing"): KindDisk} {
		if got := Kind(path); got != want {
			t.Errorf("Kind(%s) = %s, want %s", filepath.Base(path), got, want)
		}
	}
}

// TestPXEBoot serves a PXE folder: the chain script on QEMU's TFTP sets
// the base URL and the extra kernel arguments, the user network forwards
// the guest's server address through socat, and the HTTP server on the
// loopback serves the folder's files until the boot ends.
func TestPXEBoot(t *testing.T) {
	folder, work := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(folder, "boot.ipxe"), []byte("#!ipxe\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	opts, err := pxeBoot(ctx, folder, work, "nodebake.state=/dev/vda")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^,tftp=(.+),bootfile=chain\.ipxe,guestfwd=tcp:10\.0\.2\.100:80-cmd:socat - TCP:127\.0\.0\.1:(\d+)$`).FindStringSubmatch(opts)
	if m == nil {
		t.Fatalf("options %q", opts)
	}
	chain, err := os.ReadFile(filepath.Join(m[1], "chain.ipxe"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "#!ipxe\nset base-url http://10.0.2.100:80/\nset nodebake-args nodebake.state=/dev/vda\nchain ${base-url}boot.ipxe\n"; string(chain) != want {
		t.Errorf("chain script:\n%s\nwant:\n%s", chain, want)
	}
	url := "http://127.0.0.1:" + m[2] + "/boot.ipxe"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "#!ipxe\n" {
		t.Errorf("served %q", body)
	}
	cancel()
	for i := 0; i < 100; i++ {
		if _, err = http.Get(url); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("the server outlived its boot: %v", err)
	}
}
