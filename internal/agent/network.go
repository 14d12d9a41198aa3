package agent

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/nodebake/nodebake/internal/atomicfile"
	"github.com/nodebake/nodebake/internal/manifest"
)

// APIServerEndpoint is the ConfigMap a pod network's DaemonSet reads
// through an optional envFrom: KUBERNETES_SERVICE_HOST and
// KUBERNETES_SERVICE_PORT naming the API server itself. Without it a
// host-network pod reaches the API server through the service VIP, which
// answers only once kube-proxy has written its rules on that node; until
// then the pod network's agent fails and backs off, for minutes.
const APIServerEndpoint = "kube-apiserver-endpoint"

// appliedNetworkManifest is the manifest podNetwork applies: the baked
// one with the endpoint ConfigMaps in front of its DaemonSets.
const appliedNetworkManifest = "/run/nodebake/network.yaml"

// withAPIServerEndpoint returns the manifest with an APIServerEndpoint
// ConfigMap for server (a kubeconfig's https://HOST:PORT) in the
// namespace of each DaemonSet, placed before the first DaemonSet so it
// exists when the pods start. The manifest is otherwise unchanged.
func withAPIServerEndpoint(manifest []byte, server string) ([]byte, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return nil, fmt.Errorf("API server %q: want https://HOST:PORT", server)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	docs := bytes.Split(manifest, []byte("\n---\n"))
	first := -1
	var namespaces []string
	seen := map[string]bool{}
	for i, doc := range docs {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if meta.Kind != "DaemonSet" {
			continue
		}
		if first < 0 {
			first = i
		}
		ns := meta.Metadata.Namespace
		if ns == "" {
			ns = "default"
		}
		if !seen[ns] {
			seen[ns] = true
			namespaces = append(namespaces, ns)
		}
	}
	if first < 0 {
		return manifest, nil
	}
	var out [][]byte
	out = append(out, docs[:first]...)
	for _, ns := range namespaces {
		cm, err := yaml.Marshal(map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": APIServerEndpoint, "namespace": ns},
			"data":     map[string]string{"KUBERNETES_SERVICE_HOST": u.Hostname(), "KUBERNETES_SERVICE_PORT": port},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, bytes.TrimSuffix(cm, []byte("\n")))
	}
	out = append(out, docs[first:]...)
	return bytes.Join(out, []byte("\n---\n")), nil
}

// kubeconfigServer is the API server a kubeconfig's first cluster names.
func kubeconfigServer(kubeconfig []byte) (string, error) {
	var cfg struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
			} `json:"cluster"`
		} `json:"clusters"`
	}
	if err := yaml.Unmarshal(kubeconfig, &cfg); err != nil {
		return "", err
	}
	if len(cfg.Clusters) == 0 || cfg.Clusters[0].Cluster.Server == "" {
		return "", fmt.Errorf("no cluster server")
	}
	return cfg.Clusters[0].Cluster.Server, nil
}

// networkManifest writes the manifest podNetwork applies and returns
// its path on the node.
func (a *Agent) networkManifest(admin []byte) (string, error) {
	baked, err := os.ReadFile(a.path(manifest.NetworkPath))
	if err != nil {
		return "", err
	}
	server, err := kubeconfigServer(admin)
	if err != nil {
		return "", fmt.Errorf("/etc/kubernetes/admin.conf: %w", err)
	}
	applied, err := withAPIServerEndpoint(baked, server)
	if err != nil {
		return "", fmt.Errorf("%s: %w", manifest.NetworkPath, err)
	}
	p := a.path(appliedNetworkManifest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	return appliedNetworkManifest, atomicfile.Write(p, applied, 0o644)
}
