// Package depcheck keeps the rooms apart: each outside world is touched by
// one package only.
package depcheck

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fences maps an import path prefix to the only package folders that may
// import it outside tests.
var fences = map[string][]string{
	"github.com/diskfs/go-diskfs":            {"internal/diskimage"},
	"os/exec":                                {"internal/command"},
	"github.com/google/go-containerregistry": {"internal/images"},
	"github.com/coreos/ignition":             {"internal/ignitioncfg"},
	"github.com/coreos/ign-converter":        {"internal/ignitioncfg"},
	"go.etcd.io/bbolt":                       {"internal/containerdroot"},
}

func TestImportFences(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "vendor" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for prefix, allowed := range fences {
				if (p == prefix || strings.HasPrefix(p, prefix+"/")) && !contains(allowed, filepath.ToSlash(rel)) {
					t.Errorf("%s imports %s; only %v may", path, p, allowed)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// onNode are the commands that run on every node, and the packages that
// none of them may link, directly or through another package: the
// builder's, and the registry client it fetches images with.
var onNode = map[string][]string{
	"./cmd/firstboot": {
		"github.com/nodebake/nodebake/internal/aptsource",
		"github.com/nodebake/nodebake/internal/bootloader",
		"github.com/nodebake/nodebake/internal/imager",
		"github.com/nodebake/nodebake/internal/diskformat",
		"github.com/nodebake/nodebake/internal/cache",
		"github.com/nodebake/nodebake/internal/containerdroot",
		"github.com/nodebake/nodebake/internal/images",
		"github.com/nodebake/nodebake/internal/inspect",
		"github.com/nodebake/nodebake/internal/kit",
		"github.com/nodebake/nodebake/internal/lock",
		"github.com/nodebake/nodebake/internal/profile",
		"github.com/nodebake/nodebake/internal/qemu",
		"github.com/nodebake/nodebake/internal/rootfs",
		"github.com/google/go-containerregistry",
		"github.com/spf13/cobra/doc",
	},
}

// TestOnNodeBinariesLinkNoBuilder follows each on-node command's imports
// all the way down, as `go list -deps` does, the way go-containerregistry
// fences what crane links.
func TestOnNodeBinariesLinkNoBuilder(t *testing.T) {
	for cmd, banned := range onNode {
		list := exec.Command("go", "list", "-deps", cmd)
		list.Dir = filepath.Join("..", "..")
		out, err := list.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", cmd, err)
		}
		deps := strings.Fields(string(out))
		if !contains(deps, "github.com/nodebake/nodebake/internal/agent") {
			t.Fatalf("go list -deps %s lists no agent; did it list anything?\n%s", cmd, out)
		}
		for _, dep := range deps {
			for _, b := range banned {
				if dep == b || strings.HasPrefix(dep, b+"/") {
					t.Errorf("%s links %s", cmd, dep)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
