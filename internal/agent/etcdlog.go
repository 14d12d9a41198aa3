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
// padding) and a walpb.Record {type = 1, crc = 2, data = 3}. A state
// record's data is a raftpb.HardState {term = 1, vote = 2, commit = 3},
// a snapshot record's a walpb.Snapshot {index = 1, ...}.
const (
	etcdWALDir      = "/var/lib/etcd/member/wal"
	walMetadataType = 1       // a log's metadata, after its first CRC
	walCRCType      = 4       // every log file's first record
	walStateType    = 3       // raft's hard state
	walSnapshotType = 5       // a snapshot's index and term
	walMaxRecord    = 1 << 26 // larger is not a record: a torn or foreign file
	// walUnreadable is walCommitted's first type for a file whose first
	// record cannot be read.
	walUnreadable = ^uint64(0)
)

// etcdNeverCommitted reports whether etcd's write-ahead log in dir exists
// and shows that raft never committed anything: no hard state with a
// commit index, no snapshot past index 0. Such a member was cut off
// before the first hard state reached its disk; the entry that makes it
// a voter of its own cluster, if it is there at all, is uncommitted, so
// on restart its raft knows no voter, never campaigns, and etcd waits at
// term 0 with no leader for good ("no leader at term 0"), never serving
// its clients. Nothing was ever committed, so its data can go and etcd
// start afresh. A log is read up to where it stops, as etcd reads a torn
// tail; one whose first record reads as another than the CRC record etcd
// opens each file with (or its metadata) is not a log this can judge, and
// is left alone. A log of zeros
// (etcd preallocates its files, and a cut can lose every record), or
// whose first record is torn, committed nothing.
func etcdNeverCommitted(dir string) (bool, error) {
	if _, err := os.Stat(filepath.Dir(dir)); err != nil {
		return false, nil // no member: nothing to start afresh
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		return false, err
	}
	if len(files) == 0 {
		// A member with no log: the cut lost the log etcd had made (its
		// folder is renamed into place), and etcd would make a new one
		// with no voter in it.
		return true, nil
	}
	sort.Strings(files)
	for i, f := range files {
		committed, first, err := walCommitted(f)
		// A file of zeros is one etcd preallocated whose records never
		// reached the disk, and one whose first record is torn is what
		// etcd repairs to none: nothing was committed there either.
		foreign := first != 0 && first != walUnreadable && first != walCRCType && first != walMetadataType
		if err != nil || committed || (i == 0 && foreign) {
			return false, err
		}
	}
	return true, nil
}

// walCommitted reads one WAL file's records until the preallocated zeros,
// the end, or a record it cannot read; it returns whether one shows a
// commit, and the first one's type (0 for none, walUnreadable when it
// cannot be read).
func walCommitted(path string) (committed bool, first uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	// stop ends the reading: at the end or the preallocated zeros, or at
	// a record it cannot read, which as the first one makes the file
	// unreadable.
	stop := func(unreadable bool) (bool, uint64, error) {
		if unreadable && first == 0 {
			first = walUnreadable
		}
		return false, first, nil
	}
	for {
		var head [8]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return stop(false) // the end
		}
		field := binary.LittleEndian.Uint64(head[:])
		if field == 0 {
			return stop(false) // preallocated space
		}
		size := field &^ (0xff << 56)
		var pad uint64
		if int64(field) < 0 {
			pad = (field >> 56) & 0x7
		}
		if size == 0 || size > walMaxRecord {
			return stop(true)
		}
		rec := make([]byte, size+pad)
		if _, err := io.ReadFull(r, rec); err != nil {
			return stop(true) // a torn tail
		}
		fields, ok := protoFields(rec[:size])
		if !ok {
			return stop(true)
		}
		typ := fields[1].varint
		if first == 0 {
			first = typ
		}
		inner, _ := protoFields(fields[3].bytes)
		switch typ {
		case walStateType:
			if inner[3].varint > 0 {
				return true, first, nil
			}
		case walSnapshotType:
			if inner[1].varint > 0 {
				return true, first, nil
			}
		}
	}
}

// protoField is the last value of one field of a protobuf message.
type protoField struct {
	varint uint64
	bytes  []byte
}

// protoFields reads a protobuf message's varint and length-delimited
// fields by number; false when it is not one.
func protoFields(b []byte) (map[uint64]protoField, bool) {
	out := map[uint64]protoField{}
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, false
		}
		b = b[n:]
		switch key & 7 {
		case 0: // varint
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, false
			}
			out[key>>3] = protoField{varint: v}
			b = b[n:]
		case 2: // length-delimited
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return nil, false
			}
			out[key>>3] = protoField{bytes: b[n : n+int(l)]}
			b = b[n+int(l):]
		default:
			return nil, false
		}
	}
	return out, true
}

// errEtcdStillRunning is returned when etcd's container outlives its
// manifest.
var errEtcdStillRunning = errors.New("etcd is still running")

// restartEtcdAfresh removes the data of an etcd that can never elect a
// leader (see etcdNeverCommitted): its static pod first (the manifest, which
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
