package ignitioncfg

import "errors"

var (
	// ErrSpec2 is a config of Ignition spec 2.x, a different format.
	ErrSpec2 = errors.New("Ignition spec 2.x is not supported: write the config in spec 3 (3.0.0 to 3.5.0), for example with `firstboot render` or ign-converter")
	// ErrVersion is a config whose ignition.version nodebake cannot read.
	ErrVersion = errors.New("unsupported Ignition config version")
	// ErrReadOnly is a config that would write where the image is
	// read-only.
	ErrReadOnly = errors.New("read-only")
)
