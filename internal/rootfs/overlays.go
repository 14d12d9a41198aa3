package rootfs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/profile"
)

// applyOverlays copies overlays/NAME/ trees into the image. Nothing is
// inherited from the checkout: every file and folder is owned by root,
// folders are 0755, files 0755 when executable in the source and 0644
// otherwise. Symbolic links are copied as links.
func applyOverlays(t *Tree, sourceDir string, names []string) error {
	for _, name := range names {
		src := filepath.Join(sourceDir, "overlays", name)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if rel == "." {
				return nil
			}
			dest := "/" + filepath.ToSlash(rel)
			source := "overlay:" + name + "/" + filepath.ToSlash(rel)
			switch {
			case d.IsDir():
				host := t.Path(dest)
				if err := os.MkdirAll(host, 0o755); err != nil {
					return err
				}
				return os.Lchown(host, 0, 0)
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				return t.Symlink(target, dest, source)
			case d.Type().IsRegular():
				info, err := d.Info()
				if err != nil {
					return err
				}
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				mode := os.FileMode(0o644)
				if info.Mode()&0o111 != 0 {
					mode = 0o755
				}
				return t.WriteFile(dest, data, mode, source)
			default:
				return fmt.Errorf("%s: only files, folders and links can be overlaid", p)
			}
		})
		if err != nil {
			return fmt.Errorf("overlay %s: %w", name, err)
		}
	}
	return nil
}

// applyUnits bakes the profile's unit files into /usr/lib/systemd/system,
// then enables the builtin units, the node's base units and the profile's
// with systemctl --root, which follows each unit's [Install] section.
func applyUnits(ctx context.Context, run *command.Runner, t *Tree, sourceDir string, u profile.Units) error {
	for _, name := range u.Files {
		data, err := os.ReadFile(filepath.Join(sourceDir, "systemd", name))
		if err != nil {
			return err
		}
		if err := t.WriteFile("/usr/lib/systemd/system/"+name, data, 0o644, "systemd:"+name); err != nil {
			return err
		}
	}
	enable := append(append(append([]string{}, builtinUnits...), baseUnits...), u.Enable...)
	if err := Enable(ctx, run, t, enable...); err != nil {
		return err
	}
	// Disabled first, so no .wants link is left to a masked unit.
	if _, err := run.Run(ctx, command.Cmd{Name: "systemctl", Args: append([]string{"--root=" + t.Root, "disable"}, maskedUnits...)}); err != nil {
		return fmt.Errorf("disabling units: %w", err)
	}
	if _, err := run.Run(ctx, command.Cmd{Name: "systemctl", Args: append([]string{"--root=" + t.Root, "mask"}, maskedUnits...)}); err != nil {
		return fmt.Errorf("masking units: %w", err)
	}
	return nil
}

// Enable enables units in the tree with systemctl --root, which follows
// each unit's [Install] section.
func Enable(ctx context.Context, run *command.Runner, t *Tree, units ...string) error {
	if _, err := run.Run(ctx, command.Cmd{Name: "systemctl", Args: append([]string{"--root=" + t.Root, "enable"}, units...)}); err != nil {
		return fmt.Errorf("enabling units: %w", err)
	}
	return nil
}
