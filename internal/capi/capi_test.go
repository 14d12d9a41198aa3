package capi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodebake/nodebake/internal/ignitioncfg"
)

func parse(t *testing.T, raw []byte) ignitioncfg.Config {
	t.Helper()
	cfg, _, err := ignitioncfg.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func read(f ignitioncfg.File) ([]byte, error) {
	return (&ignitioncfg.Fetcher{}).Contents(context.Background(), f, nil)
}

// TestFindInCABPKOutput reads the contract from Cluster API's own user
// data (make capi-fixtures).
func TestFindInCABPKOutput(t *testing.T) {
	for name, sub := range map[string]string{"init.ign": "init", "join.ign": "join", "cp-join.ign": "join"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Find(parse(t, raw), read)
		if err != nil || b == nil {
			t.Fatalf("%s: %v %v", name, b, err)
		}
		if b.Subcommand != sub || b.Pre != "echo capi-test preKubeadmCommands >/run/capi-test-pre\n" ||
			b.Post != "echo capi-test postKubeadmCommands >/run/capi-test-post\n" {
			t.Errorf("%s: %+v", name, b)
		}
	}
}

func TestParseScript(t *testing.T) {
	const tail = "mkdir -p /run/cluster-api && echo success > /run/cluster-api/bootstrap-success.complete\nmv /etc/kubeadm.yml /tmp/\n"
	for _, tc := range []struct {
		name, script, sub, pre, post string
		err                          bool
	}{
		{"none", "#!/bin/bash\nset -e\n\n\nkubeadm join --config /etc/kubeadm.yml \n" + tail + "\n", "join", "", "", false},
		{"verbosity and a multi-line command", "#!/bin/bash\nset -e\n\nfor i in 1 2; do\n  echo $i\ndone\n\nkubeadm init --config /etc/kubeadm.yml --v 5\n" + tail + "\necho done\n",
			"init", "for i in 1 2; do\n  echo $i\ndone\n", "echo done\n", false},
		{"a command that mentions kubeadm", "#!/bin/bash\nset -e\necho kubeadm join --config /etc/kubeadm.yml\nkubeadm join --config /etc/kubeadm.yml\n" + tail,
			"join", "echo kubeadm join --config /etc/kubeadm.yml\n", "", false},
		{"no set -e", "#!/bin/bash\nkubeadm join --config /etc/kubeadm.yml\n" + tail, "", "", "", true},
		{"another kubeadm command", "#!/bin/bash\nset -e\nkubeadm join --config /tmp/other.yml\n" + tail, "", "", "", true},
		{"no success file", "#!/bin/bash\nset -e\nkubeadm join --config /etc/kubeadm.yml\nmv /etc/kubeadm.yml /tmp/\n", "", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseScript([]byte(tc.script))
			if tc.err {
				if !errors.Is(err, ErrContract) {
					t.Fatalf("got %+v, %v; want ErrContract", b, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Subcommand != tc.sub || b.Pre != tc.pre || b.Post != tc.post {
				t.Errorf("got %+v", b)
			}
		})
	}
}

// TestFindRefuses: part of the contract, or a unit the agent could not
// honour, is an error naming where.
func TestFindRefuses(t *testing.T) {
	script := `{"path":"/etc/kubeadm.sh","mode":448,"contents":{"source":"data:,%23!%2Fbin%2Fbash%0Aset%20-e%0Akubeadm%20join%20--config%20%2Fetc%2Fkubeadm.yml%0Amkdir%20-p%20%2Frun%2Fcluster-api%20%26%26%20echo%20success%20%3E%20%2Frun%2Fcluster-api%2Fbootstrap-success.complete%0Amv%20%2Fetc%2Fkubeadm.yml%20%2Ftmp%2F%0A"}}`
	config := `{"path":"/etc/kubeadm.yml","mode":384,"contents":{"source":"data:,kind%3A%20JoinConfiguration"}}`
	unit := func(extra string) string {
		return `{"name":"kubeadm.service","enabled":true,"contents":"[Service]\nType=oneshot\nExecStart=/bin/bash /etc/kubeadm.sh\n"` + extra + `}`
	}
	for _, tc := range []struct{ name, cfg, says string }{
		{"no unit", `{"ignition":{"version":"3.4.0"},"storage":{"files":[` + script + `,` + config + `]}}`, "lacks the unit kubeadm.service"},
		{"no script", `{"ignition":{"version":"3.4.0"},"storage":{"files":[` + config + `]},"systemd":{"units":[` + unit("") + `]}}`, "lacks the file /etc/kubeadm.sh"},
		{"drop-in", `{"ignition":{"version":"3.4.0"},"storage":{"files":[` + script + `,` + config + `]},"systemd":{"units":[` +
			unit(`,"dropins":[{"name":"10-env.conf","contents":"[Service]\nEnvironment=X=1\n"},{"name":"20-pre.conf","contents":"[Service]\nExecStartPre=/bin/true\n"}]`) + `]}}`,
			"$.systemd.units.0.dropins.1.contents"},
		{"another ExecStart", `{"ignition":{"version":"3.4.0"},"storage":{"files":[` + script + `,` + config + `]},"systemd":{"units":[` +
			`{"name":"kubeadm.service","contents":"[Service]\nExecStart=/usr/local/bin/bootstrap\n"}]}}`, "$.systemd.units.0.contents"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Find(parse(t, []byte(tc.cfg)), read)
			var inv *ignitioncfg.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error %v, want an *InvalidError", err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%q does not say %q", err, tc.says)
			}
		})
	}
	if b, err := Find(parse(t, []byte(`{"ignition":{"version":"3.4.0"}}`)), read); b != nil || err != nil {
		t.Errorf("a config without the contract: %v %v", b, err)
	}
}

// TestFindDropins: the environment a drop-in gives the unit is the
// commands' (Cluster API's Flatcar templates read /run/metadata/flatcar
// so), and its [Unit] ordering is let go.
func TestFindDropins(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "join.ign"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, raw)
	cfg.Systemd.Units[0].Dropins = []ignitioncfg.Dropin{{Name: "10-flatcar.conf", Contents: ptr(
		"[Unit]\nRequires=containerd.service coreos-metadata.service\nAfter=containerd.service coreos-metadata.service\n" +
			"[Service]\nEnvironmentFile=/run/metadata/flatcar\nEnvironment=\"A=one two\" B=3\nEnvironmentFile=-/etc/optional.env\n")}}
	b, err := Find(cfg, read)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(b.Env, "|") != "A=one two|B=3" ||
		len(b.EnvFiles) != 2 || b.EnvFiles[0] != (EnvFile{Path: "/run/metadata/flatcar"}) || b.EnvFiles[1] != (EnvFile{Path: "/etc/optional.env", Optional: true}) {
		t.Errorf("env %q, files %+v", b.Env, b.EnvFiles)
	}
}

func ptr[T any](v T) *T { return &v }

func TestReadEnvFile(t *testing.T) {
	env, err := ReadEnvFile([]byte("# afterburn\nCOREOS_EC2_HOSTNAME=ip-10-0-0-1.ec2.internal\n\n; x\nQ=\"a b\"\nS='c'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(env, "|") != "COREOS_EC2_HOSTNAME=ip-10-0-0-1.ec2.internal|Q=a b|S=c" {
		t.Errorf("env %q", env)
	}
	if _, err := ReadEnvFile([]byte("just words\n")); err == nil {
		t.Error("a line that is not NAME=VALUE was read")
	}
}
