package rootfs

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/lock"
	"github.com/nodebake/nodebake/internal/profile"
)

//go:embed files
var presetFiles embed.FS

// builtinUnits are the units every image carries and enables: they are
// part of how a read-only image works, not a profile's choice.
var builtinUnits = []string{"nodebake-growstate.service", "nodebake-ssh-keygen.service"}

// baseUnits are Debian's units the node needs enabled.
var baseUnits = []string{"systemd-networkd.service", "systemd-resolved.service", "systemd-timesyncd.service", "ssh.service"}

// maskedUnits would write to the read-only root or fetch from the
// network on their own.
var maskedUnits = []string{"apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer"}

// Result is an assembled tree, split into what goes on the read-only root
// and what seeds the state partition (/var).
type Result struct {
	Root          string
	State         string
	KernelVersion string
	Kernel        string // host path of the kernel image
	Initrd        string // host path of the initramfs
	Packages      []Package
	Added         []AddedFile
}

// MoveBootFiles moves the kernel and the initramfs out of the root into
// dir once the boot loader has them (the ESP and the live media boot
// them): the root keeps only the kernel's modules and config.
func (r *Result) MoveBootFiles(dir string) error {
	kernel, initrd := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	if err := errors.Join(os.Rename(r.Kernel, kernel), os.Rename(r.Initrd, initrd)); err != nil {
		return err
	}
	r.Kernel, r.Initrd = kernel, initrd
	return nil
}

// LockPackages are the root's packages as the lock pins them.
func (r *Result) LockPackages() []lock.Package {
	out := make([]lock.Package, 0, len(r.Packages))
	for _, p := range r.Packages {
		out = append(out, lock.Package{Name: p.Name, Version: p.Version})
	}
	return out
}

// Assemble extracts the base tarball into work/root and applies the node
// preset, the identity rules, and the profile's overlays and units. More
// can be installed into the tree before Finish.
func Assemble(ctx context.Context, run *command.Runner, p *profile.Profile, sourceDir, baseTar, work string) (*Tree, error) {
	root := filepath.Join(work, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	if _, err := run.Run(ctx, command.Cmd{Name: "tar", Args: []string{
		"--extract", "--file", baseTar, "--directory", root,
		"--preserve-permissions", "--numeric-owner", "--xattrs", "--xattrs-include=*",
	}}); err != nil {
		return nil, fmt.Errorf("extracting base: %w", err)
	}
	t := NewTree(root)

	steps := []struct {
		name string
		fn   func() error
	}{
		{"node preset", func() error { return applyPreset(t, p) }},
		{"identity", func() error { return applyIdentity(t) }},
		{"overlays", func() error { return applyOverlays(t, sourceDir, p.Spec.Overlays) }},
		{"units", func() error { return applyUnits(ctx, run, t, sourceDir, p.Spec.Units) }},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return t, nil
}

// Finish reads the package list and the kernel from an assembled tree and
// moves its /var into work/state.
func Finish(t *Tree, work string) (*Result, error) {
	pkgs, err := ReadPackages(t.Path("/var/lib/dpkg/status"))
	if err != nil {
		return nil, err
	}
	kver, kernel, initrd, err := findKernel(t)
	if err != nil {
		return nil, err
	}
	state := filepath.Join(work, "state")
	if err := os.Rename(t.Path("/var"), state); err != nil {
		return nil, fmt.Errorf("moving /var to the state tree: %w", err)
	}
	if err := os.Mkdir(t.Path("/var"), 0o755); err != nil {
		return nil, err
	}
	return &Result{
		Root: t.Root, State: state,
		KernelVersion: kver, Kernel: kernel, Initrd: initrd,
		Packages: pkgs, Added: t.Added(),
	}, nil
}

func applyPreset(t *Tree, p *profile.Profile) error {
	var sysctl strings.Builder
	sysctl.WriteString("# nodebake: the Kubernetes node preset and the profile's sysctls.\n")
	keys := make([]string, 0, len(p.Spec.Node.Sysctls))
	for k := range p.Spec.Node.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&sysctl, "%s = %s\n", k, p.Spec.Node.Sysctls[k])
	}
	if err := t.WriteFile("/etc/sysctl.d/90-nodebake.conf", []byte(sysctl.String()), 0o644, "profile:spec.node.sysctls"); err != nil {
		return err
	}
	modules := "# nodebake: kernel modules the node needs.\n" + strings.Join(p.Spec.Node.Modules, "\n") + "\n"
	if err := t.WriteFile("/etc/modules-load.d/nodebake.conf", []byte(modules), 0o644, "profile:spec.node.modules"); err != nil {
		return err
	}

	embedded := []struct {
		name, dest string
		mode       os.FileMode
	}{
		{"fstab", "/etc/fstab", 0o644},
		{"50-nodebake.conf", "/etc/ssh/sshd_config.d/50-nodebake.conf", 0o644},
		{"90-nodebake-dhcp.network", "/usr/lib/systemd/network/90-nodebake-dhcp.network", 0o644},
		{"growstate", "/usr/lib/nodebake/growstate", 0o755},
		{"nodebake-growstate.service", "/usr/lib/systemd/system/nodebake-growstate.service", 0o644},
		{"nodebake-ssh-keygen.service", "/usr/lib/systemd/system/nodebake-ssh-keygen.service", 0o644},
	}
	for _, f := range embedded {
		data, err := presetFiles.ReadFile("files/" + f.name)
		if err != nil {
			return err
		}
		if err := t.WriteFile(f.dest, data, f.mode, "builtin:"+f.name); err != nil {
			return err
		}
	}
	// Swap: none is configured, and none may be: no swap units are
	// generated from partitions either.
	return t.Symlink("/dev/null", "/etc/systemd/system/swap.target", "builtin:no-swap")
}

// applyIdentity removes everything that must be unique per machine, so
// each instance makes its own on first boot, and locks root.
func applyIdentity(t *Tree) error {
	if err := t.WriteFile("/etc/machine-id", nil, 0o444, "builtin:empty-machine-id"); err != nil {
		return err
	}
	keys, _ := filepath.Glob(t.Path("/etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	for _, p := range []string{"/var/lib/dbus/machine-id", "/etc/hostname", "/var/lib/systemd/random-seed", "/var/cache/apt", "/var/lib/apt/lists"} {
		if err := t.Remove(p); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(t.Path("/var/lib/apt/lists/partial"), 0o755); err != nil {
		return err
	}
	if err := t.Symlink("../run/systemd/resolve/stub-resolv.conf", "/etc/resolv.conf", "builtin:systemd-resolved"); err != nil {
		return err
	}
	if err := lockRoot(t); err != nil {
		return err
	}
	// /root and /home live on the state partition.
	for dir, target := range map[string]string{"/root": "var/roothome", "/home": "var/home"} {
		if err := os.MkdirAll(t.Path("/"+target), 0o700); err != nil {
			return err
		}
		entries, _ := os.ReadDir(t.Path(dir))
		for _, e := range entries {
			if err := os.Rename(filepath.Join(t.Path(dir), e.Name()), filepath.Join(t.Path("/"+target), e.Name())); err != nil {
				return err
			}
		}
		if dir == "/home" {
			if err := os.Chmod(t.Path("/"+target), 0o755); err != nil {
				return err
			}
		}
		if err := t.Symlink(target, dir, "builtin:state-partition"); err != nil {
			return err
		}
	}
	return nil
}

// lockRoot gives root no usable password: "!*" in /etc/shadow.
func lockRoot(t *Tree) error {
	path := t.Path("/etc/shadow")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading /etc/shadow: %w", err)
	}
	lines := strings.Split(string(data), "\n")
	found := false
	for i, l := range lines {
		fields := strings.Split(l, ":")
		if len(fields) > 1 && fields[0] == "root" {
			fields[1] = "!*"
			lines[i] = strings.Join(fields, ":")
			found = true
		}
	}
	if !found {
		return fmt.Errorf("/etc/shadow has no root entry")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return t.WriteFile("/etc/shadow", []byte(strings.Join(lines, "\n")), fi.Mode().Perm(), "builtin:lock-root")
}

func findKernel(t *Tree) (version, kernel, initrd string, err error) {
	kernels, _ := filepath.Glob(t.Path("/boot/vmlinuz-*"))
	if len(kernels) != 1 {
		return "", "", "", fmt.Errorf("expected one kernel in /boot, found %d", len(kernels))
	}
	version = strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	initrd = t.Path("/boot/initrd.img-" + version)
	if _, err := os.Stat(initrd); err != nil {
		return "", "", "", fmt.Errorf("kernel %s has no initramfs: %w", version, err)
	}
	return version, kernels[0], initrd, nil
}
