package profile

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
)

var semverRE = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)$`)

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
		if c.Source != SourceGo {
			add(path+".source", "must be %q, not %q", SourceGo, c.Source)
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
