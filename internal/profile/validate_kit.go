package profile

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
)

var (
	semverRE = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// imageRefRE is a reference with a registry host and a tag.
	imageRefRE = regexp.MustCompile(`^[a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// validateKit checks the kit's sources, versions and version skew:
// kubelet, kubeadm and kubectl are the Kubernetes version, and containerd
// is at least 2.0.
func validateKit(k *Kit) []FieldError {
	var errs []FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if !semverRE.MatchString(k.KubernetesVersion) {
		add("spec.kit.kubernetesVersion", "must be a version such as v1.37.2, not %q", k.KubernetesVersion)
	}
	if k.RegistryMirror != "" && !registryHost(k.RegistryMirror) {
		add("spec.kit.registryMirror", "must be a registry host, HOST or HOST:PORT such as registry.example:5000, not %q", k.RegistryMirror)
	}
	switch k.Network.Plugin {
	case NetworkFlannel:
		if !semverRE.MatchString(k.Network.Version) {
			add("spec.kit.network.version", "must be a version such as v0.28.10, not %q", k.Network.Version)
		}
		if p, err := netip.ParsePrefix(k.Network.PodCIDR); err != nil || p != p.Masked() || !p.Addr().Is4() || p.Bits() > 24 || p.Bits() < 8 {
			add("spec.kit.network.podCIDR", "must be an IPv4 network from /8 to /24, such as 10.244.0.0/16, not %q", k.Network.PodCIDR)
		}
	case NetworkNone:
		if k.Network.Version != "" || k.Network.PodCIDR != "" {
			add("spec.kit.network", "plugin none takes no version or podCIDR")
		}
		if _, ok := k.Components[ComponentFlannelCNI]; ok {
			add("spec.kit.components."+ComponentFlannelCNI, "only a kit whose network plugin is flannel has it")
		}
	default:
		add("spec.kit.network.plugin", "must be %q or %q, not %q", NetworkFlannel, NetworkNone, k.Network.Plugin)
	}
	seen := map[string]bool{}
	for i, img := range k.Images {
		path := fmt.Sprintf("spec.kit.images[%d]", i)
		if !imageRefRE.MatchString(img.Ref) {
			add(path+".ref", "must be a reference with a registry and a tag, such as registry.k8s.io/pause:3.10.2, not %q", img.Ref)
		} else if seen[img.Ref] {
			add(path+".ref", "%s is listed twice", img.Ref)
		}
		seen[img.Ref] = true
		switch img.Source {
		case ImageSourceBuild:
			if img.Digest != "" || img.Path != "" {
				add(path, "a build source takes no digest or path")
			}
		case ImageSourceRegistry:
			if img.Path != "" {
				add(path+".path", "a registry source takes no path")
			}
		case ImageSourceOCILayout:
			if !filepath.IsAbs(img.Path) {
				add(path+".path", "must be an absolute path, not %q", img.Path)
			}
		default:
			add(path+".source", "must be %q, %q or %q, not %q", ImageSourceBuild, ImageSourceRegistry, ImageSourceOCILayout, img.Source)
		}
		if img.Digest != "" && !digestRE.MatchString(img.Digest) {
			add(path+".digest", "must be sha256: and 64 lowercase hex digits, not %q", img.Digest)
		}
	}
	names := make([]string, 0, len(k.Components))
	for name := range k.Components {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := k.Components[name]
		path := "spec.kit.components." + name
		if !slices.Contains(ComponentNames, name) {
			add(path, "unknown component; the kit has %v", ComponentNames)
			continue
		}
		if name == ComponentFlannelCNI && k.Network.Plugin != NetworkFlannel {
			continue // reported above
		}
		switch c.Source {
		case SourceGo:
			if c.URL != "" || c.Path != "" || c.SHA256 != "" {
				add(path, "a go source takes no url, path or sha256")
			}
		case SourceURL:
			if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				add(path+".url", "must be an http or https URL, not %q", c.URL)
			}
		case SourceFile:
			if !filepath.IsAbs(c.Path) {
				add(path+".path", "must be an absolute path, not %q", c.Path)
			}
		default:
			add(path+".source", "must be %q, %q or %q, not %q", SourceGo, SourceURL, SourceFile, c.Source)
		}
		if c.SHA256 != "" && !sha256RE.MatchString(c.SHA256) {
			add(path+".sha256", "must be 64 lowercase hex digits")
		}
		if !semverRE.MatchString(c.Version) {
			add(path+".version", "must be a version such as v1.2.3, not %q", c.Version)
			continue
		}
		switch name {
		case ComponentKubelet, ComponentKubeadm, ComponentKubectl:
			if c.Version != k.KubernetesVersion {
				add(path+".version", "%s must be the Kubernetes version %s, not %s", name, k.KubernetesVersion, c.Version)
			}
		case ComponentContainerd:
			if major, _ := strconv.Atoi(semverRE.FindStringSubmatch(c.Version)[1]); major < 2 {
				add(path+".version", "containerd must be 2.0 or later, not %s", c.Version)
			}
		}
	}
	return errs
}

// registryHost reports whether s is a registry as an image reference
// names one: a DNS name or an IP address, and an optional port; no scheme,
// path or user.
func registryHost(s string) bool {
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return hostnameRE.MatchString(host)
}

var hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)
