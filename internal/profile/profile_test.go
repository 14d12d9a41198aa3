package profile

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestDefaultsGolden fills the defaults of each testdata/*.yaml profile and
// compares the result with its .golden file.
func TestDefaultsGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/defaults-*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			p, problems := Parse(data)
			if len(problems) > 0 {
				t.Fatalf("parse: %v", problems)
			}
			if problems := Validate(p, ""); len(problems) > 0 {
				t.Fatalf("validate: %v", problems)
			}
			got, err := yaml.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if string(got) != string(want) {
				t.Errorf("defaults of %s differ from %s:\n%s", in, golden, got)
			}
		})
	}
}

func TestRepositoryProfilesAreValid(t *testing.T) {
	profiles, _ := filepath.Glob("../../profiles/*.yaml")
	if len(profiles) == 0 {
		t.Fatal("no profiles found")
	}
	for _, path := range profiles {
		if _, err := Load(path, "../.."); err != nil {
			t.Errorf("%v", err)
		}
	}
}

const validDoc = `apiVersion: nodebake.dev/v1alpha1
kind: Profile
metadata:
  name: ok
spec: {}
`

func TestValidateReportsEveryProblemWithItsPath(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []string // each must appear in one problem
	}{
		{"unknown top-level field", validDoc + "extra: 1\n", []string{"extra: unknown field"}},
		{"unknown nested field", strings.Replace(validDoc, "spec: {}", "spec:\n  disk:\n    rootsize: 2GiB\n  outputs: {color: red}", 1),
			[]string{"spec.disk.rootsize: unknown field", "spec.outputs.color: unknown field"}},
		{"wrong type", strings.Replace(validDoc, "spec: {}", "spec:\n  overlays: node", 1), []string{"spec.overlays: must be a list"}},
		{"not a mapping", "- a\n- b\n", []string{"(document): must be a mapping"}},
		{"bad apiVersion and kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\n",
			[]string{`apiVersion: must be "nodebake.dev/v1alpha1"`, `kind: must be "Profile"`}},
		{"bad name", strings.Replace(validDoc, "name: ok", "name: Not_OK", 1), []string{"metadata.name: must be lower-case"}},
		{"suite", strings.Replace(validDoc, "spec: {}", "spec:\n  base: {suite: sid}", 1), []string{"spec.base.suite: must be one of bookworm, trixie"}},
		{"package and mirror", strings.Replace(validDoc, "spec: {}", "spec:\n  base: {packages: [vim, 'bad name'], mirror: 'ftp://x'}", 1),
			[]string{`spec.base.packages[1]: "bad name" is not a Debian package name`, "spec.base.mirror: must be an http or https URL"}},
		{"small root", strings.Replace(validDoc, "spec: {}", "spec:\n  disk: {rootSize: 512MiB}", 1), []string{"spec.disk.rootSize: must be at least 1GiB"}},
		{"sizes", strings.Replace(validDoc, "spec: {}", "spec:\n  disk: {espSize: 8GiB, stateSize: lots}", 1),
			[]string{"spec.disk.espSize: must be at most 4GiB", `spec.disk.stateSize: "lots" is not a size`}},
		{"owned kernel args", strings.Replace(validDoc, "spec: {}", "spec:\n  kernel: {cmdline: [root=/dev/sda1, 'a b', quiet]}", 1),
			[]string{`spec.kernel.cmdline[0]: "root=/dev/sda1" is set by the builder`, "spec.kernel.cmdline[1]: must be one argument"}},
		{"sysctl and module", strings.Replace(validDoc, "spec: {}", "spec:\n  node: {sysctls: {'bad key': '1', vm.swappiness: ''}, modules: ['a/b']}", 1),
			[]string{"spec.node.sysctls[bad key]: is not a sysctl name", "spec.node.sysctls[vm.swappiness]: value must be non-empty", `spec.node.modules[0]: "a/b" is not a kernel module name`}},
		{"units and overlays", strings.Replace(validDoc, "spec: {}", "spec:\n  overlays: [../etc]\n  units: {files: [x.conf], enable: ['bad unit']}", 1),
			[]string{`spec.overlays[0]: "../etc" is not a folder name`, `spec.units.files[0]: "x.conf" is not a unit file name`, `spec.units.enable[0]: "bad unit" is not a unit name`}},
		{"kit network", strings.Replace(validDoc, "spec: {}", "spec:\n  kit:\n    network: {plugin: calico}", 1),
			[]string{`spec.kit.network.plugin: must be "flannel" or "none", not "calico"`}},
		{"flannel network", strings.Replace(validDoc, "spec: {}", "spec:\n  kit:\n    network: {podCIDR: 10.244.1.0/16, version: latest}", 1),
			[]string{"spec.kit.network.version: must be a version such as v0.28.10", "spec.kit.network.podCIDR: must be an IPv4 network from /8 to /24"}},
		{"no network", strings.Replace(validDoc, "spec: {}", "spec:\n  kit:\n    network: {plugin: none, podCIDR: 10.244.0.0/16}\n    components:\n      flannel-cni: {version: v0.9.1}", 1),
			[]string{"spec.kit.network: plugin none takes no version or podCIDR", "spec.kit.components.flannel-cni: only a kit whose network plugin is flannel has it"}},
		{"kit versions and skew", strings.Replace(validDoc, "spec: {}", "spec:\n  kit:\n    kubernetesVersion: v1.37\n    components:\n      kubelet: {version: v1.36.3}\n      containerd: {version: v1.7.20}\n      runc: {source: url}\n      crictl: {source: ftp}\n      cni-plugins: {source: file, path: rel/cni.tgz, sha256: ABC}\n      docker: {version: v1.0.0}", 1),
			[]string{"spec.kit.kubernetesVersion: must be a version such as v1.37.2", "spec.kit.components.kubelet.version: kubelet must be the Kubernetes version",
				"spec.kit.components.containerd.version: containerd must be 2.0 or later", `spec.kit.components.runc.url: must be an http or https URL, not ""`, `spec.kit.components.crictl.source: must be "go", "url" or "file", not "ftp"`,
				`spec.kit.components.cni-plugins.path: must be an absolute path, not "rel/cni.tgz"`, "spec.kit.components.cni-plugins.sha256: must be 64 lowercase hex digits",
				"spec.kit.components.docker: unknown component", `spec.kit.components.kubeadm.version: must be a version such as v1.2.3, not "v1.37"`, `spec.kit.components.kubectl.version: must be a version such as v1.2.3, not "v1.37"`}},
		{"ova firmware", strings.Replace(validDoc, "spec: {}", "spec:\n  outputs: {formats: [ova], ovaFirmware: uefi}", 1),
			[]string{`spec.outputs.ovaFirmware: must be efi or bios, not "uefi"`}},
		{"outputs and epoch", strings.Replace(validDoc, "spec: {}", "spec:\n  outputs: {formats: [vmdk, vdi, vmdk], ovaFirmware: efi}\n  sourceDateEpoch: 5", 1),
			[]string{"spec.outputs.ovaFirmware: applies to the ova format", `spec.outputs.formats[1]: must be one of raw, qcow2, vhd, vmdk, ova, gce, iso, pxe, not "vdi"`, `spec.outputs.formats[2]: "vmdk" is named twice`, "spec.sourceDateEpoch: must be at least 315532800"}},
		{"epoch past squashfs", strings.Replace(validDoc, "spec: {}", "spec:\n  sourceDateEpoch: 4294967296", 1),
			[]string{"spec.sourceDateEpoch: must be at most 4294967295 (2106-02-07"}},
		{"sizes past the layout", strings.Replace(validDoc, "spec: {}", "spec:\n  disk: {rootSize: 4194304TiB, stateSize: 17TiB}", 1),
			[]string{"spec.disk.rootSize: must be at most 1TiB", "spec.disk.stateSize: must be at most 16TiB"}},
		{"control characters and a bare owned argument", strings.Replace(validDoc, "spec: {}", "spec:\n  kernel: {cmdline: [\"quiet\\rroot=/dev/sdb\", \"a\\vb\", \"c\\fd\", \"e\\0f\", systemd.gpt_auto]}", 1),
			[]string{"spec.kernel.cmdline[0]: must be one argument without spaces, quotes or control characters", "spec.kernel.cmdline[1]: must be one argument",
				"spec.kernel.cmdline[2]: must be one argument", "spec.kernel.cmdline[3]: must be one argument", `spec.kernel.cmdline[4]: "systemd.gpt_auto" is set by the builder`}},
		{"a pod network of everything", strings.Replace(validDoc, "spec: {}", "spec:\n  kit:\n    network: {podCIDR: 0.0.0.0/0}", 1),
			[]string{"spec.kit.network.podCIDR: must be an IPv4 network from /8 to /24"}},
		{"output in the root", strings.Replace(validDoc, "spec: {}", "spec:\n  outputs: {dir: /}", 1), []string{`spec.outputs.dir: "/" is the root folder`}},
		{"output in /etc", strings.Replace(validDoc, "spec: {}", "spec:\n  outputs: {dir: /etc/nodebake}", 1), []string{`spec.outputs.dir: "/etc/nodebake" is in the system folder /etc`}},
		{"output climbing to the root", strings.Replace(validDoc, "spec: {}", "spec:\n  outputs: {dir: ../../../../../../../..}", 1), []string{"is the root folder"}},
		{"output is /var", strings.Replace(validDoc, "spec: {}", "spec:\n  outputs: {dir: /var}", 1), []string{`spec.outputs.dir: "/var" is a system folder itself`}},
		{"a key given twice", strings.Replace(validDoc, "spec: {}", "spec:\n  disk: {rootSize: 2GiB}\n  disk: {rootSize: 4GiB}", 1), []string{`key "disk" already set in map`}},
		{"registry mirror", strings.Replace(validDoc, "spec: {}", "spec:\n  kit:\n    registryMirror: https://mirror.example/v2", 1),
			[]string{`spec.kit.registryMirror: must be a registry host, HOST or HOST:PORT such as registry.example:5000, not "https://mirror.example/v2"`}},
		{"registry mirror port", strings.Replace(validDoc, "spec: {}", "spec:\n  kit:\n    registryMirror: mirror.example:99999", 1),
			[]string{`spec.kit.registryMirror: must be a registry host`}},
		{"output is a file", strings.Replace(validDoc, "spec: {}", "spec:\n  outputs: {dir: /dev/null}", 1), []string{`spec.outputs.dir: "/dev/null" is in the system folder /dev`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, problems := Parse([]byte(tc.doc))
			if len(problems) == 0 {
				problems = Validate(p, "")
			}
			if len(problems) != len(tc.want) {
				t.Errorf("got %d problems, want %d: %v", len(problems), len(tc.want), problems)
			}
			for _, w := range tc.want {
				found := false
				for _, pr := range problems {
					found = found || strings.Contains(pr.String(), w)
				}
				if !found {
					t.Errorf("no problem %q in %v", w, problems)
				}
			}
		})
	}
}

func TestValidateChecksSourcesExist(t *testing.T) {
	doc := strings.Replace(validDoc, "spec: {}", "spec:\n  overlays: [nope]\n  units: {files: [nope.service]}", 1)
	p, problems := Parse([]byte(doc))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	problems = Validate(p, t.TempDir())
	if len(problems) != 2 || !strings.Contains(problems[0].String(), "overlays/nope does not exist") ||
		!strings.Contains(problems[1].String(), "systemd/nope.service does not exist") {
		t.Errorf("problems %v", problems)
	}
}

func TestDigestIsStableAndSensitive(t *testing.T) {
	a, _ := Parse([]byte(validDoc))
	b, _ := Parse([]byte(validDoc))
	if a.Digest() != b.Digest() {
		t.Error("the same profile has two digests")
	}
	c, _ := Parse([]byte(strings.Replace(validDoc, "spec: {}", "spec:\n  node: {sysctls: {vm.swappiness: '0'}}", 1)))
	if a.Digest() == c.Digest() {
		t.Error("a changed profile kept its digest")
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "4KiB": 4096, "512MiB": 512 << 20, "2GiB": 2 << 30, "1TiB": 1 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1GiB", "2GB", "1.5GiB", "GiB", "99999999999TiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		}
	}
	if got := FormatSize(1 << 30); got != "1GiB" {
		t.Errorf("FormatSize = %q", got)
	}
}

func TestValidateRefusesAnOutputFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p, problems := Parse([]byte(strings.Replace(validDoc, "spec: {}", "spec:\n  outputs: {dir: "+file+"}", 1)))
	if len(problems) == 0 {
		problems = Validate(p, "")
	}
	if len(problems) != 1 || !strings.Contains(problems[0].String(), "is an existing file, not a folder") {
		t.Errorf("problems %v", problems)
	}
}
