package kit

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodebake/nodebake/internal/images"
)

// iptablesMulti is the nf_tables build of iptables, the backend Debian
// uses by default; kube-proxy and the node's own tools then write the same
// rules tables.
const iptablesMulti = "/usr/sbin/xtables-nft-multi"

// iptablesCommands are the names kube-proxy runs, each a link to the
// multi-call program.
var iptablesCommands = []string{
	"iptables", "iptables-save", "iptables-restore",
	"ip6tables", "ip6tables-save", "ip6tables-restore",
	"iptables-nft", "iptables-nft-save", "iptables-nft-restore",
	"ip6tables-nft", "ip6tables-nft-save", "ip6tables-nft-restore",
}

// libDirs are where the dynamic loader looks, in its order, on Debian
// amd64 (`ld.so --help`). The image has no ld.so.cache.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"}

// xtablesDir holds iptables' match and target extensions, loaded at run
// time.
const xtablesDir = "/usr/lib/x86_64-linux-gnu/xtables"

// IptablesFiles are the files of iptables' nf_tables userspace, taken from
// the node's root: the program, its extensions, every library they load
// (found by reading their ELF headers) and the dynamic loader.
func IptablesFiles(root string) ([]images.File, error) {
	c := &closure{root: root, files: map[string]images.File{}}
	if err := c.addELF(iptablesMulti); err != nil {
		return nil, err
	}
	exts, err := os.ReadDir(filepath.Join(root, xtablesDir))
	if err != nil {
		return nil, err
	}
	for _, e := range exts {
		if strings.HasSuffix(e.Name(), ".so") {
			if err := c.addELF(path.Join(xtablesDir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range iptablesCommands {
		c.files["/usr/sbin/"+name] = images.File{Path: "/usr/sbin/" + name, Link: path.Base(iptablesMulti)}
	}
	// Protocol and service names iptables-restore resolves.
	for _, p := range []string{"/etc/protocols", "/etc/services"} {
		if err := c.addFile(p, p, 0o644); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	out := make([]images.File, 0, len(c.files))
	for _, f := range c.files {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// closure collects ELF files and the libraries they need.
type closure struct {
	root  string
	files map[string]images.File
}

// addELF adds the ELF file at p (a path in the root), its interpreter and,
// recursively, its DT_NEEDED libraries.
func (c *closure) addELF(p string) error {
	if _, done := c.files[p]; done {
		return nil
	}
	host, err := c.resolve(p)
	if err != nil {
		return err
	}
	f, err := elf.Open(host)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	if err := c.addFile(p, p, 0o755); err != nil {
		return err
	}
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		buf := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(buf, 0); err != nil {
			return fmt.Errorf("%s: interpreter: %w", p, err)
		}
		if err := c.addELF(strings.TrimRight(string(buf), "\x00")); err != nil {
			return err
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, lib := range needed {
		found := ""
		for _, dir := range libDirs {
			if _, err := c.resolve(path.Join(dir, lib)); err == nil {
				found = path.Join(dir, lib)
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%s needs %s, which is not in %v", p, lib, libDirs)
		}
		// The library keeps the path the loader would find it at first.
		if err := c.addELF(found); err != nil {
			return err
		}
	}
	return nil
}

// addFile copies the file the root has at src (following links) to dst.
func (c *closure) addFile(src, dst string, mode int64) error {
	host, err := c.resolve(src)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(host)
	if err != nil {
		return err
	}
	c.files[dst] = images.File{Path: dst, Data: data, Mode: mode}
	return nil
}

// resolve finds the host path of p inside the root, following symbolic
// links (absolute ones relative to the root) so that nothing outside the
// root is ever read.
func (c *closure) resolve(p string) (string, error) {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		next := path.Join(cur, parts[0])
		parts = parts[1:]
		fi, err := os.Lstat(filepath.Join(c.root, next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(c.root, next))
		if err != nil {
			return "", err
		}
		if !path.IsAbs(target) {
			target = path.Join(cur, target)
		}
		parts = append(strings.Split(strings.Trim(path.Clean(target), "/"), "/"), parts...)
		cur = "/"
	}
	return filepath.Join(c.root, cur), nil
}
