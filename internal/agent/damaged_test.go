package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestDamaged: what a lost write leaves in kubeadm's outputs is found,
// and what kubeadm writes is not.
func TestDamaged(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	crt := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	kder, _ := x509.MarshalECPrivateKey(key)
	ecKey := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	pder, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}))
	// A certificate whose blocks are another file's, as an old block
	// read back gives.
	garbled := strings.Replace(crt, crt[40:80], strings.Repeat("A", 40), 1)
	for _, tc := range []struct {
		path, data string
		bad        bool
	}{
		{"/etc/kubernetes/pki/ca.crt", crt, false},
		{"/etc/kubernetes/pki/apiserver.crt", crt + crt, false},
		{"/etc/kubernetes/pki/sa.key", ecKey, false},
		{"/etc/kubernetes/pki/sa.pub", pub, false},
		{"/etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n", false},
		{"/etc/kubernetes/manifests/etcd.yaml", "apiVersion: v1\nkind: Pod\n", false},
		{"/var/lib/kubelet/kubeadm-flags.env", "KUBELET_KUBEADM_ARGS=\"--node-ip=10.0.0.1\"\n", false},
		{"/etc/kubernetes/pki/ca.crt", "", true},
		{"/etc/kubernetes/pki/ca.crt", "\x00\x00\x00\x00", true},
		{"/etc/kubernetes/pki/apiserver.crt", garbled, true},
		{"/etc/kubernetes/pki/apiserver.key", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", true},
		{"/etc/kubernetes/pki/front-proxy-ca.crt", "just text", true},
		{"/etc/kubernetes/pki/ca.crt", crt + "trailing", true},
		{"/etc/kubernetes/admin.conf", "x", true},
		{"/etc/kubernetes/manifests/kube-apiserver.yaml", "apiVersion: v1\n\tkind: [Pod\n", true},
		{"/var/lib/kubelet/config.yaml", "\xff\xfe binary", true},
	} {
		if bad, why := damaged(tc.path, []byte(tc.data)); bad != tc.bad {
			t.Errorf("%s %.30q: damaged %v (%s), want %v", tc.path, tc.data, bad, why, tc.bad)
		}
	}
}
