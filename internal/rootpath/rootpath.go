// Package rootpath maps absolute paths inside a root filesystem (an image
// being assembled, a node's root, a test's temporary root) to paths on
// the host.
package rootpath

import (
	"path"
	"path/filepath"
)

// Join is the host path of p, an absolute path inside root ("/" on a
// live node). The path is cleaned first, so ".." cannot climb out of
// root (lexically: a symbolic link inside root is not followed here).
func Join(root, p string) string {
	// Cleaned as an absolute path first: "/../x" is "/x", inside root.
	return filepath.Join(root, filepath.FromSlash(path.Clean("/"+p)))
}
