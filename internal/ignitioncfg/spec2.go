package ignitioncfg

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/coreos/go-semver/semver"
	"github.com/coreos/ign-converter/translate/v23tov30"
	v2errors "github.com/coreos/ignition/config/shared/errors"
	v2_3 "github.com/coreos/ignition/config/v2_3"
	v2types "github.com/coreos/ignition/config/v2_3/types"
	v2report "github.com/coreos/ignition/config/validate/report"
)

// spec2Versions are the 2.x specs read, those Cluster API's kubeadm
// bootstrap provider and Flatcar-era tools write.
var spec2Versions = []semver.Version{{Major: 2, Minor: 2}, {Major: 2, Minor: 3}}

// translateSpec2 parses a spec 2.2 or 2.3 config with Ignition's own 2.x
// config package and translates it to spec 3.0 with ign-converter, as
// JSON for the 3.x parser to read like any other. What spec 3 has no
// place for (networkd units, filesystems other than the root) is an
// *InvalidError naming its JSON path.
func translateSpec2(raw []byte, v semver.Version) ([]byte, []Problem, error) {
	if !supported2(v) {
		return nil, nil, fmt.Errorf("%w: ignition.version %q; nodebake reads 2.2.0, 2.3.0 and 3.0.0 to 3.5.0", ErrVersion, v)
	}
	old, rpt, err := v2_3.Parse(raw)
	problems := problemsOf2(rpt)
	if err != nil {
		if errors.Is(err, v2errors.ErrUnknownVersion) || errors.Is(err, v2errors.ErrInvalidVersion) {
			return nil, problems, fmt.Errorf("%w: ignition.version %q", ErrVersion, v)
		}
		if !fatal(problems) {
			problems = append(problems, Problem{Kind: "error", Message: err.Error(), Fatal: true})
		}
		return nil, problems, &InvalidError{Problems: problems}
	}
	old.Systemd.Units = mergeUnits(old.Systemd.Units)
	if ps := untranslatable(old); len(ps) > 0 {
		problems = append(problems, ps...)
		return nil, problems, &InvalidError{Problems: problems}
	}
	cfg, err := v23tov30.Translate(old, map[string]string{"root": "/"})
	if err != nil {
		problems = append(problems, Problem{Kind: "error", Message: "translating spec 2.3 to 3.0: " + err.Error(), Fatal: true})
		return nil, problems, &InvalidError{Problems: problems}
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		return nil, problems, err
	}
	return out, problems, nil
}

func supported2(v semver.Version) bool {
	for _, s := range spec2Versions {
		if v.Equal(s) {
			return true
		}
	}
	return false
}

func fatal(ps []Problem) bool {
	for _, p := range ps {
		if p.Fatal {
			return true
		}
	}
	return false
}

// problemsOf2 turns a 2.x report, whose entries carry a line and column
// rather than a JSON path, into problems.
func problemsOf2(r v2report.Report) []Problem {
	var out []Problem
	for _, e := range r.Entries {
		// The 2.x validator walks ignition.security's embedded TLS field
		// as if it had no tag, and warns of the "tls" key every 2.3
		// config from Cluster API has: no problem of the config's.
		if e.Kind == v2report.EntryWarning && e.Message == "Config has unrecognized key: tls" {
			continue
		}
		p := Problem{Kind: e.Kind.String(), Message: e.Message, Fatal: e.Kind == v2report.EntryError}
		if e.Line != 0 {
			p.Message = fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
		}
		// ign-converter refuses deprecated fields: say so where they are.
		if e.Kind == v2report.EntryDeprecated {
			p.Fatal = true
			p.Message += " (deprecated in 2.x and not translated to spec 3)"
		}
		out = append(out, p)
	}
	return out
}

// untranslatable finds, with their JSON paths, what ign-converter would
// refuse with a bare message: spec 3 has no networkd section and no
// named filesystems, and gives one entry to each path.
func untranslatable(c v2types.Config) []Problem {
	var out []Problem
	add := func(p, msg string) {
		out = append(out, Problem{Kind: "error", Path: p, Message: msg, Fatal: true})
	}
	for i, u := range c.Networkd.Units {
		add(fmt.Sprintf("$.networkd.units.%d", i), fmt.Sprintf("networkd unit %q: spec 3 has no networkd section; write it as a file under /etc/systemd/network", u.Name))
	}
	for i, fs := range c.Storage.Filesystems {
		if fs.Name != "root" {
			add(fmt.Sprintf("$.storage.filesystems.%d.name", i), fmt.Sprintf("filesystem %q: only the root filesystem is translated; nodebake writes to the image's own filesystems", fs.Name))
		}
	}
	seen := map[string]string{}
	node := func(kind string, i int, n v2types.Node) {
		at := fmt.Sprintf("$.storage.%s.%d", kind, i)
		if n.Filesystem != "root" {
			add(at+".filesystem", fmt.Sprintf("filesystem %q: only the root filesystem is translated", n.Filesystem))
			return
		}
		p := path.Clean("/" + n.Path)
		if first, ok := seen[p]; ok {
			add(at+".path", fmt.Sprintf("%s is also given at %s; spec 3 gives each path one entry", p, first))
			return
		}
		seen[p] = at
	}
	for i, f := range c.Storage.Files {
		node("files", i, f.Node)
	}
	for i, d := range c.Storage.Directories {
		node("directories", i, d.Node)
	}
	for i, l := range c.Storage.Links {
		node("links", i, l.Node)
	}
	return out
}

// mergeUnits gives each unit one entry, as Ignition 2.x applies entries
// of one name in turn: the last contents written, every drop-in (a later
// one of the same name replacing an earlier), the last enabled or mask
// that says something. Spec 3 allows one entry a unit, and Cluster API's
// user data has two for kubeadm.service when
// containerLinuxConfig.additionalConfig adds it a drop-in.
// (ign-converter's own dedupe keeps only the last entry's contents, which
// here is none.)
func mergeUnits(units []v2types.Unit) []v2types.Unit {
	var out []v2types.Unit
	at := map[string]int{}
	for _, u := range units {
		i, ok := at[u.Name]
		if !ok {
			at[u.Name] = len(out)
			out = append(out, u)
			continue
		}
		m := &out[i]
		if u.Contents != "" {
			m.Contents = u.Contents
		}
		for _, d := range u.Dropins {
			if j := slices.IndexFunc(m.Dropins, func(e v2types.SystemdDropin) bool { return e.Name == d.Name }); j >= 0 {
				m.Dropins[j] = d
			} else {
				m.Dropins = append(m.Dropins, d)
			}
		}
		if u.Enabled != nil {
			m.Enabled = u.Enabled
		}
		m.Enable = m.Enable || u.Enable
		m.Mask = m.Mask || u.Mask
	}
	return out
}
