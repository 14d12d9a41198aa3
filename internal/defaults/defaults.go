// Package defaults holds the defaults that both sides of nodebake must
// agree on: the builder bakes an image with them when its profile does
// not say otherwise, and the on-node `firstboot render` writes configs
// for such an image. It imports nothing, so the on-node agent can share
// them without linking the builder.
package defaults

const (
	// KubernetesVersion is the kit's Kubernetes version.
	KubernetesVersion = "v1.37.2"
	// PodCIDR is the pod network's CIDR.
	PodCIDR = "10.244.0.0/16"
)
