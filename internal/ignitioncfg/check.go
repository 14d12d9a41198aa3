package ignitioncfg

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

var (
	// userRE is a name useradd and groupadd take, and no option or path.
	userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	// unitRE is a systemd unit name; none starts with '-', so none
	// reaches systemctl as an option.
	unitRE = regexp.MustCompile(`^[a-zA-Z0-9_:.@\\][a-zA-Z0-9_:.@\\-]*\.(service|socket|device|mount|automount|swap|target|path|timer|slice|scope)$`)
)

// Schemes are the sources a node fetches a resource from.
var Schemes = []string{"data", "http", "https"}

// Writable are the trees of a nodebake node that persist and can be
// written: /etc (an overlay on the state partition), /var and the homes
// linked into it, and /run, which lasts until shutdown. Everything else is
// the read-only root.
var Writable = []string{"/etc", "/var", "/root", "/home", "/run"}

// SecretPaths are files that always get mode 0600 whatever the config
// says: they hold bootstrap tokens or certificate keys.
var SecretPaths = []string{"/etc/kubernetes/kubeadm.yaml", "/etc/kubeadm.yml"}

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
	checkSource := func(jsonPath string, src *string) {
		if src == nil {
			return
		}
		u, err := url.Parse(*src)
		if err != nil || !slices.Contains(Schemes, u.Scheme) {
			bad(jsonPath, "%.80q: a node fetches only %s sources", *src, strings.Join(Schemes, ", "))
		}
	}
	for i, f := range c.Storage.Files {
		checkPath(fmt.Sprintf("$.storage.files.%d.path", i), f.Path)
		checkSource(fmt.Sprintf("$.storage.files.%d.contents.source", i), f.Contents.Source)
		for j, a := range f.Append {
			checkSource(fmt.Sprintf("$.storage.files.%d.append.%d.source", i, j), a.Source)
		}
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
		if !unitRE.MatchString(u.Name) {
			bad(fmt.Sprintf("$.systemd.units.%d.name", i), "%q is not a unit name", u.Name)
		}
		for j, d := range u.Dropins {
			if strings.Contains(d.Name, "/") || !strings.HasSuffix(d.Name, ".conf") {
				bad(fmt.Sprintf("$.systemd.units.%d.dropins.%d.name", i, j), "%q is not a drop-in name (NAME.conf)", d.Name)
			}
		}
	}
	for i, u := range c.Passwd.Users {
		if !userRE.MatchString(u.Name) {
			bad(fmt.Sprintf("$.passwd.users.%d.name", i), "%q is not a user name: a lower-case letter or '_', then letters, digits, '_' or '-', at most 32", u.Name)
		}
		if u.HomeDir != nil {
			checkPath(fmt.Sprintf("$.passwd.users.%d.homeDir", i), *u.HomeDir)
		}
	}
	for i, g := range c.Passwd.Groups {
		if !userRE.MatchString(g.Name) {
			bad(fmt.Sprintf("$.passwd.groups.%d.name", i), "%q is not a group name", g.Name)
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
