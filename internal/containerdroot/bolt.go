package containerdroot

import (
	"bytes"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// stamps are the keys under which containerd's metadata and its
// snapshotters record when an object was made and last changed, in any
// bucket, as time.Time's binary form.
var stamps = map[string]bool{"createdat": true, "updatedat": true}

// normalize makes the bolt database at path reproducible: it is copied
// into a new file, which replaces it by rename, with every record's time
// set to epoch.
//
// The copy writes each bucket's own keys in a transaction of its own,
// buckets in key order, parents first. bbolt's Compact does not do here:
// a transaction that changes several nested buckets writes them out in
// the order of a Go map, so the same keys and values make different
// files. With one bucket per transaction every bucket on the way holds one
// child in that map, and the file depends on the keys and values alone.
func normalize(path string, epoch time.Time) error {
	stamp, err := epoch.UTC().MarshalBinary()
	if err != nil {
		return err
	}
	src, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".part"
	if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
		return err
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		return err
	}
	err = src.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return copyBucket(dst, [][]byte{clone(name)}, b, stamp)
		})
	})
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// copyBucket writes b, found at path in the source, into dst at the same
// path: its own keys and sequence in one transaction, then each nested
// bucket, in key order.
func copyBucket(dst *bolt.DB, path [][]byte, b *bolt.Bucket, stamp []byte) error {
	var nested [][]byte
	err := dst.Update(func(tx *bolt.Tx) error {
		to, err := tx.CreateBucketIfNotExists(path[0])
		if err != nil {
			return err
		}
		for _, name := range path[1:] {
			if to, err = to.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if err := to.SetSequence(b.Sequence()); err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			switch {
			case v == nil:
				nested = append(nested, clone(k))
				return nil
			case stamps[string(k)]:
				v = stamp
			}
			return to.Put(clone(k), bytes.Clone(v))
		})
	})
	if err != nil {
		return err
	}
	for _, name := range nested {
		if err := copyBucket(dst, append(path[:len(path):len(path)], name), b.Bucket(name), stamp); err != nil {
			return err
		}
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
