package ignitioncfg

import (
	"fmt"
	"path"
	"strings"
)

// Writable are the trees of a nodebake node that persist and can be
// written: /etc (an overlay on the state partition), /var and the homes
// linked into it, and /run, which lasts until shutdown. Everything else is
// the read-only root.
var Writable = []string{"/etc", "/var", "/root", "/home", "/run"}

// SecretPaths are files that always get mode 0600 whatever the config
// says: they hold bootstrap tokens or certificate keys.
var SecretPaths = []string{"/etc/kubernetes/kubeadm.yaml"}

// Check finds every path the config would write and reports those it
// cannot: outside Writable, not absolute, or a unit name with a folder in
// it. It writes nothing. A non-empty result means nothing may be applied.
func Check(c Config) []Problem {
	var out []Problem
	bad := func(p, format string, args ...any) {
		out = append(out, Problem{Kind: "error", Path: p, Message: fmt.Sprintf(format, args...), Fatal: true})
	}
	checkPath := func(jsonPath, p string) {
		if !path.IsAbs(p) || path.Clean(p) != p {
			bad(jsonPath, "%q must be a clean absolute path", p)
			return
		}
		if !isWritable(p) {
			bad(jsonPath, "%s is on the %s root filesystem; a node writes only under %s", p, ErrReadOnly, strings.Join(Writable, ", "))
		}
	}
	for i, f := range c.Storage.Files {
		checkPath(fmt.Sprintf("$.storage.files.%d.path", i), f.Path)
	}
	for i, d := range c.Storage.Directories {
		checkPath(fmt.Sprintf("$.storage.directories.%d.path", i), d.Path)
	}
	for i, l := range c.Storage.Links {
		checkPath(fmt.Sprintf("$.storage.links.%d.path", i), l.Path)
		if l.Hard != nil && *l.Hard {
			bad(fmt.Sprintf("$.storage.links.%d.hard", i), "hard links are not supported by nodebake; use a symbolic link")
		}
	}
	for i, u := range c.Systemd.Units {
		if strings.Contains(u.Name, "/") || u.Name == "" {
			bad(fmt.Sprintf("$.systemd.units.%d.name", i), "%q is not a unit name", u.Name)
		}
		for j, d := range u.Dropins {
			if strings.Contains(d.Name, "/") || !strings.HasSuffix(d.Name, ".conf") {
				bad(fmt.Sprintf("$.systemd.units.%d.dropins.%d.name", i, j), "%q is not a drop-in name (NAME.conf)", d.Name)
			}
		}
	}
	for i, u := range c.Passwd.Users {
		if u.HomeDir != nil && !isWritable(*u.HomeDir) {
			bad(fmt.Sprintf("$.passwd.users.%d.homeDir", i), "%s is on the %s root filesystem", *u.HomeDir, ErrReadOnly)
		}
	}
	return out
}

func isWritable(p string) bool {
	for _, w := range Writable {
		if p == w || strings.HasPrefix(p, w+"/") {
			return true
		}
	}
	return false
}

func isSecret(p string) bool {
	for _, s := range SecretPaths {
		if p == s {
			return true
		}
	}
	return false
}
