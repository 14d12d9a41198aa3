package kit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
)

// FirstbootPath is where the first-boot agent is in the image.
const FirstbootPath = "/usr/bin/firstboot"

// Firstboot builds the first-boot agent from this project's own sources
// in sourceDir (the checkout: go.mod and cmd/firstboot), reproducibly,
// cached by the content of every Go source and the module files.
func (b *Builder) Firstboot(ctx context.Context, sourceDir string) (Artifact, error) {
	if _, err := os.Stat(filepath.Join(sourceDir, "cmd", "firstboot")); err != nil {
		return Artifact{}, fmt.Errorf("the first-boot agent's sources are not in %s (--source-dir is the nodebake checkout): %w", sourceDir, err)
	}
	goVersion, err := b.goVersion(ctx)
	if err != nil {
		return Artifact{}, err
	}
	src, err := SourceHash(sourceDir)
	if err != nil {
		return Artifact{}, err
	}
	key := cache.Key([]byte("nodebake-firstboot-v1"), []byte(goVersion), []byte(src))
	r := recipe{dir: filepath.Dir(FirstbootPath)}
	bin := binary{"cmd/firstboot", "firstboot"}
	if path, ok, err := b.Cache.Lookup("kit", key); err != nil {
		return Artifact{}, err
	} else if ok {
		return b.artifact("firstboot", "source:"+src[:12], "source:"+src[:12], r, bin, path)
	}
	tmp, err := b.Cache.TempPath("kit", key)
	if err != nil {
		return Artifact{}, err
	}
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", tmp, "./cmd/firstboot"}
	// The checkout's own go.mod and go.sum are used as they are: the
	// build never rewrites them (the Makefile exports -mod=mod).
	env := append(goEnv(false), "GOFLAGS=-mod=readonly")
	env = append(env, b.Env...)
	if _, err := b.Run.Run(ctx, command.Cmd{Name: "go", Args: args, Dir: sourceDir, Env: env}); err != nil {
		os.Remove(tmp)
		return Artifact{}, fmt.Errorf("building firstboot: %w", err)
	}
	path, err := b.Cache.Commit("kit", key, tmp)
	if err != nil {
		return Artifact{}, err
	}
	return b.artifact("firstboot", "source:"+src[:12], "source:"+src[:12], r, bin, path)
}

// SourceHash hashes what the first-boot agent is built from: go.mod,
// go.sum and every non-test Go file under dir, by path and content.
func SourceHash(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != dir && (strings.HasPrefix(name, ".") || name == "testdata" || name == "out" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) || name == "go.mod" || name == "go.sum" ||
			strings.Contains(p, string(filepath.Separator)+"files"+string(filepath.Separator)) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%d:%s", len(rel), rel)
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		fi, _ := f.Stat()
		fmt.Fprintf(h, "%d:", fi.Size())
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
