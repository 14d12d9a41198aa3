package diskimage

import "errors"

var (
	// ErrTooLarge is wrapped when a filesystem does not fit its partition.
	ErrTooLarge = errors.New("filesystem does not fit its partition")
	// ErrNotImage is wrapped when a file is not a nodebake disk image.
	ErrNotImage = errors.New("not a nodebake disk image")
)
