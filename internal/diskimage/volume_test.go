package diskimage

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
)

// TestConfigDriveVolume writes a FAT config drive, checks it with
// fsck.vfat and blkid, and reads the config back without mounting it.
func TestConfigDriveVolume(t *testing.T) {
	p := filepath.Join(t.TempDir(), "drive.img")
	want := `{"ignition":{"version":"3.4.0"}}`
	writeVolume(t, p, "ignition", map[string][]byte{"/config.ign": []byte(want)})
	if out, err := exec.Command("fsck.vfat", "-n", p).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat: %v\n%s", err, out)
	}
	out, err := exec.Command("blkid", "-o", "value", "-s", "LABEL", p).Output()
	if err != nil || strings.TrimSpace(string(out)) != "ignition" {
		t.Errorf("blkid label %q, %v", out, err)
	}
	got, err := ReadVolumeFile(p, "/config.ign")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("read %q", got)
	}
	if _, err := ReadVolumeFile(p, "/openstack/latest/user_data"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
}

// writeVolume makes a FAT image labelled label with mkfs.vfat, as a config
// drive is, and writes files into it with go-diskfs.
func writeVolume(t *testing.T, file, label string, files map[string][]byte) {
	t.Helper()
	if out, err := exec.Command("mkfs.vfat", "-n", label, "-C", file, "8192").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	d, err := diskfs.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fs, err := d.GetFilesystem(0)
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range files {
		if err := fs.Mkdir(path.Dir(p)); err != nil {
			t.Fatal(err)
		}
		f, err := fs.OpenFile(p, os.O_CREATE|os.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
