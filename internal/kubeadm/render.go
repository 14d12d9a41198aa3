package kubeadm

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// RenderOptions are what an operator says about a node; Render turns
// them into kubeadm's own v1beta4 configuration.
type RenderOptions struct {
	Role              Role
	KubernetesVersion string
	Endpoint          string // host:port of the API server (join; init: controlPlaneEndpoint)
	Token             string
	CACertHashes      []string
	CertificateKey    string
	NodeName          string
	AdvertiseAddress  string
	PodCIDR           string
	ServiceCIDR       string
	// SingleNode leaves the control-plane taint off, so that pods run on
	// a one-node cluster.
	SingleNode bool
	// LeaderElectionLease is the lease of the controller manager and the
	// scheduler (init only); zero keeps Kubernetes' 15 s. See leases.
	LeaderElectionLease time.Duration
	// EncryptionAlgorithm is the key type of the certificates kubeadm
	// makes (init only): RSA-2048 (kubeadm's default when empty),
	// RSA-3072, RSA-4096, ECDSA-P256 or ECDSA-P384.
	EncryptionAlgorithm string
	// Patches says the node's config holds kubeadm patches in
	// PatchesDir; the kubeadm config then names that directory.
	Patches bool
}

// PatchesDir is where a node's kubeadm patches go (kubeadm's
// patches.directory).
const PatchesDir = "/etc/kubernetes/patches"

// patchFileRE is kubeadm's naming of a patch file: the target, an
// optional suffix ordering patches of one target, an optional patch
// type, and the extension. kubeadm skips, with a warning only, a file
// that does not match; render refuses it.
var patchFileRE = regexp.MustCompile(`^(etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kubeletconfiguration|corednsdeployment|kubeproxydaemonset)[^.+]*(\+(json|merge|strategic))?\.(json|yaml)$`)

// CheckPatchName says whether kubeadm applies a patch file of this name.
func CheckPatchName(name string) error {
	if !patchFileRE.MatchString(name) {
		return fmt.Errorf("%q is not a kubeadm patch name: TARGET[SUFFIX][+json|+merge|+strategic].yaml|.json, "+
			"TARGET one of etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubeletconfiguration, corednsdeployment, kubeproxydaemonset", name)
	}
	return nil
}

var encryptionAlgorithms = []string{"RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"}

// leaderElection are the controller manager's and scheduler's flags for
// a lease: renewed within two thirds of it, retried every twelfth. With
// Kubernetes' defaults (15 s, 10 s, 2 s) a slow control plane (no KVM, a
// busy host) misses a renewal, the component exits, and CSRs are never
// approved: no node can join. A longer lease only slows the takeover
// after a leader dies without releasing it.
func leaderElection(lease time.Duration) []any {
	arg := func(name string, d time.Duration) any { return map[string]any{"name": name, "value": d.String()} }
	return []any{
		arg("leader-elect-lease-duration", lease),
		arg("leader-elect-renew-deadline", lease*2/3),
		arg("leader-elect-retry-period", lease/12),
	}
}

// defaultServiceCIDR is kubeadm's service network when none is given.
var defaultServiceCIDR = netip.MustParsePrefix("10.96.0.0/12")

// nodeNameRE is a DNS-1123 subdomain, what Kubernetes takes as a node
// name (and what the hostname file gets).
var nodeNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// cidr parses a network option; "" is none. A network must be written as
// one (no host bits) and cannot be everything.
func cidr(s, option string, bad func([]string, string, ...any)) (netip.Prefix, bool) {
	if s == "" {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		bad([]string{option}, "%q must be a network, such as 10.244.0.0/16", s)
	case p != p.Masked():
		bad([]string{option}, "%q has host bits set: the network is %s", s, p.Masked())
	case p.Bits() == 0:
		bad([]string{option}, "%q is every address: a node could reach nothing else", s)
	default:
		return p, true
	}
	return netip.Prefix{}, false
}

var (
	tokenFormatRE   = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
	certKeyFormatRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	caHashRE        = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// OptionError is a render option that is wrong or missing, named as
// RenderOptions names it; a command line names its own flags for them.
type OptionError struct {
	Options []string // such as "Token"
	Message string
}

func (e *OptionError) Error() string {
	return strings.Join(e.Options, " and ") + ": " + e.Message
}

// Render writes the kubeadm configuration for o. Its errors are
// OptionErrors, joined.
func Render(o RenderOptions) ([]byte, error) {
	var errs []error
	bad := func(options []string, format string, args ...any) {
		errs = append(errs, &OptionError{Options: options, Message: fmt.Sprintf(format, args...)})
	}
	one := func(option string) []string { return []string{option} }
	if o.Token != "" && !tokenFormatRE.MatchString(o.Token) {
		bad(one("Token"), "must look like abcdef.0123456789abcdef")
	}
	if o.CertificateKey != "" && !certKeyFormatRE.MatchString(o.CertificateKey) {
		bad(one("CertificateKey"), "must be 64 hex digits")
	}
	for _, h := range o.CACertHashes {
		if !caHashRE.MatchString(h) {
			bad(one("CACertHashes"), "%q must be sha256: and 64 hex digits", h)
		}
	}
	if o.NodeName != "" && (len(o.NodeName) > 253 || !nodeNameRE.MatchString(o.NodeName)) {
		bad(one("NodeName"), "%q must be a DNS name: lower-case letters, digits, '-' and '.', at most 253, a letter or digit at each end", o.NodeName)
	}
	if o.AdvertiseAddress != "" {
		if a, err := netip.ParseAddr(o.AdvertiseAddress); err != nil || a.Zone() != "" {
			bad(one("AdvertiseAddress"), "%q must be an IP address", o.AdvertiseAddress)
		}
	}
	pods, podsOK := cidr(o.PodCIDR, "PodCIDR", bad)
	services, servicesOK := cidr(o.ServiceCIDR, "ServiceCIDR", bad)
	if o.ServiceCIDR == "" {
		services, servicesOK = defaultServiceCIDR, true
	}
	if o.PodCIDR != "" && podsOK && servicesOK && pods.Overlaps(services) {
		bad([]string{"PodCIDR", "ServiceCIDR"}, "%s and %s overlap: a pod address would also be a service's", pods, services)
	}
	nodeReg := map[string]any{"criSocket": "unix:///run/containerd/containerd.sock"}
	// kubeadm's default timeouts fit fast machines; a slow VM (no KVM, a
	// busy host) needs several times them. They are upper bounds: a fast
	// node is not slowed.
	timeouts := map[string]any{
		"controlPlaneComponentHealthCheck": "10m0s", "kubeletHealthCheck": "10m0s",
		"kubernetesAPICall": "5m0s", "etcdAPICall": "5m0s", "tlsBootstrap": "10m0s", "discovery": "10m0s",
	}
	if o.NodeName != "" {
		nodeReg["name"] = o.NodeName
	}
	var docs []map[string]any
	switch o.Role {
	case RoleInit:
		if !strings.HasPrefix(o.KubernetesVersion, "v") {
			bad(one("KubernetesVersion"), "must be pinned, such as v1.37.2: unpinned, kubeadm asks the internet")
		}
		if o.SingleNode {
			nodeReg["taints"] = []any{}
		}
		initCfg := map[string]any{"apiVersion": APIVersion, "kind": "InitConfiguration", "nodeRegistration": nodeReg, "timeouts": timeouts}
		if o.Token != "" {
			initCfg["bootstrapTokens"] = []any{map[string]any{"token": o.Token, "ttl": "24h0m0s", "groups": []string{"system:bootstrappers:kubeadm:default-node-token"}}}
		}
		if o.CertificateKey != "" {
			initCfg["certificateKey"] = o.CertificateKey
		}
		if o.Patches {
			initCfg["patches"] = map[string]any{"directory": PatchesDir}
		}
		if o.AdvertiseAddress != "" {
			initCfg["localAPIEndpoint"] = map[string]any{"advertiseAddress": o.AdvertiseAddress, "bindPort": 6443}
		}
		networking := map[string]any{}
		if o.PodCIDR != "" {
			networking["podSubnet"] = o.PodCIDR
		}
		if o.ServiceCIDR != "" {
			networking["serviceSubnet"] = o.ServiceCIDR
		}
		cluster := map[string]any{"apiVersion": APIVersion, "kind": "ClusterConfiguration",
			"kubernetesVersion": o.KubernetesVersion, "networking": networking}
		if o.Endpoint != "" {
			cluster["controlPlaneEndpoint"] = o.Endpoint
		}
		if o.EncryptionAlgorithm != "" {
			if !slices.Contains(encryptionAlgorithms, o.EncryptionAlgorithm) {
				bad(one("EncryptionAlgorithm"), "must be one of %s, not %q", strings.Join(encryptionAlgorithms, ", "), o.EncryptionAlgorithm)
			}
			cluster["encryptionAlgorithm"] = o.EncryptionAlgorithm
		}
		if o.LeaderElectionLease > 0 {
			if o.LeaderElectionLease < 15*time.Second {
				bad(one("LeaderElectionLease"), "must be at least 15s, Kubernetes' own")
			}
			cluster["controllerManager"] = map[string]any{"extraArgs": leaderElection(o.LeaderElectionLease)}
			cluster["scheduler"] = map[string]any{"extraArgs": leaderElection(o.LeaderElectionLease)}
		}
		docs = append(docs, initCfg, cluster)
	case RoleJoin, RoleControlPlane:
		if o.Endpoint == "" || o.Token == "" {
			bad([]string{"Endpoint", "Token"}, "needed to join")
		}
		if len(o.CACertHashes) == 0 {
			bad(one("CACertHashes"), "needed to join: a node does not trust an API server it cannot verify")
		}
		join := map[string]any{"apiVersion": APIVersion, "kind": "JoinConfiguration", "nodeRegistration": nodeReg, "timeouts": timeouts,
			"discovery": map[string]any{"bootstrapToken": map[string]any{
				"apiServerEndpoint": o.Endpoint, "token": o.Token, "caCertHashes": o.CACertHashes}}}
		if o.EncryptionAlgorithm != "" {
			bad(one("EncryptionAlgorithm"), "is the cluster's, set at init")
		}
		if o.Patches {
			join["patches"] = map[string]any{"directory": PatchesDir}
		}
		if o.Role == RoleControlPlane {
			if o.CertificateKey == "" {
				bad(one("CertificateKey"), "needed for a control-plane join")
			}
			cp := map[string]any{"certificateKey": o.CertificateKey}
			if o.AdvertiseAddress != "" {
				cp["localAPIEndpoint"] = map[string]any{"advertiseAddress": o.AdvertiseAddress, "bindPort": 6443}
			}
			join["controlPlane"] = cp
		}
		docs = append(docs, join)
	default:
		bad(one("Role"), "must be init, join or control-plane, not %q", o.Role)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []string
	for _, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			return nil, err
		}
		out = append(out, string(b))
	}
	return []byte("# kubeadm configuration, written by firstboot render\n" + strings.Join(out, "---\n")), nil
}

// CACertHash is kubeadm's discovery hash of a CA certificate in PEM: the
// sha256 of its public key info.
func CACertHash(pemData []byte) (string, error) {
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
