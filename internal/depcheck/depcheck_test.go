// Package depcheck keeps the rooms apart: each outside world is touched by
// one package only.
package depcheck

import (
	"go/parser"
	"go/token"
	"io/fs"
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
