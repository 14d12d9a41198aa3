package agent

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// walRecord frames one walpb.Record as etcd's WAL encoder does: the
// length in 8 bytes, the padding to 8 bytes noted in its top byte.
func walRecord(typ byte, data string) []byte {
	rec := []byte{0x08, typ, 0x10, 0x7f}
	if data != "" {
		rec = append(append(rec, 0x1a, byte(len(data))), data...)
	}
	return frame(rec)
}

func frame(rec []byte) []byte {
	pad := (8 - len(rec)%8) % 8
	field := uint64(len(rec))
	if pad > 0 {
		field |= uint64(0x80|pad) << 56
	}
	out := binary.LittleEndian.AppendUint64(nil, field)
	return append(append(out, rec...), make([]byte, pad)...)
}

// walStart is what etcd writes when it creates its log (wal.Create): a
// CRC record, the metadata and the empty snapshot's record (index 0), as
// read from a power-cut node's disk.
func walStart() []byte {
	return slices.Concat(walRecord(4, ""), walRecord(1, "cluster"), walRecord(5, "\x10\x00"))
}

// hardState is a state record with raft's term and commit index.
func hardState(term, commit byte) []byte {
	return walRecord(3, string([]byte{0x08, term, 0x18, commit}))
}

func writeWAL(t *testing.T, dir string, files ...[]byte) {
	t.Helper()
	os.MkdirAll(dir, 0o700)
	for i, data := range files {
		name := filepath.Join(dir, strings.Repeat("0", 15)+string(rune('0'+i))+"-0000000000000000.wal")
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEtcdNeverCommitted(t *testing.T) {
	zeros := make([]byte, 4096)
	if never, err := etcdNeverCommitted(filepath.Join(t.TempDir(), "member", "wal")); never || err != nil {
		t.Errorf("no member: etcdNeverCommitted = %v, %v; want false", never, err)
	}
	for _, tc := range []struct {
		name  string
		files [][]byte
		want  bool
	}{
		{"a member with no log", nil, true},
		{"created, nothing more", [][]byte{slices.Concat(walStart(), zeros)}, true},
		{"preallocated, no record reached the disk", [][]byte{zeros}, true},
		{"the first entries, no hard state (torn)", [][]byte{slices.Concat(walStart(), walRecord(2, "conf change"), hardState(1, 1)[:12])}, true},
		{"a hard state that commits nothing", [][]byte{slices.Concat(walStart(), walRecord(2, "entry"), hardState(1, 0), zeros)}, true},
		{"a commit", [][]byte{slices.Concat(walStart(), walRecord(2, "conf change"), hardState(1, 1), zeros)}, false},
		{"a commit in the second file", [][]byte{slices.Concat(walStart(), zeros), slices.Concat(walRecord(4, ""), hardState(2, 7))}, false},
		{"a snapshot past 0", [][]byte{slices.Concat(walRecord(4, ""), walRecord(1, "cluster"), walRecord(5, "\x08\x05\x10\x02"))}, false},
		{"a torn first record", [][]byte{walRecord(1, "cluster")[:10]}, true},
		{"garbage: what etcd repairs to nothing", [][]byte{bytes.Repeat([]byte("x"), 100)}, true},
		{"a foreign first record: left alone", [][]byte{slices.Concat(walRecord(3, "\x08\x00"), zeros)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "member", "wal")
			os.MkdirAll(filepath.Dir(dir), 0o700)
			writeWAL(t, dir, tc.files...)
			got, err := etcdNeverCommitted(dir)
			if err != nil || got != tc.want {
				t.Errorf("etcdNeverCommitted = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestEtcdNeverCommittedOnARealLog reads the first 4 KiB of the log etcd
// v3.7.0 left on TestLongPowerCut's control plane after the cut in
// kubeadm init (2026-12-05), which then waited at term 0 with no leader.
func TestEtcdNeverCommittedOnARealLog(t *testing.T) {
	data, err := os.ReadFile("testdata/etcd-cut-before-its-first-commit.wal")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "wal")
	writeWAL(t, dir, data)
	if never, err := etcdNeverCommitted(dir); err != nil || !never {
		t.Errorf("etcdNeverCommitted = %v, %v; want true", never, err)
	}
	// The same log with a hard state that commits the first entry.
	writeWAL(t, dir, slices.Concat(data[:80], walRecord(2, "conf change"), hardState(1, 1)))
	if never, err := etcdNeverCommitted(dir); err != nil || never {
		t.Errorf("with a commit: etcdNeverCommitted = %v, %v; want false", never, err)
	}
}

// TestEtcdCutBeforeItsFirstEntryStartsAfresh: the finish meets an etcd
// whose log commits nothing (a cut before its first hard state). It stops
// etcd's pod, removes its data, runs the etcd phase again, and records
// it; the init still runs once.
func TestEtcdCutBeforeItsFirstEntryStartsAfresh(t *testing.T) {
	root := newRoot(t, ignition(kubeadmInit("v1.37.2")))
	node := &fakeNode{root: root, initErr: initTimeout}
	node.onInit = func() {
		writeWAL(t, filepath.Join(root, etcdWALDir), slices.Concat(walStart(), walRecord(2, "conf change"), make([]byte, 64)))
	}
	var console bytes.Buffer
	a, _ := newAgent(root, node, &console)
	if err, _ := run(a); err != nil {
		t.Fatal(err)
	}
	st := status(t, root)
	if st.Result != ResultSuccess || node.count("init") != 1 {
		t.Fatalf("result %s, %d inits: %v", st.Result, node.count("init"), node.calls)
	}
	stop, certs, etcd := slices.Index(node.calls, "stop etcd"), slices.Index(node.calls, "phase certs"), slices.Index(node.calls, "phase etcd")
	if stop < 0 || stop > certs || etcd < certs {
		t.Errorf("calls %v: want etcd stopped, then the start phases with etcd's", node.calls)
	}
	if _, err := os.Stat(filepath.Join(root, etcdData)); !os.IsNotExist(err) {
		t.Errorf("etcd's data is still there: %v", err)
	}
	if f := st.InitFinish; f == nil || !f.EtcdAfresh || !slices.Contains(f.Phases, "etcd local") {
		t.Errorf("record: %+v", f)
	}
	if !strings.Contains(console.String(), "etcd starts afresh") {
		t.Errorf("console:\n%s", console.String())
	}
}
