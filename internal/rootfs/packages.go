package rootfs

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/nodebake/nodebake/internal/manifest"
)

// Package is one installed Debian package, as the manifest records it.
type Package = manifest.Package

// ReadPackages lists the installed packages in a dpkg status file, sorted
// by name.
func ReadPackages(statusFile string) ([]Package, error) {
	f, err := os.Open(statusFile)
	if err != nil {
		return nil, fmt.Errorf("reading the package list: %w", err)
	}
	defer f.Close()
	var (
		out []Package
		cur Package
		ok  bool
	)
	flush := func() {
		if ok && cur.Name != "" {
			out = append(out, cur)
		}
		cur, ok = Package{}, false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		k, v, found := strings.Cut(line, ": ")
		if !found {
			continue
		}
		switch k {
		case "Package":
			cur.Name = v
		case "Version":
			cur.Version = v
		case "Architecture":
			cur.Arch = v
		case "Status":
			ok = strings.HasSuffix(v, " installed")
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", statusFile, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
