package ignitioncfg

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestParseTranslatesEverySpec3 parses the same config written for each
// spec from 3.0 to 3.5 and gets it at 3.5.
func TestParseTranslatesEverySpec3(t *testing.T) {
	for _, v := range []string{"3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0"} {
		t.Run(v, func(t *testing.T) {
			raw := fmt.Sprintf(`{"ignition":{"version":%q},"storage":{"files":[{"path":"/etc/hello","contents":{"source":"data:,hi"},"mode":420}]},
				"systemd":{"units":[{"name":"hello.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n"}]}}`, v)
			cfg, _, err := Parse([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Ignition.Version != "3.5.0" {
				t.Errorf("version %s, want 3.5.0", cfg.Ignition.Version)
			}
			if len(cfg.Storage.Files) != 1 || cfg.Storage.Files[0].Path != "/etc/hello" || *cfg.Storage.Files[0].Mode != 0o644 {
				t.Errorf("files %+v", cfg.Storage.Files)
			}
			if len(cfg.Systemd.Units) != 1 || !*cfg.Systemd.Units[0].Enabled {
				t.Errorf("units %+v", cfg.Systemd.Units)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		is        error
		says      []string
	}{
		{"spec 2.1", `{"ignition":{"version":"2.1.0"}}`, ErrVersion, []string{"2.1.0", "nodebake reads 2.2.0, 2.3.0 and 3.0.0 to 3.5.0"}},
		{"spec 2.4", `{"ignition":{"version":"2.4.0"}}`, ErrVersion, []string{"2.4.0"}},
		{"unknown version", `{"ignition":{"version":"3.6.0-experimental"}}`, ErrVersion, []string{"3.6.0-experimental"}},
		{"not JSON", `ignition: {version: 3.4.0}`, nil, []string{"invalid Ignition config"}},
		{"relative path", `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"etc/x"}]}}`, nil,
			[]string{"$.storage.files.0.path"}},
		{"partitions", `{"ignition":{"version":"3.4.0"},"storage":{"disks":[{"device":"/dev/vda","wipeTable":true}]}}`, nil,
			[]string{"$.storage.disks", "not supported by nodebake"}},
		{"merge", `{"ignition":{"version":"3.4.0","config":{"merge":[{"source":"http://127.0.0.1/x.ign"}]}}}`, nil,
			[]string{"$.ignition.config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tc.raw))
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestCheckRefusesTheReadOnlyRoot(t *testing.T) {
	cfg, _, err := Parse([]byte(`{"ignition":{"version":"3.4.0"},"storage":{
		"files":[{"path":"/etc/ok"},{"path":"/usr/local/bin/tool"},{"path":"/var/lib/x"}],
		"directories":[{"path":"/opt/data"}],
		"links":[{"path":"/root/l","target":"/etc/ok","hard":true}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	problems := Check(cfg)
	var got []string
	for _, p := range problems {
		got = append(got, p.Path)
	}
	want := []string{"$.storage.files.1.path", "$.storage.directories.0.path", "$.storage.links.0.hard"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("problems at %v, want %v: %v", got, want, problems)
	}
	if !strings.Contains(problems[0].Message, "read-only") {
		t.Errorf("message %q", problems[0].Message)
	}
}

// TestCheckRefusesWhatTheNodeWouldRefuse: sources a node cannot fetch,
// user and group names that are options or paths, a homeDir that climbs
// out of /home, and unit names that would reach systemctl as an option.
func TestCheckRefusesWhatTheNodeWouldRefuse(t *testing.T) {
	cfg, _, err := Parse([]byte(`{"ignition":{"version":"3.4.0"},
		"storage":{"files":[
			{"path":"/etc/a","contents":{"source":"s3://bucket/a"}},
			{"path":"/etc/b","contents":{"source":"data:,ok"},"append":[{"source":"tftp://10.0.0.1/b"}]},
			{"path":"/etc/c","contents":{"source":"https://example.invalid/c"}}]},
		"passwd":{"users":[{"name":"../x"},{"name":"-o"},{"name":""},{"name":"core","homeDir":"/home/../usr/lib/evil"},{"name":"ok_user-1"}],
			"groups":[{"name":"-g"}]},
		"systemd":{"units":[{"name":"--root=.service"},{"name":"ok@1.service"},{"name":"dev-disk-by\\x2dlabel.mount"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range Check(cfg) {
		got = append(got, p.Path)
	}
	want := []string{
		"$.storage.files.0.contents.source", "$.storage.files.1.append.0.source",
		"$.systemd.units.0.name",
		"$.passwd.users.0.name", "$.passwd.users.1.name", "$.passwd.users.2.name", "$.passwd.users.3.homeDir",
		"$.passwd.groups.0.name",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("problems at\n%v, want\n%v", got, want)
	}
}
