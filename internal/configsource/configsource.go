// Package configsource finds a node's Ignition config where its platform
// puts it, trying each source in a fixed, documented order; the first one
// that has a config wins.
package configsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nodebake/nodebake/internal/rootpath"
)

// ErrNone means a source is absent or holds no config; the next is tried.
var ErrNone = errors.New("no config here")

// ErrNoConfig means no source had a config.
var ErrNoConfig = errors.New("no Ignition config in any source")

// Env is the machine the sources are read from. Root prefixes every local
// path (/proc, /sys, /dev, /usr); the base URLs default to the platforms'
// own and are overridden by tests.
type Env struct {
	Root     string
	HTTP     *http.Client
	Log      *slog.Logger
	Deadline time.Duration // per network source, retries included
	Backoff  time.Duration // first wait between retries

	AWSBase   string // http://169.254.169.254
	GCPBase   string // http://metadata.google.internal
	AzureBase string // http://169.254.169.254
}

func (e *Env) path(p string) string {
	return rootpath.Join(e.Root, p)
}

func (e *Env) client() *http.Client {
	if e.HTTP != nil {
		return e.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// Found is a config and where it came from.
type Found struct {
	Source string // such as fw_cfg, or cmdline:https://host/x.ign
	Config []byte
	// Hostname is what the cloud's metadata service names the machine,
	// when the config came from one.
	Hostname string
	// InstanceID and IPv4 are the instance's ID and private address by
	// the same service.
	InstanceID, IPv4 string
	// Metadata is what the service says of the instance, by the names
	// Flatcar's coreos-metadata (afterburn) gives it in
	// /run/metadata/flatcar, such as COREOS_EC2_HOSTNAME: the names
	// Cluster API's Flatcar templates fill their kubeadm configuration
	// in with.
	Metadata map[string]string
}

// source is one place a config can be.
type source struct {
	name string
	// applies says whether to try it at all (the clouds check DMI).
	applies func(*Env) bool
	fetch   func(context.Context, *Env) (*Found, error)
}

// Sources, in the order they are tried.
var sources = []source{
	{"cmdline", always, fromCmdline},
	{"fw_cfg", always, fromFwCfg},
	{"config-drive", always, fromConfigDrive},
	{"live-media", always, fromLiveMedia},
	{"aws", onAWS, fromAWS},
	{"gcp", onGCP, fromGCP},
	{"azure", onAzure, fromAzure},
	{"baked", always, fromBaked},
}

// Names lists the sources in the order they are tried.
func Names() []string {
	out := make([]string, len(sources))
	for i, s := range sources {
		out[i] = s.name
	}
	return out
}

func always(*Env) bool { return true }

// Find tries every source in order and returns the first config. A source
// that fails (rather than being absent) stops the search: a node must not
// fall through to a different config because its own was unreachable.
func Find(ctx context.Context, env *Env) (*Found, error) {
	for _, s := range sources {
		if !s.applies(env) {
			continue
		}
		f, err := s.fetch(ctx, env)
		if errors.Is(err, ErrNone) {
			if env.Log != nil {
				env.Log.Debug("no config", "source", s.name)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("config source %s: %w", s.name, err)
		}
		if f.Source == "" {
			f.Source = s.name
		}
		return f, nil
	}
	return nil, ErrNoConfig
}

// readLocal reads a local file, mapping absence to ErrNone.
func readLocal(p string) ([]byte, error) {
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNone
	}
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, ErrNone
	}
	return data, nil
}
