package kit

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/profile"
)

// Artifact is one built program of the kit: the manifest's record of it,
// and where it is on the build host.
type Artifact struct {
	manifest.Program
	Path string `json:"-"` // the cached file on the build host
}

// Builder builds kit components and caches them.
type Builder struct {
	Run   *command.Runner
	Cache *cache.Cache
	Log   *slog.Logger
	Epoch time.Time
	// Env is added to the go command's environment (a test sets its own
	// GOCACHE with it).
	Env []string
	// Pins gives the sha256 the lock pins for a url or file component.
	Pins func(component string) string
	// ImagePins gives the digest the lock pins for an image.
	ImagePins func(ref string) string
	// Resolve lets url and file sources and images without a pin be
	// fetched, for `imagebuild lock`, which records what they are.
	Resolve bool
	// HTTP fetches url sources; nil is a client with a long timeout.
	HTTP *http.Client

	mu        sync.Mutex
	modules   map[string]Module
	downloads []Download
	found     map[string]string // verified cached programs, by key
	tally     *tally            // the programs being compiled, counted
}

// Build returns every artifact of the kit, building what the cache lacks.
func (b *Builder) Build(ctx context.Context, k *profile.Kit) ([]Artifact, error) {
	goVersion, err := b.goVersion(ctx)
	if err != nil {
		return nil, err
	}
	var gos []goComponent
	for _, name := range profile.ComponentNames {
		if c, ok := k.Components[name]; ok && c.Source == profile.SourceGo {
			gos = append(gos, goComponent{name, recipes[name], c.Version})
		}
	}
	// The programs of the images known now are compiled with the kit's
	// own (Prebuild), so they are counted here too.
	imgs, err := knownImageComponents(k)
	if err != nil {
		return nil, err
	}
	all := append(append([]goComponent(nil), gos...), imgs...)
	if err := b.startTally("kit programs", goVersion, all); err != nil {
		return nil, err
	}
	defer func() { b.tally = nil }()
	if err := b.Prebuild(ctx, goVersion, all); err != nil {
		return nil, err
	}
	var out []Artifact
	for _, name := range profile.ComponentNames {
		c, ok := k.Components[name]
		if !ok {
			continue // flannel's plugin, in a kit without flannel
		}
		var arts []Artifact
		if c.Source == profile.SourceGo {
			arts, err = b.buildGo(ctx, name, recipes[name], c.Version, goVersion)
		} else {
			arts, err = b.fetch(ctx, name, c, recipes[name])
		}
		if err != nil {
			return nil, fmt.Errorf("component %s: %w", name, err)
		}
		out = append(out, arts...)
	}
	return out, nil
}

// GoVersion is the toolchain's version, part of every build's cache key.
func (b *Builder) GoVersion(ctx context.Context) (string, error) { return b.goVersion(ctx) }

func (b *Builder) goVersion(ctx context.Context) (string, error) {
	out, err := b.Run.Run(ctx, command.Cmd{Name: "go", Args: []string{"env", "GOVERSION"}, Env: goEnv(false)})
	if err != nil {
		return "", fmt.Errorf("finding the Go toolchain: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// key is the cache key of one binary: everything that goes into it.
func (b *Builder) key(name string, r recipe, version, goVersion string, bin binary) string {
	var replaces []string
	if r.replaces != nil {
		for k, v := range r.replaces(version) {
			replaces = append(replaces, k+"="+v)
		}
		sort.Strings(replaces)
	}
	return cache.Key(
		[]byte("nodebake-kit-go-v1"), []byte(name), []byte(r.module), []byte(version),
		[]byte(goVersion), []byte(bin.pkg), []byte(bin.name),
		[]byte(strings.Join(r.tags, ",")), []byte(strconv.FormatBool(r.cgo)),
		[]byte(strings.Join(r.ldflags(version, b.Epoch), " ")),
		[]byte(strings.Join(replaces, "\n")),
		[]byte(strings.Join(r.dropImports[bin.name], ",")),
	)
}

// copyMain copies a main package's files (less tests) from the module
// into the building module without the blank imports drop, and returns
// the package to build.
func (b *Builder) copyMain(ctx context.Context, work, module, version string, bin binary, drop []string) (string, error) {
	dir, err := b.moduleDir(ctx, module, version)
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, filepath.FromSlash(bin.pkg))
	dst := filepath.Join(work, "main_"+bin.name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return "", err
	}
	found := map[string]int{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return "", err
		}
		lines := strings.Split(string(data), "\n")
		kept := lines[:0]
		for _, l := range lines {
			dropped := false
			for _, imp := range drop {
				if strings.TrimSpace(l) == `_ "`+imp+`"` {
					found[imp]++
					dropped = true
				}
			}
			if !dropped {
				kept = append(kept, l)
			}
		}
		if err := os.WriteFile(filepath.Join(dst, name), []byte(strings.Join(kept, "\n")), 0o644); err != nil {
			return "", err
		}
	}
	for _, imp := range drop {
		if found[imp] != 1 {
			return "", fmt.Errorf("%s: the import of %s to leave out was found %d times, not once", bin.name, imp, found[imp])
		}
	}
	return "./main_" + bin.name, nil
}

func (b *Builder) buildGo(ctx context.Context, name string, r recipe, version, goVersion string) ([]Artifact, error) {
	source := "go:" + r.module + "@" + version
	// The module is resolved even when every binary is cached, so the
	// lock records its go.sum hash.
	if _, err := b.moduleDir(ctx, r.module, version); err != nil {
		return nil, err
	}
	missing, err := b.missing(goVersion, goComponent{name, r, version})
	if err != nil {
		return nil, err
	}
	if len(missing) == 0 {
		b.Log.Info("component found in cache", "component", name, "version", version)
	} else if err := b.compile(ctx, goVersion, missing); err != nil {
		return nil, err
	}
	var out []Artifact
	for _, bin := range r.binaries {
		path, ok, err := b.lookup(b.key(name, r, version, goVersion, bin))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s: built, but not in the cache", bin.name)
		}
		a, err := b.artifact(name, version, source, r, bin, path)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// program is one binary of a component to compile.
type program struct {
	component string
	r         recipe
	version   string
	bin       binary
}

// missing are the binaries of c the cache lacks.
func (b *Builder) missing(goVersion string, c goComponent) ([]program, error) {
	var out []program
	for _, bin := range c.r.binaries {
		if _, ok, err := b.lookup(b.key(c.name, c.r, c.version, goVersion, bin)); err != nil {
			return nil, err
		} else if !ok {
			out = append(out, program{c.name, c.r, c.version, bin})
		}
	}
	return out, nil
}

// batch is what programs must share to compile in one go build: the
// building module (module, version, replacements) and the flags.
func (b *Builder) batch(p program) string {
	return strings.Join([]string{string(goMod(p.r, p.version)), strings.Join(p.r.tags, ","),
		strconv.FormatBool(p.r.cgo), strings.Join(p.r.ldflags(p.version, b.Epoch), " ")}, "\x00")
}

// Prebuild compiles every program of cs that the cache lacks, those of
// one batch (the same module at the same version, with the same flags) in
// one go build: they load the package graph once, compile side by side,
// and link side by side. Kubernetes' programs (kubeadm, kubelet, kubectl)
// and its images' (kube-apiserver and the rest) are one such batch. Each
// binary is cached under its own key, as a build of it alone would be,
// and is the same bytes (the lock's sha256 says so).
func (b *Builder) Prebuild(ctx context.Context, goVersion string, cs []goComponent) error {
	batches := map[string][]program{}
	var order []string
	for _, c := range cs {
		if _, err := b.moduleDir(ctx, c.r.module, c.version); err != nil {
			return fmt.Errorf("component %s: %w", c.name, err)
		}
		ps, err := b.missing(goVersion, c)
		if err != nil {
			return err
		}
		for _, p := range ps {
			k := b.batch(p)
			if _, ok := batches[k]; !ok {
				order = append(order, k)
			}
			if !slices.ContainsFunc(batches[k], func(q program) bool { return q.component == p.component && q.bin == p.bin }) {
				batches[k] = append(batches[k], p)
			}
		}
	}
	for _, k := range order {
		if err := b.compile(ctx, goVersion, batches[k]); err != nil {
			return err
		}
	}
	return nil
}

// compile builds programs of one batch in go builds of their own module,
// as few as their executables' names allow (one, unless two share a
// name), and caches each.
func (b *Builder) compile(ctx context.Context, goVersion string, ps []program) error {
	r, version := ps[0].r, ps[0].version
	work, err := os.MkdirTemp("", "nodebake-kit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.WriteFile(filepath.Join(work, "go.mod"), goMod(r, version), 0o644); err != nil {
		return err
	}
	type target struct {
		program
		pkg, exe string
	}
	var rounds [][]target
	for _, p := range ps {
		pkg := p.r.module
		if p.bin.pkg != "" {
			pkg += "/" + p.bin.pkg
		}
		path := pkg
		if drop := p.r.dropImports[p.bin.name]; len(drop) > 0 {
			if pkg, err = b.copyMain(ctx, work, p.r.module, version, p.bin, drop); err != nil {
				return err
			}
			path = "nodebake.dev/kitbuild/" + strings.TrimPrefix(pkg, "./")
		}
		t := target{p, pkg, execName(path)}
		placed := false
		for i := range rounds {
			if !slices.ContainsFunc(rounds[i], func(o target) bool { return o.exe == t.exe }) {
				rounds[i], placed = append(rounds[i], t), true
				break
			}
		}
		if !placed {
			rounds = append(rounds, []target{t})
		}
	}
	ldflags := append([]string{"-s", "-w", "-buildid="}, r.ldflags(version, b.Epoch)...)
	if r.cgo {
		ldflags = append(ldflags, "-linkmode", "external", "-extldflags", "-static")
	}
	for _, round := range rounds {
		start := time.Now()
		var names, components, pkgs []string
		for _, t := range round {
			names, pkgs = append(names, t.bin.name), append(pkgs, t.pkg)
			if !slices.Contains(components, t.component) {
				components = append(components, t.component)
			}
		}
		b.compiling(strings.Join(components, ","), strings.Join(names, ","))
		// Written in the cache's folder, so that each is moved, not
		// copied, into its entry.
		out, err := b.Cache.TempDir("kit")
		if err != nil {
			return err
		}
		defer os.RemoveAll(out)
		out += string(filepath.Separator)
		args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", strings.Join(ldflags, " "), "-o", out}
		if len(r.tags) > 0 {
			args = append(args, "-tags", strings.Join(r.tags, ","))
		}
		args = append(args, pkgs...)
		if _, err := b.Run.Run(ctx, command.Cmd{Name: "go", Args: args, Dir: work, Env: append(goEnv(r.cgo), b.Env...)}); err != nil {
			return fmt.Errorf("building %s: %w", strings.Join(names, ", "), err)
		}
		for _, t := range round {
			if err := b.commit(goVersion, t.program, filepath.Join(out, t.exe)); err != nil {
				return err
			}
			b.Log.Info("built", append([]any{"component", t.component, "binary", t.bin.name, "version", version,
				"seconds", time.Since(start).Round(time.Second).Seconds()}, b.compiled()...)...)
		}
	}
	return nil
}

// commit moves a built program (in the cache's folder) into the cache
// under its key.
func (b *Builder) commit(goVersion string, p program, built string) error {
	key := b.key(p.component, p.r, p.version, goVersion, p.bin)
	path, err := b.Cache.Commit("kit", key, built)
	if err != nil {
		return fmt.Errorf("%s: %w", p.bin.name, err)
	}
	b.mu.Lock()
	if b.found == nil {
		b.found = map[string]string{}
	}
	b.found[key] = path
	b.mu.Unlock()
	return nil
}

// execName is the name go build gives the executable of the main package
// at path: its last element, or the one before a major version suffix
// (go.etcd.io/etcd/server/v3 is "server").
func execName(path string) string {
	elems := strings.Split(path, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && len(last) > 1 && last[0] == 'v' && strings.Trim(last[1:], "0123456789") == "" {
		return elems[len(elems)-2]
	}
	return last
}

// inRecipeOrder sorts a component's programs as its recipe lists them,
// whichever came from the cache and whichever were built: the manifest is
// the same for a cold build and a warm one.
func inRecipeOrder(r recipe, arts []Artifact) []Artifact {
	index := map[string]int{}
	for i, bin := range r.binaries {
		index[bin.name] = i
	}
	slices.SortStableFunc(arts, func(x, y Artifact) int { return index[x.Name] - index[y.Name] })
	return arts
}

func (b *Builder) artifact(name, version, source string, r recipe, bin binary, path string) (Artifact, error) {
	sum, err := cache.FileSHA256(path)
	if err != nil {
		return Artifact{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Program: manifest.Program{
		Component: name, Name: bin.name, Version: version, Source: source,
		Dest: r.dir + "/" + bin.name, SHA256: sum, Size: fi.Size(),
	}, Path: path}, nil
}

// goMod is the module that builds a component: it requires the
// component's module at its version, with the recipe's replacements.
func goMod(r recipe, version string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "module nodebake.dev/kitbuild\n\ngo 1.26\n\nrequire %s %s\n", r.module, version)
	if r.replaces != nil {
		rep := r.replaces(version)
		keys := make([]string, 0, len(rep))
		for k := range rep {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("\nreplace (\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "\t%s => %s\n", k, rep[k])
		}
		b.WriteString(")\n")
	}
	return []byte(b.String())
}

// goEnv is the environment of a reproducible build: the local toolchain
// only (an upstream pin would otherwise download another), no workspace,
// module graph updates allowed in the throwaway building module.
func goEnv(cgo bool) []string {
	c := "0"
	if cgo {
		c = "1"
	}
	return []string{"GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=-mod=mod", "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=" + c}
}
