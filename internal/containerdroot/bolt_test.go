package containerdroot

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// record is one key of a test database: its bucket path and value.
type record struct {
	path []string
	key  string
	val  []byte
}

// records are containerd-shaped metadata: images and content in a
// namespace, each in a bucket of its own with nested labels, and times.
func records(stamp func() []byte) []record {
	var out []record
	for i := range 40 {
		blob := []string{"v1", "k8s.io", "content", "blob", fmt.Sprintf("sha256:%064d", i)}
		out = append(out,
			record{blob, "createdat", stamp()},
			record{blob, "size", []byte{byte(i), 6}},
			record{blob, "updatedat", stamp()},
			record{append(blob[:len(blob):len(blob)], "labels"), "containerd.io/gc.ref.snapshot.overlayfs", bytes.Repeat([]byte{'a' + byte(i%26)}, 71)},
		)
		img := []string{"v1", "k8s.io", "images", fmt.Sprintf("registry.example/image-%d:v1", i)}
		out = append(out,
			record{img, "createdat", stamp()},
			record{append(img[:len(img):len(img)], "labels"), "io.cri-containerd.pinned", []byte("pinned")},
			record{append(img[:len(img):len(img)], "target"), "digest", []byte(fmt.Sprintf("sha256:%064d", i))},
		)
	}
	return append(out, record{[]string{"v1"}, "version", []byte{8}})
}

// write makes a database of rs at path, putting them in the given order,
// a few to a transaction, as a daemon would over time.
func write(t *testing.T, path string, rs []record, order []int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for start := 0; start < len(order); start += 7 {
		err := db.Update(func(tx *bolt.Tx) error {
			for _, i := range order[start:min(start+7, len(order))] {
				r := rs[i]
				b, err := tx.CreateBucketIfNotExists([]byte(r.path[0]))
				if err != nil {
					return err
				}
				for _, p := range r.path[1:] {
					if b, err = b.CreateBucketIfNotExists([]byte(p)); err != nil {
						return err
					}
				}
				if r.path[len(r.path)-1] == "overlayfs" {
					if _, err := b.NextSequence(); err != nil {
						return err
					}
				}
				if err := b.Put([]byte(r.key), r.val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestNormalizeIsReproducible writes the same records into two databases
// in different orders and transactions, with different times, and
// normalizes both: the files must be equal byte for byte, every time the
// epoch, and every other value and the buckets' sequences kept.
func TestNormalizeIsReproducible(t *testing.T) {
	epoch := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := time.Date(2026, 12, 6, 1, 2, 3, 456789, time.UTC)
	stamp := func() []byte {
		clock = clock.Add(time.Duration(rand.IntN(1e9)))
		b, _ := clock.MarshalBinary()
		return b
	}
	dir := t.TempDir()
	var files []string
	var want []record
	for i := range 3 {
		rs := records(stamp)
		order := rand.Perm(len(rs))
		if i == 0 {
			want = rs
			for j := range order {
				order[j] = j
			}
		}
		rs = append(rs, record{[]string{"v1", "k8s.io", "snapshots", "overlayfs"}, "seq", []byte{1}})
		order = append(order, len(rs)-1)
		path := filepath.Join(dir, fmt.Sprintf("%d.db", i))
		write(t, path, rs, order)
		if err := normalize(path, epoch); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	first, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files[1:] {
		if data, err := os.ReadFile(f); err != nil || !bytes.Equal(data, first) {
			t.Errorf("%s differs from %s after normalize (%v)", f, files[0], err)
		}
	}
	if _, err := os.Stat(files[0] + ".part"); !os.IsNotExist(err) {
		t.Errorf("normalize left %s.part: %v", files[0], err)
	}
	wantStamp, _ := epoch.MarshalBinary()
	db, err := bolt.Open(files[0], 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for _, r := range want {
			b := tx.Bucket([]byte(r.path[0]))
			for _, p := range r.path[1:] {
				b = b.Bucket([]byte(p))
			}
			got := b.Get([]byte(r.key))
			switch {
			case stamps[r.key] && !bytes.Equal(got, wantStamp):
				t.Errorf("%v %s = %x, want the epoch %x", r.path, r.key, got, wantStamp)
			case !stamps[r.key] && !bytes.Equal(got, r.val):
				t.Errorf("%v %s = %q, want %q", r.path, r.key, got, r.val)
			}
		}
		if seq := tx.Bucket([]byte("v1")).Bucket([]byte("k8s.io")).Bucket([]byte("snapshots")).Bucket([]byte("overlayfs")).Sequence(); seq != 1 {
			t.Errorf("the overlayfs bucket's sequence is %d, want 1", seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNormalizeRefusesWhatIsNotBolt keeps a file that is not a database
// as it was, and says so.
func TestNormalizeRefusesWhatIsNotBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	junk := bytes.Repeat([]byte("not bolt"), 1024)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := normalize(path, time.Unix(0, 0)); err == nil {
		t.Fatal("normalize of a file that is not a database succeeded")
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, junk) {
		t.Error("normalize changed a file it refused")
	}
}
