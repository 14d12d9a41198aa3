// Package retry retries an operation with exponential backoff until it
// succeeds, fails for good, or a deadline passes.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Policy is how long to keep trying and how long to wait in between.
type Policy struct {
	Deadline time.Duration // total time for all attempts
	First    time.Duration // the first wait; it doubles
	Max      time.Duration // the longest wait
	// OnRetry is told of each failed attempt before the wait.
	OnRetry func(attempt int, err error, wait time.Duration)
}

// Final marks an error that no retry can cure.
func Final(err error) error { return &final{err} }

type final struct{ err error }

func (f *final) Error() string { return f.err.Error() }
func (f *final) Unwrap() error { return f.err }

// Do runs op until it returns nil or a Final error, or the deadline
// passes; the last error is returned, unwrapped from Final.
func Do(ctx context.Context, p Policy, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, p.Deadline)
	defer cancel()
	wait := p.First
	if wait <= 0 {
		wait = time.Second
	}
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		var f *final
		switch {
		case err == nil:
			return nil
		case errors.As(err, &f):
			return f.err
		}
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, wait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %d attempts in %s: %w", attempt, p.Deadline, err)
		case <-time.After(wait):
		}
		if wait *= 2; p.Max > 0 && wait > p.Max {
			wait = p.Max
		}
	}
}
