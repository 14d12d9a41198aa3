// Package inputfile reads the files a person names on a command line (a
// profile, a lock, an Ignition config): regular files only, so that a
// FIFO or a device can neither hang a command nor fill its memory, and
// no larger than their kind can be.
package inputfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// ErrInput is wrapped by every error Read returns: the file named is not
// one the command can take, which is bad input.
var ErrInput = errors.New("not a readable input file")

// Read returns the contents of the regular file at path, at most limit
// bytes.
func Read(path string, limit int64) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO with no writer must not wait; the mode
	// is checked on the open file, so it cannot change in between.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file (%s)", ErrInput, path, fi.Mode().Type())
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than the %d such a file can be", ErrInput, path, fi.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInput, path, err)
	}
	if int64(len(data)) > limit { // it grew while it was read
		return nil, fmt.Errorf("%w: %s is more than the %d bytes such a file can be", ErrInput, path, limit)
	}
	return data, nil
}
