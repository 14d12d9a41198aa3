package profile

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/nodebake/nodebake/internal/diskformat"
)

// Limits a profile is checked against.
const (
	MinESPSize   = 64 * MiB
	MaxESPSize   = 4 * GiB
	MinRootSize  = 1 * GiB
	MaxRootSize  = 1 << 40 // 1TiB: two slots of it, and the disk stays far from any tool's limit
	MinStateSize = 256 * MiB
	MaxStateSize = 16 << 40 // 16TiB: ext4's limit with 4KiB blocks and no 64bit feature
	// minEpoch is 1980-01-01, the earliest time FAT can store; maxEpoch is
	// 2106-02-07, the last squashfs can (its times are 32-bit).
	minEpoch = 315532800
	maxEpoch = 1<<32 - 1
)

// Suites are the Debian suites a profile may build from.
var Suites = []string{"bookworm", "trixie"}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	packageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	sysctlRE  = regexp.MustCompile(`^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$`)
	moduleRE  = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	unitRE    = regexp.MustCompile(`^[a-zA-Z0-9:_.@-]+\.(service|socket|timer|target|mount|path)$`)
	// ownedArgs are the kernel arguments the builder writes itself.
	ownedArgs = []string{"root=", "rootfstype=", "nodebake.state=", "systemd.gpt_auto=", "ro", "rw"}
)

// Validate checks a defaulted profile and returns every problem it finds,
// each with its path. sourceDir is the folder holding overlays/ and
// systemd/; an empty sourceDir skips the checks that read it.
func Validate(p *Profile, sourceDir string) []FieldError {
	var errs []FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}

	if p.APIVersion != APIVersion {
		add("apiVersion", "must be %q, not %q", APIVersion, p.APIVersion)
	}
	if p.Kind != Kind {
		add("kind", "must be %q, not %q", Kind, p.Kind)
	}
	if !nameRE.MatchString(p.Metadata.Name) {
		add("metadata.name", "must be lower-case letters, digits and '-', 1 to 63 characters, not %q", p.Metadata.Name)
	}

	s := &p.Spec
	if !slices.Contains(Suites, s.Base.Suite) {
		add("spec.base.suite", "must be one of %s, not %q", strings.Join(Suites, ", "), s.Base.Suite)
	}
	for i, pkg := range s.Base.Packages {
		if !packageRE.MatchString(pkg) {
			add(fmt.Sprintf("spec.base.packages[%d]", i), "%q is not a Debian package name", pkg)
		}
	}
	if s.Base.Mirror != "" {
		u, err := url.Parse(s.Base.Mirror)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("spec.base.mirror", "must be an http or https URL, not %q", s.Base.Mirror)
		}
	}

	for i, arg := range s.Kernel.Cmdline {
		path := fmt.Sprintf("spec.kernel.cmdline[%d]", i)
		switch {
		case arg == "" || strings.ContainsAny(arg, " \"'") || strings.ContainsFunc(arg, unicode.IsControl):
			add(path, "must be one argument without spaces, quotes or control characters, not %q", arg)
		case ownsArg(arg):
			add(path, "%q is set by the builder and cannot be given", arg)
		}
	}

	checkSize(add, "spec.disk.espSize", s.Disk.ESPSize, MinESPSize, MaxESPSize)
	checkSize(add, "spec.disk.rootSize", s.Disk.RootSize, MinRootSize, MaxRootSize)
	checkSize(add, "spec.disk.stateSize", s.Disk.StateSize, MinStateSize, MaxStateSize)

	for _, k := range sortedKeys(s.Node.Sysctls) {
		path := "spec.node.sysctls[" + k + "]"
		if !sysctlRE.MatchString(k) {
			add(path, "is not a sysctl name such as net.ipv4.ip_forward")
		}
		if v := s.Node.Sysctls[k]; v == "" || strings.ContainsAny(v, "\n=") {
			add(path, "value must be non-empty and hold no newline or '=', not %q", v)
		}
	}
	for i, m := range s.Node.Modules {
		if !moduleRE.MatchString(m) {
			add(fmt.Sprintf("spec.node.modules[%d]", i), "%q is not a kernel module name", m)
		}
	}

	for i, o := range s.Overlays {
		path := fmt.Sprintf("spec.overlays[%d]", i)
		if !nameRE.MatchString(o) {
			add(path, "%q is not a folder name under overlays/", o)
		} else if sourceDir != "" && !isDir(filepath.Join(sourceDir, "overlays", o)) {
			add(path, "overlays/%s does not exist in %s", o, sourceDir)
		}
	}
	for i, u := range s.Units.Files {
		path := fmt.Sprintf("spec.units.files[%d]", i)
		if !unitRE.MatchString(u) {
			add(path, "%q is not a unit file name", u)
		} else if sourceDir != "" && !isFile(filepath.Join(sourceDir, "systemd", u)) {
			add(path, "systemd/%s does not exist in %s", u, sourceDir)
		}
	}
	for i, u := range s.Units.Enable {
		if !unitRE.MatchString(u) {
			add(fmt.Sprintf("spec.units.enable[%d]", i), "%q is not a unit name", u)
		}
	}

	if s.Outputs.Dir == "" {
		add("spec.outputs.dir", "must not be empty")
	} else if msg := checkOutputDir(s.Outputs.Dir); msg != "" {
		add("spec.outputs.dir", "%s", msg)
	}
	formats := strings.Join(diskformat.All, ", ")
	if len(s.Outputs.Formats) == 0 {
		add("spec.outputs.formats", "must name at least one of %s", formats)
	}
	for i, f := range s.Outputs.Formats {
		switch {
		case !slices.Contains(diskformat.All, f):
			add(fmt.Sprintf("spec.outputs.formats[%d]", i), "must be one of %s, not %q", formats, f)
		case slices.Index(s.Outputs.Formats, f) != i:
			add(fmt.Sprintf("spec.outputs.formats[%d]", i), "%q is named twice", f)
		}
	}
	switch f := s.Outputs.OVAFirmware; {
	case f != "" && f != diskformat.FirmwareEFI && f != diskformat.FirmwareBIOS:
		add("spec.outputs.ovaFirmware", "must be %s or %s, not %q", diskformat.FirmwareEFI, diskformat.FirmwareBIOS, f)
	case f != "" && !slices.Contains(s.Outputs.Formats, diskformat.OVA):
		add("spec.outputs.ovaFirmware", "applies to the ova format, which spec.outputs.formats does not name")
	}
	if s.Kit != nil {
		errs = append(errs, validateKit(s.Kit)...)
	}
	if s.SourceDateEpoch != nil && *s.SourceDateEpoch < minEpoch {
		add("spec.sourceDateEpoch", "must be at least %d (1980-01-01), not %d", minEpoch, *s.SourceDateEpoch)
	}
	if s.SourceDateEpoch != nil && *s.SourceDateEpoch > maxEpoch {
		add("spec.sourceDateEpoch", "must be at most %d (2106-02-07, the last time squashfs stores), not %d", int64(maxEpoch), *s.SourceDateEpoch)
	}
	return errs
}

func checkSize(add func(string, string, ...any), path, value string, minimum, maximum int64) {
	n, err := ParseSize(value)
	switch {
	case err != nil:
		add(path, "%v", err)
	case n%MiB != 0:
		add(path, "must be a whole number of MiB, not %s", value)
	case n < minimum:
		add(path, "must be at least %s", FormatSize(minimum))
	case maximum > 0 && n > maximum:
		add(path, "must be at most %s", FormatSize(maximum))
	}
}

// ownsArg: an owned argument, with any value, or bare (systemd reads a
// bare systemd.gpt_auto as true).
func ownsArg(arg string) bool {
	for _, o := range ownedArgs {
		if arg == o || arg == strings.TrimSuffix(o, "=") || (strings.HasSuffix(o, "=") && strings.HasPrefix(arg, o)) {
			return true
		}
	}
	return false
}

// systemDirs are folders an output folder may not be, nor be inside:
// a build writes gigabytes there, and removes what it replaces.
var systemDirs = []string{"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr"}

// checkOutputDir says what is wrong with an output folder, or "". A
// relative one is taken from the working directory, as the build takes it.
func checkOutputDir(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err.Error()
	}
	if abs == "/" {
		return fmt.Sprintf("%q is the root folder", dir)
	}
	for _, d := range systemDirs {
		if abs == d || strings.HasPrefix(abs, d+"/") {
			return fmt.Sprintf("%q is in the system folder %s", dir, d)
		}
	}
	if filepath.Dir(abs) == "/" && (abs == "/var" || abs == "/home" || abs == "/root" || abs == "/opt" || abs == "/srv" || abs == "/mnt" || abs == "/media") {
		return fmt.Sprintf("%q is a system folder itself; use a folder inside it", dir)
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return fmt.Sprintf("%q is an existing file, not a folder", dir)
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
