package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// sparseBlock is the unit SparseSHA256 digests: blocks of zeros are left
// out, wherever they are.
const sparseBlock = 4096

// SparseSHA256 is a digest of a file's content that reads only its data,
// not its holes: the sha256 of the offset and bytes of every 4 KiB block
// that is not all zeros, in order, then of the file's size. It names the
// content, like FileSHA256, and is the same for every copy whatever its
// holes (cp --sparse=always turns blocks of zeros into holes), but it is
// not the content's sha256: a disk image's digest in a manifest is
// FileSHA256's. A raw disk image is gigabytes of holes that FileSHA256
// hashes as zeros (5 s for the cluster image's 8.9 GB); this reads its
// 0.5 GB of data.
func SparseSHA256(path string) (string, error) {
	f, size, err := open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var head [8]byte
	next := int64(0) // the first block not yet digested
	for pos := int64(0); pos < size; {
		data, hole := dataRun(f, pos, size)
		// Whole blocks around the run: a block a hole cuts reads its
		// hole part as zeros.
		start := max(data/sparseBlock*sparseBlock, next)
		end := min((hole+sparseBlock-1)/sparseBlock*sparseBlock, size)
		for off := start; off < end; {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
			if n == 0 && err != nil {
				return "", fmt.Errorf("digesting %s: %w", path, err)
			}
			for b := 0; b < n; b += sparseBlock {
				block := buf[b:min(b+sparseBlock, n)]
				if allZero(block) {
					continue
				}
				binary.BigEndian.PutUint64(head[:], uint64(off)+uint64(b))
				h.Write(head[:])
				h.Write(block)
			}
			off += int64(n)
		}
		next = max(next, end)
		pos = max(hole, end)
	}
	binary.BigEndian.PutUint64(head[:], uint64(size))
	h.Write([]byte("size"))
	h.Write(head[:])
	return hex.EncodeToString(h.Sum(nil)), nil
}

var zeroBlock [sparseBlock]byte

func allZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

// DirSHA256 is the digest of a folder entry: each regular file's path
// under dir and SparseSHA256, in path order. Anything but files and
// folders is an error: an entry holds nothing else.
func DirSHA256(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: not a file or a folder", p)
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, p := range files {
		sum, err := SparseSHA256(p)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%d:%s %s\n", len(rel), rel, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// digest is an entry's digest: FileSHA256 for a file, DirSHA256 for a
// folder.
func digest(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		return DirSHA256(path)
	}
	return FileSHA256(path)
}
