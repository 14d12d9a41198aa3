package qemu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Accel is a QEMU accelerator, or the wish for one.
type Accel string

const (
	// AccelAuto uses KVM once a probe has proved it runs a guest, and
	// multi-threaded TCG otherwise.
	AccelAuto Accel = "auto"
	// AccelKVM insists on KVM: a host where it does not work is an error.
	AccelKVM Accel = "kvm"
	// AccelTCG is QEMU's own emulator, which runs anywhere.
	AccelTCG Accel = "tcg"
)

// AccelEnv names the environment variable that sets the accelerator
// when no flag does (the end-to-end tests read it through imagebuild).
const AccelEnv = "NODEBAKE_ACCEL"

// ErrKVMUnusable is returned when KVM was asked for and cannot run a
// guest on this host.
var ErrKVMUnusable = errors.New("KVM cannot run a guest on this host")

// ParseAccel reads "auto", "kvm" or "tcg"; "" is auto.
func ParseAccel(s string) (Accel, error) {
	switch a := Accel(s); a {
	case "":
		return AccelAuto, nil
	case AccelAuto, AccelKVM, AccelTCG:
		return a, nil
	}
	return "", fmt.Errorf("accelerator %q: want auto, kvm or tcg", s)
}

// Choice is the accelerator a boot runs on, and the evidence for it.
type Choice struct {
	Accel  Accel // AccelKVM or AccelTCG
	Reason string
	// Probe is how long proving KVM took; zero when it was not probed.
	Probe time.Duration
}

// args are QEMU's arguments for the choice.
func (c Choice) args() []string {
	if c.Accel == AccelKVM {
		return []string{"-accel", "kvm", "-cpu", "host"}
	}
	return []string{"-accel", "tcg,thread=multi", "-cpu", "max"}
}

// DefaultProbeTimeout bounds a KVM probe: a working KVM answers in well
// under a second, and a probe still running after this counts as a hang.
const DefaultProbeTimeout = 20 * time.Second

// Chooser makes one accelerator choice for the process from evidence,
// logs it once with its reason, and returns it on every later call.
type Chooser struct {
	Want Accel
	// Probe returns nil when KVM can run a guest here, else why not. It
	// is the seam the tests replace; ProbeKVM is the real one.
	Probe func(ctx context.Context) error
	// Timeout bounds Probe (DefaultProbeTimeout when zero). A probe that
	// does not return in time is taken as a KVM that hangs.
	Timeout time.Duration
	Log     *slog.Logger

	once   sync.Once
	choice Choice
	err    error
}

// Choose returns the accelerator, probing KVM on the first call only.
func (c *Chooser) Choose(ctx context.Context) (Choice, error) {
	c.once.Do(func() {
		c.choice, c.err = c.choose(ctx)
		if c.err == nil && c.Log != nil {
			c.Log.Info("accelerator", "accel", string(c.choice.Accel), "reason", c.choice.Reason,
				"probe", c.choice.Probe.Round(time.Millisecond))
		}
	})
	return c.choice, c.err
}

func (c *Chooser) choose(ctx context.Context) (Choice, error) {
	want, err := ParseAccel(string(c.Want))
	if err != nil {
		return Choice{}, err
	}
	if want == AccelTCG {
		return Choice{Accel: AccelTCG, Reason: "asked for"}, nil
	}
	start := time.Now()
	err = c.probe(ctx)
	took := time.Since(start)
	if ctx.Err() != nil {
		return Choice{}, ctx.Err()
	}
	switch {
	case err == nil:
		return Choice{Accel: AccelKVM, Reason: "kvm: a vCPU ran a guest", Probe: took}, nil
	case want == AccelKVM:
		return Choice{}, fmt.Errorf("%w: %v", ErrKVMUnusable, err)
	default:
		return Choice{Accel: AccelTCG, Reason: err.Error(), Probe: took}, nil
	}
}

// probe runs c.Probe within its bound. A probe stuck in the kernel
// cannot always be interrupted, so it is left behind rather than waited
// for.
func (c *Chooser) probe(ctx context.Context) error {
	if c.Probe == nil {
		return errors.New("kvm: no probe")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Probe(pctx) }()
	select {
	case err := <-done:
		return err
	case <-pctx.Done():
		return fmt.Errorf("kvm: the probe did not finish in %s: the vCPU hangs", timeout)
	}
}
