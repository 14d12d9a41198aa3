package diskimage

import "errors"

var (
	// ErrTooLarge is wrapped when a filesystem does not fit its partition.
	ErrTooLarge = errors.New("filesystem does not fit its partition")
	// ErrFileTooLarge is wrapped when a file read from an image is over
	// its limit.
	ErrFileTooLarge = errors.New("file too large")
	// ErrNotImage is wrapped when a file is not a nodebake disk image.
	ErrNotImage = errors.New("not a nodebake disk image")
)
