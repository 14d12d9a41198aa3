package kit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/lock"
)

// pauseCFlags are the Kubernetes pause Makefile's flags, less the git
// revision in the version, which a module zip does not have.
var pauseCFlags = []string{"-Os", "-Wall", "-Werror", "-static"}

// Pause compiles the pause container's program, build/pause/linux/pause.c
// from the k8s.io/kubernetes module at kubeVersion, for the pause image
// tagged tag (such as 3.10.2). It returns the cached binary's path.
func (b *Builder) Pause(ctx context.Context, kubeVersion, tag string) (string, error) {
	dir, err := b.moduleDir(ctx, "k8s.io/kubernetes", kubeVersion)
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "build", "pause", "linux", "pause.c")
	code, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("reading pause.c: %w", err)
	}
	gcc, err := b.Run.Run(ctx, command.Cmd{Name: "gcc", Args: []string{"-dumpfullversion"}})
	if err != nil {
		return "", err
	}
	flags := append(append([]string{}, pauseCFlags...), "-DVERSION=v"+tag)
	key := cache.Key([]byte("nodebake-pause-v1"), code, gcc, []byte(strings.Join(flags, " ")))
	if path, ok, err := b.Cache.Lookup("kit", key); err != nil || ok {
		return path, err
	}
	tmp, err := b.Cache.TempPath("kit", key)
	if err != nil {
		return "", err
	}
	args := append(flags, "-o", tmp, src)
	if _, err := b.Run.Run(ctx, command.Cmd{Name: "gcc", Args: args}); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("compiling pause: %w", err)
	}
	if _, err := b.Run.Run(ctx, command.Cmd{Name: "strip", Args: []string{"--strip-all", tmp}}); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return b.Cache.Commit("kit", key, tmp)
}

// moduleDir downloads a module (checked against the checksum database),
// records it with its go.sum hash, and returns its folder in the module
// cache.
func (b *Builder) moduleDir(ctx context.Context, module, version string) (string, error) {
	out, err := b.Run.Run(ctx, command.Cmd{Name: "go", Args: []string{"mod", "download", "-json", module + "@" + version}, Env: goEnv(false)})
	if err != nil {
		return "", fmt.Errorf("downloading %s@%s: %w", module, version, err)
	}
	var info struct{ Dir, Sum, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", err
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("downloading %s@%s: %s", module, version, info.Error)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.modules == nil {
		b.modules = map[string]Module{}
	}
	b.modules[module+"@"+version] = Module{Path: module, Version: version, Sum: info.Sum}
	return info.Dir, nil
}

// Module is a Go module the kit was built from, with its go.sum hash.
type Module = lock.Module

// Modules are the Go modules every build so far came from, sorted.
func (b *Builder) Modules() []Module {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Module, 0, len(b.modules))
	for _, m := range b.modules {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path+"@"+out[i].Version < out[j].Path+"@"+out[j].Version })
	return out
}
