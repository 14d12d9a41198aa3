package configsource

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
)

const cfg = `{"ignition":{"version":"3.4.0"}}`

// machine is a temp root with DMI files and the local sources' folders.
func machine(t *testing.T, dmi map[string]string) *Env {
	t.Helper()
	root := t.TempDir()
	for k, v := range dmi {
		write(t, filepath.Join(root, "sys/class/dmi/id", k), v+"\n")
	}
	write(t, filepath.Join(root, "proc/cmdline"), "BOOT_IMAGE=/vmlinuz root=PARTUUID=x ro console=ttyS0\n")
	return &Env{Root: root, Deadline: 5 * time.Second, Backoff: 5 * time.Millisecond}
}

func write(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// imds speaks EC2's IMDSv2: user data only with a token from a PUT.
func imds(t *testing.T, userData string, hits *atomic.Int32) *httptest.Server {
	const token = "AQAEAtoken=="
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch {
		case r.URL.Path == "/latest/api/token":
			if r.Method != http.MethodPut || r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
				http.Error(w, "", http.StatusBadRequest)
				return
			}
			fmt.Fprint(w, token)
		case r.Header.Get("X-aws-ec2-metadata-token") != token:
			http.Error(w, "", http.StatusUnauthorized)
		case r.URL.Path == "/latest/user-data" && userData != "":
			fmt.Fprint(w, userData)
		case r.URL.Path == "/latest/meta-data/local-hostname":
			fmt.Fprint(w, "ip-10-0-1-23.ec2.internal")
		case r.URL.Path == "/latest/meta-data/instance-id":
			fmt.Fprint(w, "i-0123456789abcdef0")
		case r.URL.Path == "/latest/meta-data/local-ipv4":
			fmt.Fprint(w, "10.0.1.23")
		case r.URL.Path == "/latest/meta-data/placement/region":
			fmt.Fprint(w, "eu-west-1")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAWS(t *testing.T) {
	var hits atomic.Int32
	e := machine(t, map[string]string{"sys_vendor": "Amazon EC2"})
	e.AWSBase = imds(t, cfg, &hits).URL
	f, err := Find(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if f.Source != "aws" || string(f.Config) != cfg || f.Hostname != "ip-10-0-1-23.ec2.internal" ||
		f.InstanceID != "i-0123456789abcdef0" || f.IPv4 != "10.0.1.23" {
		t.Errorf("found %+v", f)
	}
	// What the IMDS has, by coreos-metadata's names; no public address,
	// so none.
	want := map[string]string{"COREOS_EC2_HOSTNAME": "ip-10-0-1-23.ec2.internal", "COREOS_EC2_INSTANCE_ID": "i-0123456789abcdef0",
		"COREOS_EC2_IPV4_LOCAL": "10.0.1.23", "COREOS_EC2_REGION": "eu-west-1"}
	if !maps.Equal(f.Metadata, want) {
		t.Errorf("metadata %v, want %v", f.Metadata, want)
	}

	// Not on AWS: the metadata service is never asked.
	hits.Store(0)
	e = machine(t, map[string]string{"sys_vendor": "QEMU"})
	e.AWSBase = imds(t, cfg, &hits).URL
	if _, err := Find(context.Background(), e); !errors.Is(err, ErrNoConfig) {
		t.Errorf("off AWS: %v", err)
	}
	if hits.Load() != 0 {
		t.Errorf("the IMDS was asked %d times off AWS", hits.Load())
	}

	// On AWS with no user data.
	e = machine(t, map[string]string{"sys_vendor": "Amazon EC2"})
	e.AWSBase = imds(t, "", &hits).URL
	if _, err := Find(context.Background(), e); !errors.Is(err, ErrNoConfig) {
		t.Errorf("no user data: %v", err)
	}
}

func TestGCP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "missing Metadata-Flavor", http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case "/computeMetadata/v1/instance/attributes/user-data":
			fmt.Fprint(w, cfg)
		case "/computeMetadata/v1/instance/hostname":
			fmt.Fprint(w, "node-7.c.project.internal")
		case "/computeMetadata/v1/instance/id":
			fmt.Fprint(w, "4520965046434476399")
		case "/computeMetadata/v1/instance/network-interfaces/0/ip":
			fmt.Fprint(w, "10.128.0.7")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	e := machine(t, map[string]string{"product_name": "Google Compute Engine"})
	e.GCPBase = srv.URL
	f, err := Find(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if f.Source != "gcp" || string(f.Config) != cfg || f.Hostname != "node-7" || f.InstanceID != "4520965046434476399" ||
		f.IPv4 != "10.128.0.7" || f.Metadata["COREOS_GCE_HOSTNAME"] != "node-7.c.project.internal" {
		t.Errorf("found %+v", f)
	}
}

func TestAzure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata") != "true" || r.URL.Query().Get("api-version") == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/metadata/instance/compute/userData":
			fmt.Fprint(w, base64.StdEncoding.EncodeToString([]byte(cfg)))
		case "/metadata/instance/compute/name":
			fmt.Fprint(w, "aks-node-3")
		case "/metadata/instance/compute/vmId":
			fmt.Fprint(w, "02aab8a4-74ef-476e-8182-f6d2ba4166a6")
		case "/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress":
			fmt.Fprint(w, "10.1.0.4")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	e := machine(t, map[string]string{"chassis_asset_tag": azureAssetTag})
	e.AzureBase = srv.URL
	f, err := Find(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if f.Source != "azure" || string(f.Config) != cfg || f.Hostname != "aks-node-3" ||
		f.InstanceID != "02aab8a4-74ef-476e-8182-f6d2ba4166a6" || f.IPv4 != "10.1.0.4" || f.Metadata["COREOS_AZURE_IPV4_DYNAMIC"] != "10.1.0.4" {
		t.Errorf("found %+v", f)
	}
}

// TestCmdlineURLRetries serves the config only on the third attempt, as a
// network coming up late would, and refuses a scheme it cannot fetch.
func TestCmdlineURLRetries(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			http.Error(w, "", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, cfg)
	}))
	defer srv.Close()
	e := machine(t, nil)
	write(t, filepath.Join(e.Root, "proc/cmdline"), "ro ignition.config.url="+srv.URL+"/node.ign?sig=secret quiet\n")
	f, err := Find(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if f.Source != "cmdline:"+srv.URL+"/node.ign" || string(f.Config) != cfg || n.Load() != 3 {
		t.Errorf("found %+v after %d requests", f, n.Load())
	}
	write(t, filepath.Join(e.Root, "proc/cmdline"), "ignition.config.url=tftp://x/y\n")
	if _, err := Find(context.Background(), e); err == nil || !strings.Contains(err.Error(), "http or https") {
		t.Errorf("tftp: %v", err)
	}
}

// TestOrder puts a config in fw_cfg, on a config drive, on the live
// medium the node booted from and baked into the image: fw_cfg wins;
// without it the drive; then the medium; then the baked file.
func TestOrder(t *testing.T) {
	e := machine(t, nil)
	write(t, filepath.Join(e.Root, BakedPath), `{"ignition":{"version":"3.0.0"}}`)
	live := filepath.Join(e.Root, LiveMediaPath)
	write(t, live, `{"ignition":{"version":"3.3.0"}}`)
	drive := filepath.Join(t.TempDir(), "drive.img")
	configDrive(t, drive, "config-2", "/openstack/latest/user_data", `{"ignition":{"version":"3.1.0"}}`)
	os.MkdirAll(filepath.Join(e.Root, byLabelDir), 0o755)
	if err := os.Symlink(drive, filepath.Join(e.Root, byLabelDir, "config-2")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(e.Root, fwCfgPath), `{"ignition":{"version":"3.2.0"}}`)
	for _, want := range []struct{ source, version string }{
		{"fw_cfg", "3.2.0"}, {"config-drive:config-2", "3.1.0"}, {"live-media", "3.3.0"}, {"baked", "3.0.0"},
	} {
		f, err := Find(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		if f.Source != want.source || !strings.Contains(string(f.Config), want.version) {
			t.Errorf("found %s %s, want %s %s", f.Source, f.Config, want.source, want.version)
		}
		switch want.source {
		case "fw_cfg":
			os.Remove(filepath.Join(e.Root, fwCfgPath))
		case "config-drive:config-2":
			os.Remove(filepath.Join(e.Root, byLabelDir, "config-2"))
		case "live-media":
			os.Remove(live)
		}
	}
	os.Remove(filepath.Join(e.Root, BakedPath))
	if _, err := Find(context.Background(), e); !errors.Is(err, ErrNoConfig) {
		t.Errorf("nothing anywhere: %v", err)
	}
}

// configDrive makes a FAT volume with mkfs.vfat and puts one file in it.
func configDrive(t *testing.T, file, label, p, data string) {
	t.Helper()
	if out, err := exec.Command("mkfs.vfat", "-n", strings.ToUpper(label), "-C", file, "8192").CombinedOutput(); err != nil {
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
	if err := fs.Mkdir(path.Dir(p)); err != nil {
		t.Fatal(err)
	}
	f, err := fs.OpenFile(p, os.O_CREATE|os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(data))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
