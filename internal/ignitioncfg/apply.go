package ignitioncfg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/coreos/ignition/v2/config/v3_5/types"

	"github.com/nodebake/nodebake/internal/atomicfile"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/rootpath"
)

// Target is where a config is applied, and the record that makes applying
// it again after a crash safe.
type Target struct {
	Root  string // "/" on a node; a folder in tests
	Fetch *Fetcher
	Run   *command.Runner
	Log   *slog.Logger
	// Done maps each operation already finished to the sha256 of what it
	// left; Apply skips those and records the others, calling Save after
	// each, so an operation that appends is never applied twice.
	Done map[string]string
	Save func(map[string]string) error
}

// Result says what the agent must do after applying: reload
// systemd-networkd, reload systemd and start units.
type Result struct {
	NetworkChanged bool     // a file under /etc/systemd/network was written
	UnitsChanged   bool     // a unit or drop-in was written, enabled or masked
	Start          []string // enabled units, to start now
	Hostname       string   // /etc/hostname as written, if it was
}

func (t *Target) host(p string) string {
	return rootpath.Join(t.Root, p)
}

func (t *Target) record(op, sum string) error {
	if t.Done == nil {
		t.Done = map[string]string{}
	}
	t.Done[op] = sum
	if t.Save != nil {
		return t.Save(t.Done)
	}
	return nil
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Apply writes c into t.Root: users, directories, files, links, then
// units. Call Check first; Apply assumes its paths are allowed.
func Apply(ctx context.Context, c Config, t *Target) (*Result, error) {
	res := &Result{}
	// Users first, as Ignition does: files may belong to them.
	for i, u := range c.Passwd.Users {
		if err := t.user(ctx, u); err != nil {
			return nil, fmt.Errorf("$.passwd.users.%d (%s): %w", i, u.Name, err)
		}
	}
	owners, err := readOwners(t.host("/etc"))
	if err != nil {
		return nil, err
	}
	for i, d := range c.Storage.Directories {
		if err := t.directory(d, owners); err != nil {
			return nil, fmt.Errorf("$.storage.directories.%d (%s): %w", i, d.Path, err)
		}
	}
	for i, f := range c.Storage.Files {
		if err := t.file(ctx, f, owners, res); err != nil {
			return nil, fmt.Errorf("$.storage.files.%d (%s): %w", i, f.Path, err)
		}
	}
	for i, l := range c.Storage.Links {
		if err := t.link(l, owners); err != nil {
			return nil, fmt.Errorf("$.storage.links.%d (%s): %w", i, l.Path, err)
		}
	}
	for i, u := range c.Systemd.Units {
		if err := t.unit(ctx, u, res); err != nil {
			return nil, fmt.Errorf("$.systemd.units.%d (%s): %w", i, u.Name, err)
		}
	}
	return res, nil
}

func (t *Target) directory(d types.Directory, o *owners) error {
	p := t.host(d.Path)
	fi, err := os.Lstat(p)
	switch {
	case err == nil && !fi.IsDir() && !boolOf(d.Overwrite):
		return fmt.Errorf("a %s is there; set overwrite to replace it", kindOf(fi))
	case err == nil && !fi.IsDir():
		if err := os.Remove(p); err != nil {
			return err
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	mode := os.FileMode(0o755)
	if d.Mode != nil {
		mode = os.FileMode(*d.Mode) & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	} else if err == nil && fi.IsDir() {
		mode = fi.Mode().Perm()
	}
	if err := os.MkdirAll(p, mode); err != nil {
		return err
	}
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return t.chown(p, d.Node, o, false)
}

func (t *Target) file(ctx context.Context, f types.File, o *owners, res *Result) error {
	op := "file:" + f.Path
	p := t.host(f.Path)
	existing, err := os.ReadFile(p)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if done, ok := t.Done[op]; ok && exists && sum(existing) == done {
		return nil // applied before a crash
	}
	var data []byte
	switch {
	case f.Contents.Source != nil:
		if data, err = t.Fetch.Fetch(ctx, f.Contents); err != nil {
			return fmt.Errorf("contents: %w", err)
		}
		if exists && !boolOf(f.Overwrite) && !bytes.Equal(existing, data) {
			// A planned write that a crash interrupted after the rename
			// is recognised by its sum.
			if planned, ok := t.Done[op+":planned"]; !ok || planned != sum(existing) {
				return errors.New("a different file is there; set overwrite to replace it")
			}
		}
	case exists:
		data = existing
	}
	if planned, ok := t.Done[op+":planned"]; ok && exists && planned == sum(existing) {
		return t.record(op, planned) // written, not yet recorded
	}
	if data, err = t.Fetch.appended(ctx, data, f.Append); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if f.Mode != nil {
		mode = os.FileMode(*f.Mode) & fs.ModePerm
	} else if fi, err := os.Stat(p); err == nil && f.Contents.Source == nil {
		mode = fi.Mode().Perm()
	}
	if isSecret(f.Path) {
		mode = 0o600
	}
	if err := t.record(op+":planned", sum(data)); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(p, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	if err := t.chown(p, f.Node, o, false); err != nil {
		return err
	}
	if strings.HasPrefix(f.Path, "/etc/systemd/network/") {
		res.NetworkChanged = true
	}
	if f.Path == "/etc/hostname" {
		res.Hostname = strings.TrimSpace(string(data))
	}
	return t.record(op, sum(data))
}

func (t *Target) link(l types.Link, o *owners) error {
	if l.Target == nil {
		return errors.New("no target")
	}
	p := t.host(l.Path)
	if cur, err := os.Readlink(p); err == nil && cur == *l.Target {
		return t.chown(p, l.Node, o, true)
	}
	if fi, err := os.Lstat(p); err == nil && !boolOf(l.Overwrite) {
		return fmt.Errorf("a %s is there; set overwrite to replace it", kindOf(fi))
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(p), "."+path.Base(l.Path)+".link-tmp")
	os.Remove(tmp)
	if err := os.Symlink(*l.Target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return t.chown(p, l.Node, o, true)
}

func boolOf(b *bool) bool { return b != nil && *b }

func kindOf(fi fs.FileInfo) string {
	switch {
	case fi.IsDir():
		return "directory"
	case fi.Mode()&fs.ModeSymlink != 0:
		return "link"
	default:
		return "file"
	}
}
