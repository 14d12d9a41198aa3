package profile

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error that says the profile is bad input.
var ErrInvalid = errors.New("invalid profile")

// FieldError is one problem, at one path in the profile.
type FieldError struct {
	Path    string
	Message string
}

func (e FieldError) String() string { return e.Path + ": " + e.Message }

// ValidationError holds every problem found in a profile.
type ValidationError struct {
	File     string
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

func (e *ValidationError) Unwrap() error { return ErrInvalid }
