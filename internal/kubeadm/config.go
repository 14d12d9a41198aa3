// Package kubeadm reads the kubeadm configuration a node is given and runs
// kubeadm: config validate, init, join and reset. kubeadm's own v1beta4 API
// is the interface; this package reads only the fields it must act on.
package kubeadm

import (
	"bytes"

	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// ConfigPath is where the node's Ignition config puts kubeadm's
// configuration.
const ConfigPath = "/etc/kubernetes/kubeadm.yaml"

// APIVersion is the kubeadm configuration API nodebake reads.
const APIVersion = "kubeadm.k8s.io/v1beta4"

// Role is what a node becomes.
type Role string

const (
	RoleInit         Role = "init"          // the first control-plane node
	RoleJoin         Role = "join"          // a worker
	RoleControlPlane Role = "control-plane" // another control-plane node
)

// Config is what the agent needs to know of a kubeadm configuration.
type Config struct {
	Role              Role
	KubernetesVersion string
	// CertificateKey is set for an init that uploads the control-plane
	// certificates, or a control-plane join that downloads them.
	CertificateKey string
	NodeName       string
	PodSubnet      string
	// Secrets are the values that must never be logged: bootstrap
	// tokens and the certificate key.
	Secrets []string
	// Kinds are the documents' kinds, in order.
	Kinds []string
}

type doc struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`

	KubernetesVersion string `json:"kubernetesVersion"`
	CertificateKey    string `json:"certificateKey"`
	Networking        struct {
		PodSubnet string `json:"podSubnet"`
	} `json:"networking"`
	NodeRegistration struct {
		Name string `json:"name"`
	} `json:"nodeRegistration"`
	BootstrapTokens []struct {
		Token string `json:"token"`
	} `json:"bootstrapTokens"`
	Discovery struct {
		BootstrapToken *struct {
			Token string `json:"token"`
		} `json:"bootstrapToken"`
		File *struct {
			KubeConfigPath string `json:"kubeConfigPath"`
		} `json:"file"`
		TLSBootstrapToken string `json:"tlsBootstrapToken"`
	} `json:"discovery"`
	ControlPlane *struct {
		CertificateKey string `json:"certificateKey"`
	} `json:"controlPlane"`
}

// ParseConfig reads a multi-document kubeadm configuration and decides
// the role from its kinds: InitConfiguration is init, JoinConfiguration
// is join, and a JoinConfiguration with controlPlane is a control-plane
// join.
func ParseConfig(data []byte) (*Config, error) {
	c := &Config{}
	if i := bytes.IndexFunc(data, notPrintable); i >= 0 {
		return nil, fmt.Errorf("byte %d: %w", i, errNotPrintable)
	}
	if i := bareCR(data); i >= 0 {
		return nil, fmt.Errorf("byte %d: %w", i, errBareCR)
	}
	docs, err := splitDocs(data)
	if err != nil {
		return nil, err
	}
	for i, part := range docs {
		// Strict: a key given twice is an error, not a guess at which
		// one kubeadm will take.
		js, err := yaml.YAMLToJSONStrict(part)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		// Case-sensitive, as kubeadm decodes (k8s.io/apimachinery uses
		// sigs.k8s.io/json): encoding/json would read "kInd" as kind,
		// which kubeadm ignores.
		var d doc
		if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &d); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if d.Kind == "" {
			return nil, fmt.Errorf("document %d has no kind", i+1)
		}
		c.Kinds = append(c.Kinds, d.Kind)
		if strings.HasPrefix(d.APIVersion, "kubeadm.k8s.io/") && d.APIVersion != APIVersion {
			return nil, fmt.Errorf("%s is %s; nodebake reads %s", d.Kind, d.APIVersion, APIVersion)
		}
		switch d.Kind {
		case "InitConfiguration":
			if c.Role != "" {
				return nil, fmt.Errorf("both %s and InitConfiguration", roleKind(c.Role))
			}
			c.Role = RoleInit
			c.CertificateKey = d.CertificateKey
			c.NodeName = d.NodeRegistration.Name
			for _, t := range d.BootstrapTokens {
				c.Secrets = append(c.Secrets, t.Token)
			}
		case "JoinConfiguration":
			if c.Role != "" {
				return nil, fmt.Errorf("both %s and JoinConfiguration", roleKind(c.Role))
			}
			c.Role = RoleJoin
			if d.ControlPlane != nil {
				c.Role = RoleControlPlane
				c.CertificateKey = d.ControlPlane.CertificateKey
			}
			c.NodeName = d.NodeRegistration.Name
			if d.Discovery.BootstrapToken == nil && d.Discovery.File == nil {
				return nil, fmt.Errorf("JoinConfiguration has no discovery: a node joins through discovery.bootstrapToken or discovery.file")
			}
			if d.Discovery.BootstrapToken != nil {
				c.Secrets = append(c.Secrets, d.Discovery.BootstrapToken.Token)
			}
			c.Secrets = append(c.Secrets, d.Discovery.TLSBootstrapToken)
		case "ClusterConfiguration":
			c.KubernetesVersion = d.KubernetesVersion
			c.PodSubnet = d.Networking.PodSubnet
		}
	}
	if c.Role == "" {
		return nil, fmt.Errorf("no InitConfiguration or JoinConfiguration among %v", c.Kinds)
	}
	if c.CertificateKey != "" {
		c.Secrets = append(c.Secrets, c.CertificateKey)
	}
	c.Secrets = nonEmpty(c.Secrets)
	return c, nil
}

func roleKind(r Role) string {
	if r == RoleInit {
		return "InitConfiguration"
	}
	return "JoinConfiguration"
}

var errNotPrintable = errors.New("a character YAML does not allow (a control character, or not UTF-8)")

// notPrintable is a rune outside YAML's printable set (YAML 1.2, 5.1).
// errBareCR: kubeadm's document reader ends lines at line feeds only, YAML
// at a carriage return too, so the two would read different documents.
var errBareCR = errors.New("a carriage return not followed by a line feed")

// bareCR is the index of the first carriage return not followed by a
// line feed, or -1.
func bareCR(data []byte) int {
	for i, b := range data {
		if b == '\r' && (i+1 == len(data) || data[i+1] != '\n') {
			return i
		}
	}
	return -1
}

func notPrintable(r rune) bool {
	switch {
	case r == '\t', r == '\n', r == '\r', r == 0x85:
		return false
	case r == utf8.RuneError, r < 0x20, r >= 0x7f && r < 0xa0, r >= 0xd800 && r < 0xe000, r == 0xfffe, r == 0xffff:
		return true
	}
	return false
}

// splitDocs splits a multi-document file as kubeadm's own reader does
// (k8s.io/apimachinery's YAMLReader): at each line that begins with "---"
// and holds nothing more than a comment. Anything else after "---" is an
// error there, and here; so is a comment not set off by a space, which
// that reader takes and YAML does not. A YAML document end, "...", which that reader
// does not know, is refused rather than read two ways.
func splitDocs(data []byte) ([][]byte, error) {
	var out [][]byte
	var cur []byte
	flush := func() {
		if len(bytes.TrimSpace(stripComments(cur))) > 0 {
			out = append(out, cur)
		}
		cur = nil
	}
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("---")); ok {
			// A comment must be set off by a space, or YAML reads it as
			// more of the line.
			if t := bytes.TrimSpace(rest); len(t) > 0 && (t[0] != '#' || !bytes.ContainsAny(rest[:1], " \t")) {
				return nil, fmt.Errorf("line %d: %.40q is not a document separator (---, then nothing but a comment)", i+1, bytes.TrimSpace(line))
			}
			flush()
			continue
		}
		if rest, ok := bytes.CutPrefix(line, []byte("...")); ok && (len(rest) == 0 || bytes.ContainsAny(rest[:1], " \t\r\n")) {
			// YAML ends the document at "..." set off by a space or the
			// line's end, whatever follows on the line.
			return nil, fmt.Errorf("line %d: a YAML document end (...), which kubeadm does not read", i+1)
		}
		cur = append(cur, line...)
	}
	flush()
	return out, nil
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l...)
		}
	}
	return out
}

func nonEmpty(s []string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}
