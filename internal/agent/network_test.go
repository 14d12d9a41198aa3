package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/nodebake/nodebake/internal/kit"
	"github.com/nodebake/nodebake/internal/profile"
)

// manifestDoc is what the test reads of a manifest's documents.
type manifestDoc struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name, Namespace string
	} `json:"metadata"`
	Data map[string]string `json:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Name    string `json:"name"`
					EnvFrom []struct {
						ConfigMapRef *struct {
							Name     string `json:"name"`
							Optional bool   `json:"optional"`
						} `json:"configMapRef"`
					} `json:"envFrom"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

func manifestDocs(t *testing.T, manifest []byte) []manifestDoc {
	t.Helper()
	var docs []manifestDoc
	for i, d := range bytes.Split(manifest, []byte("\n---\n")) {
		var doc manifestDoc
		if err := yaml.Unmarshal(d, &doc); err != nil {
			t.Fatalf("document %d: %v\n%s", i+1, err, d)
		}
		docs = append(docs, doc)
	}
	return docs
}

// TestBakedNetworkReachesTheAPIServerDirectly renders the pod network the
// default image bakes, adds the endpoint as an init does, and checks that
// flanneld reads it: the ConfigMap in flannel's namespace, ahead of the
// DaemonSet, with the API server's own host and port.
func TestBakedNetworkReachesTheAPIServerDirectly(t *testing.T) {
	p, err := profile.Load("../../profiles/default.yaml", "../..")
	if err != nil {
		t.Fatal(err)
	}
	baked, err := kit.NetworkManifest(p.Spec.Kit)
	if err != nil || baked == nil {
		t.Fatalf("the default profile bakes no network manifest: %v", err)
	}
	out, err := withAPIServerEndpoint(baked, "https://10.10.0.1:6443")
	if err != nil {
		t.Fatal(err)
	}
	docs := manifestDocs(t, out)
	if want := len(manifestDocs(t, baked)) + 1; len(docs) != want {
		t.Fatalf("%d documents, want %d", len(docs), want)
	}
	cm, ds := -1, -1
	for i, d := range docs {
		switch {
		case d.Kind == "ConfigMap" && d.Metadata.Name == APIServerEndpoint:
			cm = i
			if d.Metadata.Namespace != "kube-flannel" || d.Data["KUBERNETES_SERVICE_HOST"] != "10.10.0.1" || d.Data["KUBERNETES_SERVICE_PORT"] != "6443" {
				t.Errorf("endpoint ConfigMap: %+v", d)
			}
		case d.Kind == "DaemonSet" && ds < 0:
			ds = i
			read := false
			for _, c := range d.Spec.Template.Spec.Containers {
				for _, e := range c.EnvFrom {
					if c.Name == "kube-flannel" && e.ConfigMapRef != nil && e.ConfigMapRef.Name == APIServerEndpoint && e.ConfigMapRef.Optional {
						read = true
					}
				}
			}
			if !read {
				t.Errorf("the kube-flannel container does not read the optional ConfigMap %s", APIServerEndpoint)
			}
		}
	}
	if cm < 0 || ds < 0 || cm > ds {
		t.Errorf("ConfigMap at document %d, DaemonSet at %d: want the ConfigMap first", cm, ds)
	}
}

func TestAPIServerEndpointRefusesABadServer(t *testing.T) {
	for _, server := range []string{"10.0.0.1:6443", "http://10.0.0.1:6443", "https://:6443"} {
		if _, err := withAPIServerEndpoint([]byte("kind: DaemonSet\n"), server); err == nil {
			t.Errorf("%s was accepted", server)
		}
	}
	// Without a port, https's own.
	out, err := withAPIServerEndpoint([]byte("kind: DaemonSet\nmetadata:\n  namespace: x\n"), "https://cp.example")
	if err != nil {
		t.Fatal(err)
	}
	if d := manifestDocs(t, out)[0]; d.Data["KUBERNETES_SERVICE_PORT"] != "443" || d.Metadata.Namespace != "x" {
		t.Errorf("%+v", d)
	}
}

// TestInitAppliesTheNetworkWithTheEndpoint runs an init and reads the
// manifest it applied.
func TestInitAppliesTheNetworkWithTheEndpoint(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	os.WriteFile(filepath.Join(root, "usr/share/nodebake/network.yaml"),
		[]byte("kind: Namespace\nmetadata:\n  name: net\n---\nkind: DaemonSet\nmetadata:\n  name: agent\n  namespace: net\n"), 0o644)
	node := &fakeNode{root: root}
	a, _ := newAgent(root, node, nil)
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	docs := manifestDocs(t, node.manifest)
	if len(docs) != 3 || docs[1].Kind != "ConfigMap" || docs[1].Metadata.Namespace != "net" ||
		docs[1].Data["KUBERNETES_SERVICE_HOST"] != "10.0.0.1" {
		t.Errorf("applied:\n%s", node.manifest)
	}
}
