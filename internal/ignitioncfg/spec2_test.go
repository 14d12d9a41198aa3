package ignitioncfg

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// capiFixture is user data from Cluster API's own generator (make
// capi-fixtures).
func capiFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "capi", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseClusterAPI reads the spec 2.3.0 configs Cluster API's kubeadm
// bootstrap provider writes and gets them at 3.5 with everything in
// place: its kubeadm config and script, its unit, and for control
// planes the cluster's CAs with their modes and owner.
func TestParseClusterAPI(t *testing.T) {
	for _, tc := range []struct {
		name string
		pki  bool
	}{{"init.ign", true}, {"join.ign", false}, {"cp-join.ign", true}} {
		t.Run(tc.name, func(t *testing.T) {
			raw := capiFixture(t, tc.name)
			if !strings.Contains(string(raw), `"version":"2.3.0"`) {
				t.Fatalf("the fixture is not spec 2.3.0")
			}
			cfg, problems, err := Parse(raw)
			if err != nil {
				t.Fatalf("%v (%v)", err, problems)
			}
			if cfg.Ignition.Version != "3.5.0" {
				t.Errorf("version %s", cfg.Ignition.Version)
			}
			if ps := Check(cfg); len(ps) > 0 {
				t.Errorf("Check: %v", ps)
			}
			modes := map[string]int{}
			for _, f := range cfg.Storage.Files {
				if f.Mode == nil {
					t.Errorf("%s: no mode", f.Path)
					continue
				}
				modes[f.Path] = *f.Mode
				if strings.HasPrefix(f.Path, "/etc/kubernetes/pki/") && (f.User.Name == nil || *f.User.Name != "root") {
					t.Errorf("%s: user %v, want root", f.Path, f.User)
				}
				if f.Contents.Source == nil || !strings.HasPrefix(*f.Contents.Source, "data:") {
					t.Errorf("%s: source %v", f.Path, f.Contents.Source)
				}
			}
			want := map[string]int{"/etc/kubeadm.yml": 0o600, "/etc/kubeadm.sh": 0o700}
			if tc.pki {
				for _, p := range []string{"ca", "etcd/ca", "front-proxy-ca"} {
					want["/etc/kubernetes/pki/"+p+".crt"] = 0o640
					want["/etc/kubernetes/pki/"+p+".key"] = 0o600
				}
				want["/etc/kubernetes/pki/sa.pub"] = 0o640
				want["/etc/kubernetes/pki/sa.key"] = 0o600
			}
			for p, m := range want {
				if got, ok := modes[p]; !ok || got != m {
					t.Errorf("%s: mode %o (present %v), want %o", p, got, ok, m)
				}
			}
			if len(modes) != len(want) {
				t.Errorf("files %v, want %v", modes, want)
			}
			if len(cfg.Systemd.Units) != 1 || cfg.Systemd.Units[0].Name != "kubeadm.service" ||
				cfg.Systemd.Units[0].Enabled == nil || !*cfg.Systemd.Units[0].Enabled ||
				!strings.Contains(*cfg.Systemd.Units[0].Contents, "ExecStart=/bin/bash /etc/kubeadm.sh") {
				t.Errorf("units %+v", cfg.Systemd.Units)
			}
		})
	}
}

// TestParseSpec22 reads a 2.2 config, translated through 2.3 and 3.0.
func TestParseSpec22(t *testing.T) {
	cfg, _, err := Parse([]byte(`{"ignition":{"version":"2.2.0"},
		"storage":{"files":[{"filesystem":"root","path":"/etc/hello","mode":420,"contents":{"source":"data:,hi"}}],
			"directories":[{"filesystem":"root","path":"/var/lib/hello","mode":493}],
			"links":[{"filesystem":"root","path":"/etc/hello.link","target":"/etc/hello"}]},
		"systemd":{"units":[{"name":"hello.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n",
			"dropins":[{"name":"10-x.conf","contents":"[Service]\nEnvironment=X=1\n"}]}]},
		"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEIQczXkVx9q core"]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Storage.Files) != 1 || *cfg.Storage.Files[0].Mode != 0o644 || *cfg.Storage.Files[0].Contents.Source != "data:,hi" ||
		len(cfg.Storage.Directories) != 1 || len(cfg.Storage.Links) != 1 || *cfg.Storage.Links[0].Target != "/etc/hello" {
		t.Errorf("storage %+v", cfg.Storage)
	}
	if len(cfg.Systemd.Units) != 1 || len(cfg.Systemd.Units[0].Dropins) != 1 || len(cfg.Passwd.Users) != 1 ||
		len(cfg.Passwd.Users[0].SSHAuthorizedKeys) != 1 {
		t.Errorf("systemd %+v passwd %+v", cfg.Systemd, cfg.Passwd)
	}
}

// TestParseSpec2Untranslatable: what spec 3 has no place for is refused
// with its JSON path in the 2.x config, and nothing else.
func TestParseSpec2Untranslatable(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		paths     []string
	}{
		{"networkd", `{"ignition":{"version":"2.3.0"},"networkd":{"units":[{"name":"00-eth0.network","contents":"[Match]\nName=eth0\n"}]}}`,
			[]string{"$.networkd.units.0"}},
		{"filesystem", `{"ignition":{"version":"2.3.0"},"storage":{
			"filesystems":[{"name":"oem","mount":{"device":"/dev/disk/by-label/OEM","format":"ext4"}}],
			"files":[{"filesystem":"root","path":"/etc/ok"},{"filesystem":"oem","path":"/grub.cfg"}]}}`,
			[]string{"$.storage.filesystems.0.name", "$.storage.files.1.filesystem"}},
		{"duplicate path", `{"ignition":{"version":"2.2.0"},"storage":{
			"files":[{"filesystem":"root","path":"/etc/x"}],"directories":[{"filesystem":"root","path":"/etc/x/"}]}}`,
			[]string{"$.storage.directories.0.path"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, problems, err := Parse([]byte(tc.raw))
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error %v, want an *InvalidError", err)
			}
			var got []string
			for _, p := range problems {
				if p.Fatal {
					got = append(got, p.Path)
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.paths, " ") {
				t.Errorf("fatal problems at %v, want %v: %v", got, tc.paths, problems)
			}
		})
	}
}

// TestParseSpec2Invalid: a 2.x config that Ignition's 2.x parser finds
// invalid is refused with its report, and a 2.x translation that the
// 3.x rules refuse is refused as a 3.x config would be.
func TestParseSpec2Invalid(t *testing.T) {
	for _, tc := range []struct{ name, raw, says string }{
		{"relative path", `{"ignition":{"version":"2.3.0"},"storage":{"files":[{"filesystem":"root","path":"etc/x"}]}}`, "absolute"},
		{"not JSON", `{"ignition":{"version":"2.3.0"},`, "invalid Ignition config"},
		{"partitions", `{"ignition":{"version":"2.3.0"},"storage":{"disks":[{"device":"/dev/vda","wipeTable":true}]}}`, "not supported by nodebake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, problems, err := Parse([]byte(tc.raw))
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error %v, want an *InvalidError", err)
			}
			all := err.Error()
			for _, p := range problems {
				all += "\n" + p.String()
			}
			if !strings.Contains(all, tc.says) {
				t.Errorf("%q does not say %q", all, tc.says)
			}
		})
	}
}

// TestParseSpec2MergesUnits: entries of one unit are merged as Ignition
// 2.x applies them in turn, as Cluster API writes kubeadm.service when
// additionalConfig adds it a drop-in.
func TestParseSpec2MergesUnits(t *testing.T) {
	cfg, _, err := Parse(capiFixture(t, "join-flatcar.ign"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Systemd.Units) != 1 {
		t.Fatalf("units %+v", cfg.Systemd.Units)
	}
	u := cfg.Systemd.Units[0]
	if u.Name != "kubeadm.service" || u.Contents == nil || !strings.Contains(*u.Contents, "ExecStart=/bin/bash /etc/kubeadm.sh") ||
		u.Enabled == nil || !*u.Enabled || len(u.Dropins) != 1 || u.Dropins[0].Name != "10-flatcar.conf" ||
		!strings.Contains(*u.Dropins[0].Contents, "EnvironmentFile=/run/metadata/flatcar") {
		t.Errorf("unit %+v", u)
	}
	cfg, _, err = Parse([]byte(`{"ignition":{"version":"2.3.0"},"systemd":{"units":[
		{"name":"a.service","contents":"[Service]\nExecStart=/bin/a\n","dropins":[{"name":"1.conf","contents":"[Unit]\n"}]},
		{"name":"a.service","enabled":true,"dropins":[{"name":"1.conf","contents":"[Service]\n"},{"name":"2.conf","contents":"[Unit]\n"}]},
		{"name":"a.service","contents":"[Service]\nExecStart=/bin/b\n"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	u = cfg.Systemd.Units[0]
	if len(cfg.Systemd.Units) != 1 || *u.Contents != "[Service]\nExecStart=/bin/b\n" || !*u.Enabled ||
		len(u.Dropins) != 2 || *u.Dropins[0].Contents != "[Service]\n" || u.Dropins[1].Name != "2.conf" {
		t.Errorf("merged %+v", cfg.Systemd.Units)
	}
}
