package rootfs

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// EnabledUnits lists the units enabled in a tree (the entries of its
// /etc/systemd/system/*.wants and *.requires folders), sorted and unique.
func EnabledUnits(root string) []string {
	seen := map[string]bool{}
	for _, pattern := range []string{"*.wants", "*.requires"} {
		dirs, _ := filepath.Glob(filepath.Join(root, "etc/systemd/system", pattern))
		for _, d := range dirs {
			entries, _ := os.ReadDir(d)
			for _, e := range entries {
				seen[e.Name()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for u := range seen {
		if !strings.HasPrefix(u, ".") {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}
