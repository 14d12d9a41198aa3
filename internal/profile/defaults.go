package profile

import (
	"slices"

	"github.com/nodebake/nodebake/internal/defaults"
	"github.com/nodebake/nodebake/internal/diskformat"
)

// Default values. They are filled in by SetDefaults and nowhere else.
const (
	DefaultSuite           = "bookworm"
	DefaultESPSize         = "256MiB"
	DefaultRootSize        = "2GiB"
	DefaultStateSize       = "1GiB"
	DefaultOutputDir       = "out"
	DefaultSourceDateEpoch = int64(1735689600) // 2025-01-01T00:00:00Z

	DefaultKubernetesVersion = defaults.KubernetesVersion
	DefaultNetwork           = NetworkFlannel
	DefaultFlannelVersion    = "v0.28.10"
	DefaultPodCIDR           = defaults.PodCIDR
)

// defaultComponentVersions are the pinned versions of the kit's
// components that do not follow the Kubernetes version.
var defaultComponentVersions = map[string]string{
	ComponentContainerd: "v2.4.2",
	ComponentRunc:       "v1.5.2",
	ComponentCrictl:     "v1.36.0",
	ComponentCNIPlugins: "v1.9.1",
	// flannel's CNI plugin left containernetworking/plugins after v0.9.1;
	// its own module (flannel-io/cni-plugin) is not on the Go proxy.
	ComponentFlannelCNI: "v0.9.1",
}

// defaultCmdline puts the console on both the screen and the first serial
// port; the serial port is last, so it is /dev/console.
var defaultCmdline = []string{"console=tty0", "console=ttyS0,115200"}

// presetSysctls are what production Kubernetes node images set: bridged
// traffic through iptables, forwarding, the inotify and map limits that
// many pods need, and the kernel defaults the kubelet's
// --protect-kernel-defaults expects.
var presetSysctls = map[string]string{
	"net.bridge.bridge-nf-call-iptables":  "1",
	"net.bridge.bridge-nf-call-ip6tables": "1",
	"net.ipv4.ip_forward":                 "1",
	// kubeadm requires IPv6 forwarding when the node's address is IPv6
	// (networkd still takes router advertisements itself).
	"net.ipv6.conf.all.forwarding":     "1",
	"net.ipv6.conf.default.forwarding": "1",
	"fs.inotify.max_user_watches":      "524288",
	"fs.inotify.max_user_instances":    "8192",
	"vm.max_map_count":                 "262144",
	"vm.overcommit_memory":             "1",
	"kernel.panic":                     "10",
	"kernel.panic_on_oops":             "1",
}

// presetModules are loaded at boot: overlay for containerd's snapshotter,
// br_netfilter for the bridge sysctls above.
var presetModules = []string{"overlay", "br_netfilter"}

// SetDefaults fills every unset field. The profile's own sysctls override
// the preset; the preset's modules are added to the profile's.
func SetDefaults(p *Profile) {
	s := &p.Spec
	if s.Base.Suite == "" {
		s.Base.Suite = DefaultSuite
	}
	if s.Kernel.Cmdline == nil {
		s.Kernel.Cmdline = slices.Clone(defaultCmdline)
	}
	if s.Disk.ESPSize == "" {
		s.Disk.ESPSize = DefaultESPSize
	}
	if s.Disk.RootSize == "" {
		s.Disk.RootSize = DefaultRootSize
	}
	if s.Disk.StateSize == "" {
		s.Disk.StateSize = DefaultStateSize
	}

	sysctls := make(map[string]string, len(presetSysctls)+len(s.Node.Sysctls))
	for k, v := range presetSysctls {
		sysctls[k] = v
	}
	for k, v := range s.Node.Sysctls {
		sysctls[k] = v
	}
	s.Node.Sysctls = sysctls

	// The profile's modules keep their indexes, so validation paths point
	// at what the author wrote; the preset's follow.
	modules := slices.Clone(s.Node.Modules)
	for _, m := range presetModules {
		if !slices.Contains(modules, m) {
			modules = append(modules, m)
		}
	}
	s.Node.Modules = modules

	if s.Outputs.Dir == "" {
		s.Outputs.Dir = DefaultOutputDir
	}
	if s.Outputs.Formats == nil {
		s.Outputs.Formats = []string{diskformat.Raw, diskformat.Qcow2}
	}
	if s.Kit != nil {
		setKitDefaults(s.Kit)
	}
	if s.SourceDateEpoch == nil {
		epoch := DefaultSourceDateEpoch
		s.SourceDateEpoch = &epoch
	}
}

// setKitDefaults fills the Kubernetes version and every component: the
// Kubernetes components follow the Kubernetes version, the others their
// pinned defaults, and the source is go.
func setKitDefaults(k *Kit) {
	if k.KubernetesVersion == "" {
		k.KubernetesVersion = DefaultKubernetesVersion
	}
	if k.Network.Plugin == "" {
		k.Network.Plugin = DefaultNetwork
	}
	if k.Network.Plugin == NetworkFlannel {
		if k.Network.Version == "" {
			k.Network.Version = DefaultFlannelVersion
		}
		if k.Network.PodCIDR == "" {
			k.Network.PodCIDR = DefaultPodCIDR
		}
	}
	if k.Components == nil {
		k.Components = map[string]Component{}
	}
	for _, name := range ComponentNames {
		if name == ComponentFlannelCNI && k.Network.Plugin != NetworkFlannel {
			continue
		}
		c := k.Components[name]
		if c.Source == "" {
			c.Source = SourceGo
		}
		if c.Version == "" {
			c.Version = defaultComponentVersions[name]
			if c.Version == "" {
				c.Version = k.KubernetesVersion
			}
		}
		k.Components[name] = c
	}
}
