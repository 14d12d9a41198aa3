// Package rootfs makes the root filesystem tree of an image: the Debian base
// from mmdebstrap (cached by its inputs), then the node preset, overlays,
// units and identity rules applied on top.
package rootfs

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nodebake/nodebake/internal/cache"
	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/workdir"
)

// RequiredPackages are what a Kubernetes node needs from the OS, on top of
// Debian's minbase. The profile's packages are added to them.
var RequiredPackages = []string{
	"systemd", "systemd-sysv", "udev", "dbus", "libpam-systemd",
	"linux-image-amd64", "initramfs-tools", "kmod", "busybox",
	"systemd-boot-efi", "systemd-timesyncd", "systemd-resolved",
	"iproute2", "iptables", "nftables", "conntrack", "ethtool", "socat", "ebtables",
	"ca-certificates", "openssh-server", "zstd", "gettext-base",
	"e2fsprogs", "fdisk", "gdisk", "cloud-guest-utils", "procps", "util-linux",
}

// dpkgExcludes keep documentation out of the image; copyright files stay.
var dpkgExcludes = []string{
	"path-exclude=/usr/share/man/*",
	"path-exclude=/usr/share/info/*",
	"path-exclude=/usr/share/locale/*",
	"path-exclude=/usr/share/doc/*",
	"path-include=/usr/share/doc/*/copyright",
}

//go:embed initramfs
var initramfsFiles embed.FS

// BaseSpec is everything the Debian base depends on.
type BaseSpec struct {
	Suite    string
	Packages []string // extra packages from the profile
	Sources  []byte   // a sources.list for the suite
	Epoch    int64
}

func (b BaseSpec) packages() []string {
	pkgs := slices.Concat(RequiredPackages, b.Packages)
	slices.Sort(pkgs)
	return slices.Compact(pkgs)
}

// Key is the cache key of the base: a hash of every input.
func (b BaseSpec) Key() string {
	parts := [][]byte{
		[]byte("nodebake-base-v1"),
		[]byte(b.Suite),
		[]byte(strings.Join(b.packages(), ",")),
		b.Sources,
		[]byte(strconv.FormatInt(b.Epoch, 10)),
		[]byte(strings.Join(dpkgExcludes, ",")),
	}
	_ = fs.WalkDir(initramfsFiles, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := initramfsFiles.ReadFile(p)
			parts = append(parts, []byte(p), data)
		}
		return nil
	})
	return cache.Key(parts...)
}

// Base returns the path of the base tarball for spec, building it with
// mmdebstrap when the cache has none.
func Base(ctx context.Context, run *command.Runner, c *cache.Cache, spec BaseSpec, log *slog.Logger) (string, error) {
	key := spec.Key()
	if path, ok, err := c.Lookup("base", key); err != nil {
		return "", err
	} else if ok {
		log.Info("base found in cache", "key", key[:12])
		return path, nil
	}
	log.Info("building base with mmdebstrap", "suite", spec.Suite, "key", key[:12])

	wd, err := workdir.New("nodebake-base-")
	if err != nil {
		return "", err
	}
	defer wd.Remove()
	work := wd.Path
	hooks, err := writeInitramfsFiles(work)
	if err != nil {
		return "", err
	}
	sources := filepath.Join(work, "sources.list")
	if err := os.WriteFile(sources, spec.Sources, 0o644); err != nil {
		return "", err
	}
	tmp, err := c.TempPath("base", key)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)

	args := []string{
		"--mode=root", "--variant=minbase", "--format=tar",
		"--include=" + strings.Join(spec.packages(), ","),
		"--aptopt=Acquire::Retries \"3\"",
		"--setup-hook=mkdir -p \"$1/etc/initramfs-tools/scripts/local-top\" \"$1/etc/initramfs-tools/scripts/local-bottom\" \"$1/etc/initramfs-tools/hooks\"",
		"--setup-hook=copy-in " + filepath.Join(hooks, "nodebake-live") + " /etc/initramfs-tools/scripts/local-top/",
		"--setup-hook=copy-in " + filepath.Join(hooks, "nodebake-state") + " /etc/initramfs-tools/scripts/local-bottom/",
		"--setup-hook=copy-in " + filepath.Join(hooks, "nodebake") + " /etc/initramfs-tools/hooks/",
	}
	for _, o := range dpkgExcludes {
		args = append(args, "--dpkgopt="+o)
	}
	args = append(args, spec.Suite, tmp, sources)
	if _, err := run.Run(ctx, command.Cmd{
		Name: "mmdebstrap",
		Args: args,
		Env:  []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(spec.Epoch, 10)},
	}); err != nil {
		return "", fmt.Errorf("building base: %w", err)
	}
	return c.Commit("base", key, tmp)
}

func writeInitramfsFiles(work string) (string, error) {
	dir := filepath.Join(work, "initramfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	entries, err := initramfsFiles.ReadDir("initramfs")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		data, err := initramfsFiles.ReadFile("initramfs/" + e.Name())
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}
