package configsource

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/nodebake/nodebake/internal/diskimage"
)

// Paths of the local sources.
const (
	cmdlinePath = "/proc/cmdline"
	// fwCfgPath is QEMU's fw_cfg entry opt/com.coreos/config, as the
	// qemu_fw_cfg module shows it.
	fwCfgPath = "/sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw"
	// BakedPath is a config baked into the image.
	BakedPath = "/usr/lib/nodebake/user.ign"
	// LiveMediaPath is a config on the ISO the node booted from (put
	// there with xorriso; see the README), which the initramfs mounted
	// on /run/nodebake/media.
	LiveMediaPath = "/run/nodebake/media/nodebake/config.ign"
	byLabelDir    = "/dev/disk/by-label"
)

// CmdlineURL returns the value of ignition.config.url= on a kernel
// command line, or "".
func CmdlineURL(cmdline string) string {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "ignition.config.url="); ok {
			return v
		}
	}
	return ""
}

func fromCmdline(ctx context.Context, e *Env) (*Found, error) {
	data, err := readLocal(e.path(cmdlinePath))
	if err != nil {
		return nil, err
	}
	raw := CmdlineURL(string(data))
	if raw == "" {
		return nil, ErrNone
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ignition.config.url=%s: must be an http or https URL", raw)
	}
	cfg, err := e.get(ctx, raw, nil)
	if err != nil {
		return nil, err
	}
	if len(cfg) == 0 {
		return nil, fmt.Errorf("%s: empty", redact(u))
	}
	return &Found{Source: "cmdline:" + redact(u), Config: cfg}, nil
}

func fromFwCfg(_ context.Context, e *Env) (*Found, error) {
	data, err := readLocal(e.path(fwCfgPath))
	if err != nil {
		return nil, err
	}
	return &Found{Config: data}, nil
}

// fromLiveMedia reads the config on the ISO the node booted from, which
// the initramfs mounted.
func fromLiveMedia(_ context.Context, e *Env) (*Found, error) {
	data, err := readLocal(e.path(LiveMediaPath))
	if err != nil {
		return nil, err
	}
	return &Found{Config: data}, nil
}

func fromBaked(_ context.Context, e *Env) (*Found, error) {
	data, err := readLocal(e.path(BakedPath))
	if err != nil {
		return nil, err
	}
	return &Found{Config: data}, nil
}

// fromConfigDrive reads an OpenStack config drive (label config-2,
// openstack/latest/user_data) or a volume labelled ignition holding
// config.ign, straight from the device, without mounting it.
func fromConfigDrive(_ context.Context, e *Env) (*Found, error) {
	for _, d := range []struct{ label, file string }{
		{"config-2", "/openstack/latest/user_data"},
		{"CONFIG-2", "/openstack/latest/user_data"},
		{"ignition", "/config.ign"},
		{"IGNITION", "/config.ign"},
	} {
		dev := e.path(byLabelDir + "/" + d.label)
		if _, err := os.Stat(dev); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		data, err := diskimage.ReadVolumeFile(dev, d.file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("label %s: %w", d.label, err)
		}
		if len(strings.TrimSpace(string(data))) == 0 {
			continue
		}
		return &Found{Source: "config-drive:" + d.label, Config: data}, nil
	}
	return nil, ErrNone
}
