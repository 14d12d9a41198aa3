package diskformat

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/nodebake/nodebake/internal/command"
)

// sample is a 64 MiB disk with data at two places and holes between.
func sample(t *testing.T) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(64 << 20)
	for _, off := range []int64{0, 40 << 20} {
		b := make([]byte, 3<<20)
		rand.Read(b)
		f.WriteAt(b, off)
	}
	return raw
}

var opts = Options{Name: "node", Epoch: time.Unix(1767225600, 0).UTC(), Seed: "sha256:profile"}

// write makes format f of raw in a folder of its own.
func write(t *testing.T, f, raw string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "out"+Ext(f))
	if err := Write(context.Background(), &command.Runner{}, f, raw, dst, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dst + ".d"); !os.IsNotExist(err) {
		t.Errorf("%s: the scratch folder was left behind", f)
	}
	return dst
}

func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func fileHash(t *testing.T, p string) string {
	t.Helper()
	s, err := fileSum(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReproducible: the same disk gives the same bytes in every format,
// though qemu-img stamps the time and random IDs.
func TestReproducible(t *testing.T) {
	raw := sample(t)
	for _, f := range []string{Qcow2, VHD, VMDK, OVA, GCE} {
		a, b := write(t, f, raw), ""
		time.Sleep(1100 * time.Millisecond) // past qemu-img's one-second timestamps
		b = write(t, f, raw)
		if fileHash(t, a) != fileHash(t, b) {
			t.Errorf("%s: two conversions of one disk differ", f)
		}
	}
}

// TestImagesHoldTheDisk: qemu-img reads each disk format back to the raw
// disk's exact contents, and checks those it can.
func TestImagesHoldTheDisk(t *testing.T) {
	raw := sample(t)
	for _, tc := range []struct{ format, qemu string }{{Qcow2, "qcow2"}, {VHD, "vpc"}, {VMDK, "vmdk"}} {
		out := write(t, tc.format, raw)
		tool(t, "qemu-img", "compare", "-f", "raw", "-F", tc.qemu, raw, out)
		if tc.qemu != "vpc" { // qemu-img checks no VHD
			tool(t, "qemu-img", "check", "-f", tc.qemu, out)
		}
		var info struct {
			VirtualSize int64  `json:"virtual-size"`
			Format      string `json:"format"`
			Specific    struct {
				Data struct {
					CreateType string `json:"create-type"`
				} `json:"data"`
			} `json:"format-specific"`
		}
		json.Unmarshal([]byte(tool(t, "qemu-img", "info", "--output=json", "-f", tc.qemu, out)), &info)
		if info.VirtualSize != 64<<20 {
			t.Errorf("%s: virtual size %d, want %d", tc.format, info.VirtualSize, 64<<20)
		}
		if tc.format == VMDK && info.Specific.Data.CreateType != "streamOptimized" {
			t.Errorf("vmdk: create type %q", info.Specific.Data.CreateType)
		}
	}
}

// TestVHDFooter: a fixed VHD is the disk and one footer, its size exactly
// the disk's (Azure's whole-MiB rule), stamped from the epoch, with a
// valid checksum.
func TestVHDFooter(t *testing.T) {
	out := write(t, VHD, sample(t))
	data, _ := os.ReadFile(out)
	if len(data) != 64<<20+512 {
		t.Fatalf("%d bytes, want the disk and a 512-byte footer", len(data))
	}
	foot := data[64<<20:]
	if string(foot[:8]) != "conectix" || binary.BigEndian.Uint32(foot[footerDiskType:]) != diskTypeFixed {
		t.Errorf("no fixed-disk footer: %q", foot[:8])
	}
	if got := binary.BigEndian.Uint64(foot[48:]); got != 64<<20 {
		t.Errorf("current size %d", got)
	}
	if got := int64(binary.BigEndian.Uint32(foot[footerTimestamp:])); got != opts.Epoch.Unix()-946684800 {
		t.Errorf("timestamp %d, want the epoch's", got)
	}
	if binary.BigEndian.Uint32(foot[footerChecksum:]) != footerSum(foot) {
		t.Error("footer checksum is wrong")
	}
}

// TestVHDRefusesAPartMiB: Azure takes only whole MiB.
func TestVHDRefusesAPartMiB(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "odd.img")
	os.WriteFile(raw, make([]byte, 1<<20+512), 0o644)
	err := Write(context.Background(), &command.Runner{}, VHD, raw, raw+".vhd", opts)
	if err == nil || !strings.Contains(err.Error(), "whole number of MiB") {
		t.Fatalf("got %v", err)
	}
}

// ovfEnvelope is what the test reads of a descriptor.
type ovfEnvelope struct {
	XMLName xml.Name `xml:"http://schemas.dmtf.org/ovf/envelope/1 Envelope"`
	Files   []struct {
		Href string `xml:"href,attr"`
		ID   string `xml:"id,attr"`
		Size int64  `xml:"size,attr"`
	} `xml:"References>File"`
	Disks []struct {
		Capacity int64  `xml:"capacity,attr"`
		FileRef  string `xml:"fileRef,attr"`
		Format   string `xml:"format,attr"`
	} `xml:"DiskSection>Disk"`
	System struct {
		ID    string `xml:"id,attr"`
		Items []struct {
			ResourceType int    `xml:"ResourceType"`
			HostResource string `xml:"HostResource"`
			Parent       string `xml:"Parent"`
		} `xml:"VirtualHardwareSection>Item"`
		Config []struct {
			Key   string `xml:"key,attr"`
			Value string `xml:"value,attr"`
		} `xml:"VirtualHardwareSection>Config"`
	} `xml:"VirtualSystem"`
}

// TestOVA: the descriptor, the manifest and the disk, in the order OVF
// requires, ustar; the manifest's sums and the descriptor's sizes are
// the files'; the disk is the raw disk; EFI firmware and a CD-ROM for the
// config drive are declared.
func TestOVA(t *testing.T) {
	raw := sample(t)
	ova := write(t, OVA, raw)
	dir := t.TempDir()
	tool(t, "tar", "-xf", ova, "-C", dir)
	if got := strings.Fields(tool(t, "tar", "-tf", ova)); strings.Join(got, " ") != "node.ovf node.mf node.vmdk" {
		t.Errorf("members %v, want node.ovf node.mf node.vmdk in that order", got)
	}
	f, _ := os.Open(ova)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Format != tar.FormatUSTAR || !h.ModTime.Equal(opts.Epoch) {
			t.Errorf("%s: format %v, time %s: want ustar at the epoch", h.Name, h.Format, h.ModTime)
		}
	}
	tool(t, "xmllint", "--noout", filepath.Join(dir, "node.ovf"))
	data, _ := os.ReadFile(filepath.Join(dir, "node.ovf"))
	var env ovfEnvelope
	if err := xml.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	vmdk := filepath.Join(dir, "node.vmdk")
	fi, _ := os.Stat(vmdk)
	if len(env.Files) != 1 || env.Files[0].Href != "node.vmdk" || env.Files[0].Size != fi.Size() {
		t.Errorf("References %+v, want node.vmdk of %d bytes", env.Files, fi.Size())
	}
	if len(env.Disks) != 1 || env.Disks[0].Capacity != 64<<20 || env.Disks[0].FileRef != env.Files[0].ID ||
		!strings.HasSuffix(env.Disks[0].Format, "#streamOptimized") {
		t.Errorf("DiskSection %+v", env.Disks)
	}
	types := map[int]int{}
	for _, it := range env.System.Items {
		types[it.ResourceType]++
		if it.ResourceType == 17 && it.HostResource != "ovf:/disk/vmdisk1" {
			t.Errorf("the disk item names %q", it.HostResource)
		}
	}
	for rt, what := range map[int]string{3: "CPU", 4: "memory", 6: "SCSI controller", 17: "disk", 15: "CD-ROM", 10: "NIC"} {
		if types[rt] != 1 {
			t.Errorf("%d %s items, want 1", types[rt], what)
		}
	}
	if len(env.System.Config) != 1 || env.System.Config[0].Key != "firmware" || env.System.Config[0].Value != "efi" {
		t.Errorf("firmware %+v, want efi", env.System.Config)
	}
	mf, _ := os.ReadFile(filepath.Join(dir, "node.mf"))
	for _, name := range []string{"node.ovf", "node.vmdk"} {
		want := "SHA256(" + name + ")= " + fileHash(t, filepath.Join(dir, name)) + "\n"
		if !strings.Contains(string(mf), want) {
			t.Errorf("the manifest lacks %q:\n%s", want, mf)
		}
	}
	tool(t, "qemu-img", "compare", "-f", "raw", "-F", "vmdk", raw, vmdk)
}

// TestGCE: one member, disk.raw, in GNU format with its holes kept, that
// unpacks to the raw disk.
func TestGCE(t *testing.T) {
	raw := sample(t)
	out := write(t, GCE, raw)
	if got := strings.TrimSpace(tool(t, "tar", "-tzf", out)); got != "disk.raw" {
		t.Errorf("members %q, want disk.raw alone", got)
	}
	f, _ := os.Open(out)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 512)
	io.ReadFull(gz, head)
	if magic := string(head[257:265]); magic != "ustar  \x00" {
		t.Errorf("tar magic %q, want GNU's", magic)
	}
	if head[156] != 'S' {
		t.Errorf("type flag %q, want S (GNU sparse)", head[156])
	}
	if mtime, _ := strconv.ParseInt(strings.Trim(string(head[136:148]), "\x00 "), 8, 64); mtime != opts.Epoch.Unix() {
		t.Errorf("mtime %d, want the epoch", mtime)
	}
	dir := t.TempDir()
	tool(t, "tar", "-xzSf", out, "-C", dir)
	if fileHash(t, filepath.Join(dir, "disk.raw")) != fileHash(t, raw) {
		t.Error("disk.raw is not the disk")
	}
	if fi, _ := os.Stat(out); fi.Size() > 7<<20 {
		t.Errorf("%d bytes for 6 MiB of random data: the holes were stored", fi.Size())
	}
}

// Two images (two seeds) get two VHD UUIDs and two VMDK content IDs.
func TestIDsFollowTheSeed(t *testing.T) {
	a, b := opts, opts
	b.Seed = "sha256:other"
	for _, what := range []string{"vhd-uuid", "vmdk-cid"} {
		if bytes.Equal(a.id(what, 16), b.id(what, 16)) {
			t.Errorf("%s: two seeds gave one", what)
		}
	}
}

// TestShortCID: qemu-img prints the CID without leading zeros, so it may
// have fewer than eight digits; it is replaced all the same, and the
// disk still reads.
func TestShortCID(t *testing.T) {
	raw := sample(t)
	vmdk := filepath.Join(t.TempDir(), "node.vmdk")
	tool(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk)
	data, _ := os.ReadFile(vmdk)
	loc := cidRE.FindIndex(data[:64<<10])
	if loc == nil {
		t.Fatal("no CID from qemu-img")
	}
	short := append([]byte("CID=93ce913\n"), data[loc[1]+1:loc[1]+1+512]...) // one digit fewer
	copy(data[loc[0]:], short)
	os.WriteFile(vmdk, data, 0o644)
	if err := stampCID(vmdk, opts); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(vmdk)
	want := "\nCID=" + hex.EncodeToString(opts.id("vmdk-cid", 4)) + "\n"
	if !strings.Contains(string(got[:64<<10]), want) {
		t.Errorf("descriptor lacks %q", want)
	}
	tool(t, "qemu-img", "compare", "-f", "raw", "-F", "vmdk", raw, vmdk)
}

// TestOVAFirmware: BIOS when asked, in the descriptor.
func TestOVAFirmware(t *testing.T) {
	o := opts
	o.Firmware = FirmwareBIOS
	if d := string(descriptor(o, 1<<20, 512)); !strings.Contains(d, `vmw:key="firmware" vmw:value="bios"`) {
		t.Errorf("descriptor:\n%s", d)
	}
}
