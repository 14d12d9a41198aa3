// Package rootpath maps absolute paths inside a root filesystem (an image
// being assembled, a node's root, a test's temporary root) to paths on
// the host.
package rootpath

import (
	"path/filepath"
	"strings"
)

// Join is the host path of p, an absolute path inside root ("/" on a
// live node). The path is cleaned, so ".." cannot climb out of root.
func Join(root, p string) string {
	return filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(p, "/")))
}
