// Package imager turns a profile into a disk image. Execute runs a list of
// named steps, each timed and reported; the outputs are written to
// temporary files and renamed into place only when all of them are done.
package imager

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

type step struct {
	name string
	run  func(context.Context) error
}

// runSteps runs the steps in order, logging each one's name and duration,
// and the total at the end; it stops at the first error, naming its step.
// A step may append the steps that follow it.
func runSteps(ctx context.Context, log *slog.Logger, steps *[]step) error {
	began := time.Now()
	for i := 0; i < len(*steps); i++ {
		s := (*steps)[i]
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		log.Info("step", "name", s.name, "status", "start")
		err := s.run(ctx)
		secs := time.Since(start).Seconds()
		if err != nil {
			log.Error("step", "name", s.name, "status", "failed", "seconds", round(secs))
			return fmt.Errorf("%s: %w", s.name, err)
		}
		log.Info("step", "name", s.name, "status", "done", "seconds", round(secs))
	}
	log.Info("steps done", "steps", len(*steps), "seconds", round(time.Since(began).Seconds()))
	return nil
}

func round(f float64) float64 { return float64(int64(f*100)) / 100 }
