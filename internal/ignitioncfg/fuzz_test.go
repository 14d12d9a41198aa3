package ignitioncfg

import (
	"path"
	"strings"
	"testing"

	"github.com/nodebake/nodebake/internal/rootpath"
)

// FuzzParseCheck: parsing and checking never panic, and every config
// they accept names only clean paths under the writable trees (inside the
// node's root once resolved), user and group names that are names, and
// unit names that are not options or paths.
func FuzzParseCheck(f *testing.F) {
	for _, seed := range []string{
		`{"ignition":{"version":"3.4.0"}}`,
		`{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/kubernetes/kubeadm.yaml","mode":384,"contents":{"source":"data:,kind%3A%20InitConfiguration"}}],"directories":[{"path":"/var/lib/x"}],"links":[{"path":"/etc/l","target":"/usr/bin/true"}]}}`,
		`{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core","homeDir":"/home/core","sshAuthorizedKeys":["ssh-ed25519 AAAA"]}],"groups":[{"name":"ops"}]}}`,
		`{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"x.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n","dropins":[{"name":"10.conf","contents":"[Unit]\n"}]}]}}`,
		`{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/home/../usr/lib/evil"}]}}`,
		`{"ignition":{"version":"2.3.0"}}`,
		`{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/x","mode":420,"contents":{"source":"data:,x"}}]},"systemd":{"units":[{"name":"x.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n"}]},"networkd":{}}`,
		`{"ignition":{"version":"2.3.0"},"storage":{"filesystems":[{"name":"oem","mount":{"device":"/dev/vda6","format":"ext4"}}],"files":[{"filesystem":"oem","path":"/x"}]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, _, err := Parse(raw)
		if err != nil {
			return
		}
		for _, p := range Check(cfg) {
			if p.Fatal {
				return
			}
		}
		clean := func(what, p string) {
			if !path.IsAbs(p) || path.Clean(p) != p || !isWritable(p) {
				t.Fatalf("accepted %s %q: not a clean path under %v", what, p, Writable)
			}
			if host := rootpath.Join("/node", p); host != "/node"+p {
				t.Fatalf("accepted %s %q: resolves to %q outside the node's root", what, p, host)
			}
		}
		for _, x := range cfg.Storage.Files {
			clean("file", x.Path)
		}
		for _, x := range cfg.Storage.Directories {
			clean("directory", x.Path)
		}
		for _, x := range cfg.Storage.Links {
			clean("link", x.Path)
		}
		for _, u := range cfg.Passwd.Users {
			if !userRE.MatchString(u.Name) {
				t.Fatalf("accepted user %q", u.Name)
			}
			if u.HomeDir != nil {
				clean("homeDir", *u.HomeDir)
			}
		}
		for _, g := range cfg.Passwd.Groups {
			if !userRE.MatchString(g.Name) {
				t.Fatalf("accepted group %q", g.Name)
			}
		}
		for _, u := range cfg.Systemd.Units {
			if strings.HasPrefix(u.Name, "-") || strings.ContainsAny(u.Name, "/ \x00\n") || !unitRE.MatchString(u.Name) {
				t.Fatalf("accepted unit %q", u.Name)
			}
			for _, d := range u.Dropins {
				if strings.Contains(d.Name, "/") {
					t.Fatalf("accepted drop-in %q", d.Name)
				}
			}
		}
	})
}
