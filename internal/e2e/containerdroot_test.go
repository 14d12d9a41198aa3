package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// seededImages reads containerd's metadata from the state partition of
// raw, as the build prepared it, and returns each image in the k8s.io
// namespace with its digest. It fails t on an image that is not pinned,
// or whose times are not the build's epoch (the manifest's
// sourceDateEpoch).
func seededImages(t *testing.T, raw, manifestPath string, rep inspectReport) map[string]string {
	t.Helper()
	start := int64(-1)
	for _, p := range rep.Partitions {
		if p.Name == "state" {
			start = p.Start
		}
	}
	if start < 0 {
		t.Fatalf("%s has no state partition: %+v", raw, rep.Partitions)
	}
	var m struct {
		SourceDateEpoch int64 `json:"sourceDateEpoch"`
	}
	if err := json.Unmarshal([]byte(readFile(manifestPath)), &m); err != nil {
		t.Fatal(err)
	}
	epoch, _ := time.Unix(m.SourceDateEpoch, 0).UTC().MarshalBinary()
	dir := t.TempDir()
	fsys := fmt.Sprintf("%s?offset=%d", raw, start)
	for _, f := range []string{"io.containerd.metadata.v1.bolt/meta.db", "../nodebake/images/node.imported", "../nodebake/images/workloads.imported"} {
		tool(t, "debugfs", "-R", fmt.Sprintf("dump /lib/containerd/%s %s", f, filepath.Join(dir, filepath.Base(f))), fsys)
	}
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("containerd's metadata on the state partition: %v", err)
	}
	defer db.Close()
	got := map[string]string{}
	err = db.View(func(tx *bolt.Tx) error {
		images := tx.Bucket([]byte("v1")).Bucket([]byte("k8s.io")).Bucket([]byte("images"))
		if images == nil {
			return fmt.Errorf("no images in the k8s.io namespace")
		}
		return images.ForEach(func(name, _ []byte) error {
			img := images.Bucket(name)
			got[string(name)] = string(img.Bucket([]byte("target")).Get([]byte("digest")))
			if l := img.Bucket([]byte("labels")); l == nil || string(l.Get([]byte("io.cri-containerd.pinned"))) != "pinned" {
				t.Errorf("seeded image %s is not pinned", name)
			}
			for _, k := range []string{"createdat", "updatedat"} {
				if v := img.Get([]byte(k)); !bytes.Equal(v, epoch) {
					t.Errorf("seeded image %s: %s is %x, not the build's epoch", name, k, v)
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	// import-images' marks: the archives' lists, as it writes them.
	for _, name := range []string{"node", "workloads"} {
		mark := readFile(filepath.Join(dir, name+".imported"))
		for _, l := range strings.Split(strings.TrimSpace(mark), "\n") {
			ref, digest, _ := strings.Cut(l, " ")
			if got[ref] != digest {
				t.Errorf("%s.imported lists %s at %s, containerd's root has %q", name, ref, digest, got[ref])
			}
		}
	}
	refs := make([]string, 0, len(got))
	for r := range got {
		refs = append(refs, r)
	}
	slices.Sort(refs)
	t.Logf("containerd's root on the state partition holds %d images: %s", len(got), strings.Join(refs, ", "))
	return got
}
