package ignitioncfg

import "errors"

var (
	// ErrVersion is a config whose ignition.version nodebake cannot read.
	ErrVersion = errors.New("unsupported Ignition config version")
	// ErrReadOnly is a config that would write where the image is
	// read-only.
	ErrReadOnly = errors.New("read-only")
)
