// Package ignitioncfg reads Ignition configs (spec 3.0 to 3.5, translated
// to 3.5 by Ignition's own config packages, and spec 2.2 and 2.3, first
// translated to 3.0 by ign-converter), checks everything they would write
// before anything is written, and applies them to a root.
package ignitioncfg

import (
	"errors"
	"fmt"
	"strings"

	ignerrors "github.com/coreos/ignition/v2/config/shared/errors"
	"github.com/coreos/ignition/v2/config/util"
	"github.com/coreos/ignition/v2/config/v3_5"
	"github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/coreos/vcontext/report"
)

// Config is a parsed config, at spec 3.5.
type Config = types.Config

// File is one of a config's files.
type File = types.File

// Dropin is a drop-in of one of a config's units.
type Dropin = types.Dropin

// Problem is one entry of a config's report, with its JSON path.
type Problem struct {
	Kind    string `json:"kind"` // error, warning, info, deprecated
	Path    string `json:"path"` // such as $.storage.files.0.path
	Message string `json:"message"`
	Fatal   bool   `json:"-"`
}

func (p Problem) String() string {
	if p.Path == "" {
		return fmt.Sprintf("%s: %s", p.Kind, p.Message)
	}
	return fmt.Sprintf("%s at %s: %s", p.Kind, p.Path, p.Message)
}

// InvalidError is a config that cannot be applied, with every problem.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	b.WriteString("invalid Ignition config")
	for _, p := range e.Problems {
		if p.Fatal {
			b.WriteString("\n  " + p.String())
		}
	}
	return b.String()
}

// Parse reads a config of spec 2.2, 2.3 or 3.0 to 3.5 and returns it at
// 3.5 with the report's problems. A config whose report is fatal, that
// cannot be translated, or that asks for what nodebake does not do, is an
// *InvalidError; one of another version is ErrVersion.
func Parse(raw []byte) (Config, []Problem, error) {
	var problems []Problem
	if version, _, err := util.GetConfigVersion(raw); err == nil && version.Major == 2 {
		if raw, problems, err = translateSpec2(raw, version); err != nil {
			return Config{}, problems, err
		}
	}
	cfg, rpt, err := v3_5.ParseCompatibleVersion(raw)
	problems = append(problems, problemsOf(rpt)...)
	if err != nil {
		if errors.Is(err, ignerrors.ErrUnknownVersion) || errors.Is(err, ignerrors.ErrInvalidVersion) {
			return Config{}, problems, fmt.Errorf("%w: ignition.version %q; nodebake reads 2.2.0, 2.3.0 and 3.0.0 to 3.5.0", ErrVersion, versionOf(raw))
		}
		if len(problems) == 0 {
			problems = []Problem{{Kind: "error", Message: err.Error(), Fatal: true}}
		}
		return Config{}, problems, &InvalidError{Problems: problems}
	}
	if unsupported := checkSupported(cfg); len(unsupported) > 0 {
		problems = append(problems, unsupported...)
		return Config{}, problems, &InvalidError{Problems: problems}
	}
	return cfg, problems, nil
}

func versionOf(raw []byte) string {
	v, _, err := util.GetConfigVersion(raw)
	if err != nil {
		return "?"
	}
	return v.String()
}

func problemsOf(r report.Report) []Problem {
	var out []Problem
	for _, e := range r.Entries {
		p := Problem{Kind: e.Kind.String(), Message: e.Message, Fatal: e.Kind.IsFatal()}
		if e.Context.Len() != 0 {
			p.Path = e.Context.String()
		}
		out = append(out, p)
	}
	return out
}

// checkSupported rejects the parts of Ignition nodebake does not apply:
// the disk layout is the image's, and configs are not fetched from
// elsewhere after the first.
func checkSupported(c Config) []Problem {
	var out []Problem
	add := func(path, what string) {
		out = append(out, Problem{Kind: "error", Path: path, Message: what + " is not supported by nodebake: the disk layout is the image's", Fatal: true})
	}
	if len(c.Storage.Disks) > 0 {
		add("$.storage.disks", "partitioning")
	}
	if len(c.Storage.Raid) > 0 {
		add("$.storage.raid", "RAID")
	}
	if len(c.Storage.Filesystems) > 0 {
		add("$.storage.filesystems", "making filesystems")
	}
	if len(c.Storage.Luks) > 0 {
		add("$.storage.luks", "LUKS")
	}
	if len(c.KernelArguments.ShouldExist) > 0 || len(c.KernelArguments.ShouldNotExist) > 0 {
		out = append(out, Problem{Kind: "error", Path: "$.kernelArguments", Message: "kernel arguments are the image's loader entry's; nodebake does not change them", Fatal: true})
	}
	if len(c.Ignition.Config.Merge) > 0 || c.Ignition.Config.Replace.Source != nil {
		out = append(out, Problem{Kind: "error", Path: "$.ignition.config", Message: "merging or replacing the config from another source is not supported by nodebake; give the whole config", Fatal: true})
	}
	return out
}
