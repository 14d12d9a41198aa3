package kubeadm

import (
	"bytes"
	"errors"
	"io"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
)

// FuzzParseConfig: the splitter and parser never panic, and whatever they
// accept a real YAML decoder reads as the same documents with the same
// kinds, in the same order.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nbootstrapTokens: [{token: abcdef.0123456789abcdef}]\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.37.2\n",
		"apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken: {apiServerEndpoint: 10.0.0.1:6443, token: abcdef.0123456789abcdef}\ncontrolPlane: {certificateKey: " + string(bytes.Repeat([]byte("ab"), 32)) + "}\n",
		"# a comment\n---\nkind: InitConfiguration\n--- # more\nkind: KubeletConfiguration\nx: |\n  ---\n",
		"kind: InitConfiguration\n...\nkind: JoinConfiguration\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		var kinds []string
		dec := yamlv3.NewDecoder(bytes.NewReader(data))
		for {
			var d map[string]any
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("ParseConfig accepted what YAML refuses (%v):\n%q", err, data)
			}
			if d == nil {
				continue
			}
			k, _ := d["kind"].(string)
			kinds = append(kinds, k)
		}
		if len(kinds) != len(c.Kinds) {
			t.Fatalf("kinds %q, YAML reads %q:\n%q", c.Kinds, kinds, data)
		}
		for i := range kinds {
			if kinds[i] != c.Kinds[i] {
				t.Fatalf("kinds %q, YAML reads %q:\n%q", c.Kinds, kinds, data)
			}
		}
	})
}
