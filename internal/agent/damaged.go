package agent

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/yaml"
)

// damaged reports whether a file kubeadm wrote did not survive a power
// cut: empty (ext4 commits a new file's name before its data), or holding
// what a lost write leaves, the blocks' earlier contents, which none of
// kubeadm's outputs can hold: every one is text (PEM, YAML, flags), and
// certificates, keys, kubeconfigs and manifests must read as such.
func damaged(path string, data []byte) (bool, string) {
	if len(data) == 0 {
		return true, "empty"
	}
	if bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data) {
		return true, "not text"
	}
	switch ext := filepath.Ext(path); ext {
	case ".crt", ".key", ".pub", ".pem":
		if why := badPEM(data); why != "" {
			return true, why
		}
	case ".conf", ".yaml", ".yml":
		var v map[string]any
		if err := yaml.Unmarshal(data, &v); err != nil || len(v) == 0 {
			return true, "not a YAML document"
		}
	}
	return false, ""
}

// badPEM says what is wrong with a PEM file of certificates or keys, ""
// when every block reads.
func badPEM(data []byte) string {
	n := 0
	for rest := data; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if strings.TrimSpace(string(rest)) != "" || n == 0 {
				return "not PEM"
			}
			return ""
		}
		var err error
		switch b.Type {
		case "CERTIFICATE":
			_, err = x509.ParseCertificate(b.Bytes)
		case "PRIVATE KEY":
			_, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			_, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			_, err = x509.ParseECPrivateKey(b.Bytes)
		case "PUBLIC KEY":
			_, err = x509.ParsePKIXPublicKey(b.Bytes)
		}
		if err != nil {
			return b.Type + " does not parse"
		}
	}
}
