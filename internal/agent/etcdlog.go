package agent

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// etcd's write-ahead log, as go.etcd.io/etcd/server/v3/storage/wal writes
// it: each record an 8-byte little-endian length (its top byte holds the
// padding) and a walpb.Record, whose field 1 is the record's type.
const (
	etcdWALDir       = "/var/lib/etcd/member/wal"
	walMetadataType  = 1       // every log's first record
	walEntryType     = 2       // a raft log entry
	walMaxRecord     = 1 << 26 // larger is not a record: a torn or foreign file
	protoTypeFieldID = 0x08    // field 1, varint
)

// etcdLogEmpty reports whether etcd's write-ahead log in dir exists and
// holds no raft log entry. Such a member was cut off between creating its
// log and writing its first entries, the one that makes it a voter of its
// own cluster among them: its raft knows no voter, so it never campaigns,
// and etcd waits at term 0 with no leader for good ("no leader at term
// 0"), never serving its clients. Nothing was ever committed there, so
// its data can go and etcd start afresh. A log is read up to where it
// stops, as etcd reads a torn tail; one that does not begin with etcd's
// metadata record is not a log this can judge, and is left alone.
func etcdLogEmpty(dir string) (bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(files) == 0 {
		return false, err
	}
	sort.Strings(files)
	for i, f := range files {
		has, first, err := walHasEntry(f)
		if err != nil || has || (i == 0 && first != walMetadataType) {
			return false, err
		}
	}
	return true, nil
}

// walHasEntry reads one WAL file's records until the preallocated zeros,
// the end, or a record it cannot read; it returns whether one was an
// entry, and the first one's type (0 for none).
func walHasEntry(path string) (has bool, first uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		var head [8]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return false, first, nil // the end
		}
		field := binary.LittleEndian.Uint64(head[:])
		if field == 0 {
			return false, first, nil // preallocated space
		}
		size := field &^ (0xff << 56)
		var pad uint64
		if int64(field) < 0 {
			pad = (field >> 56) & 0x7
		}
		if size == 0 || size > walMaxRecord {
			return false, first, nil
		}
		rec := make([]byte, size+pad)
		if _, err := io.ReadFull(r, rec); err != nil {
			return false, first, nil // a torn tail
		}
		typ, ok := recordType(rec[:size])
		if !ok {
			return false, first, nil
		}
		if first == 0 {
			first = typ
		}
		if typ == walEntryType {
			return true, first, nil
		}
	}
}

// recordType is field 1 of a walpb.Record, which etcd writes first.
func recordType(rec []byte) (uint64, bool) {
	if len(rec) < 2 || rec[0] != protoTypeFieldID {
		return 0, false
	}
	v, n := binary.Uvarint(rec[1:])
	return v, n > 0
}

// errEtcdStillRunning is returned when etcd's container outlives its
// manifest.
var errEtcdStillRunning = errors.New("etcd is still running")

// restartEtcdAfresh removes the data of an etcd that can never elect a
// leader (see etcdLogEmpty): its static pod first (the manifest, which
// the etcd phase writes again, and its running container), then its
// member folder. etcd then starts as the new single-member cluster that
// kubeadm init made.
func (a *Agent) restartEtcdAfresh(ctx context.Context) error {
	manifest := a.path("/etc/kubernetes/manifests/etcd.yaml")
	if err := os.Remove(manifest); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := a.Node.StopContainers(ctx, "etcd"); err != nil {
		return fmt.Errorf("%w: %v", errEtcdStillRunning, err)
	}
	if err := os.RemoveAll(a.path(etcdData)); err != nil {
		return err
	}
	durable()
	return nil
}
