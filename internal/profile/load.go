package profile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/nodebake/nodebake/internal/inputfile"
)

// MaxProfileSize bounds a profile file.
const MaxProfileSize = 1 << 20

// Load reads a profile file strictly (an unknown field is an error), fills
// its defaults and validates it against sourceDir. Every problem is
// returned together in a *ValidationError.
func Load(path, sourceDir string) (*Profile, error) {
	data, err := inputfile.Read(path, MaxProfileSize)
	if err != nil {
		return nil, fmt.Errorf("reading profile: %w", err)
	}
	p, problems := Parse(data)
	if len(problems) == 0 {
		problems = Validate(p, sourceDir)
	}
	if len(problems) > 0 {
		return nil, &ValidationError{File: path, Problems: problems}
	}
	return p, nil
}

// Parse decodes a profile document strictly and fills its defaults. It
// does not validate the values.
func Parse(data []byte) (*Profile, []FieldError) {
	var p Profile
	if errs := decode(data, &p); len(errs) > 0 {
		return nil, errs
	}
	SetDefaults(&p)
	return &p, nil
}

// Digest is the sha256 of the defaulted profile's canonical JSON. Identities
// in the image (partition GUIDs, filesystem UUIDs) are derived from it.
func (p *Profile) Digest() string {
	// encoding/json sorts map keys, so the encoding is canonical.
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("profile: encoding cannot fail: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Sizes are the parsed disk sizes of a validated profile.
type Sizes struct{ ESP, Root, State int64 }

// DiskSizes parses the disk sizes of a validated profile.
func (p *Profile) DiskSizes() Sizes {
	must := func(s string) int64 {
		n, err := ParseSize(s)
		if err != nil {
			panic(fmt.Sprintf("profile: DiskSizes on an unvalidated profile: %v", err))
		}
		return n
	}
	d := p.Spec.Disk
	return Sizes{ESP: must(d.ESPSize), Root: must(d.RootSize), State: must(d.StateSize)}
}
