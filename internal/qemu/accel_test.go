package qemu

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestChooser decides through the probe seam, with the real KVM API
// probe where a real device gives the case: /dev/null opens read-write
// and fails every KVM ioctl, and a missing path is a host with no KVM.
func TestChooser(t *testing.T) {
	works := func(context.Context) error { return nil }
	opensButCannotRun := func(context.Context) error { return kvmRuns("/dev/null") }
	noDevice := func(context.Context) error { return kvmRuns(filepath.Join(t.TempDir(), "kvm")) }
	hangs := func(context.Context) error { select {} }
	cases := []struct {
		name   string
		want   Accel
		probe  func(context.Context) error
		accel  Accel
		reason string // in the reason, or in the error when accel is ""
		probed bool
	}{
		{"auto on a working KVM", AccelAuto, works, AccelKVM, "kvm: a vCPU ran a guest", true},
		{"kvm on a working KVM", AccelKVM, works, AccelKVM, "kvm: a vCPU ran a guest", true},
		{"auto on a device that opens but cannot run", AccelAuto, opensButCannotRun, AccelTCG, "kvm: /dev/null: KVM_GET_API_VERSION: inappropriate ioctl for device", true},
		{"kvm on a device that opens but cannot run", AccelKVM, opensButCannotRun, "", "KVM cannot run a guest on this host: kvm: /dev/null: KVM_GET_API_VERSION", true},
		{"auto with no device", AccelAuto, noDevice, AccelTCG, "no such file or directory", true},
		{"kvm with no device", AccelKVM, noDevice, "", "KVM cannot run a guest on this host: kvm: open ", true},
		{"auto on a probe that hangs", AccelAuto, hangs, AccelTCG, "kvm: the probe did not finish in 200ms: the vCPU hangs", true},
		{"kvm on a probe that hangs", AccelKVM, hangs, "", "the probe did not finish in 200ms", true},
		{"tcg is never probed", AccelTCG, nil, AccelTCG, "asked for", false},
		{"empty is auto", "", opensButCannotRun, AccelTCG, "inappropriate ioctl", true},
		{"a misspelt accelerator", "kmv", works, "", `accelerator "kmv": want auto, kvm or tcg`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			var logs bytes.Buffer
			c := &Chooser{
				Want:    tc.want,
				Timeout: 200 * time.Millisecond,
				Log:     slog.New(slog.NewTextHandler(&logs, nil)),
				Probe: func(ctx context.Context) error {
					calls.Add(1)
					if tc.probe == nil {
						t.Error("probed")
						return nil
					}
					return tc.probe(ctx)
				},
			}
			for i := 0; i < 3; i++ { // chosen once for the process
				got, err := c.Choose(context.Background())
				if tc.accel == "" {
					if err == nil || !strings.Contains(err.Error(), tc.reason) {
						t.Fatalf("Choose = %+v, %v; want an error with %q", got, err, tc.reason)
					}
					if tc.want == AccelKVM && !errors.Is(err, ErrKVMUnusable) {
						t.Errorf("%v is not ErrKVMUnusable", err)
					}
					continue
				}
				if err != nil || got.Accel != tc.accel || !strings.Contains(got.Reason, tc.reason) {
					t.Fatalf("Choose = %+v, %v; want %s for %q", got, err, tc.accel, tc.reason)
				}
				if got.Probe > 0 != tc.probed {
					t.Errorf("probe took %s; probed: %v", got.Probe, tc.probed)
				}
			}
			if n := calls.Load(); n != map[bool]int32{true: 1, false: 0}[tc.probed] {
				t.Errorf("probed %d times", n)
			}
			if tc.accel != "" {
				if n := strings.Count(logs.String(), "msg=accelerator"); n != 1 {
					t.Errorf("logged %d times:\n%s", n, logs.String())
				}
				if !strings.Contains(logs.String(), "accel="+string(tc.accel)+" reason=") {
					t.Errorf("log has no accel and reason:\n%s", logs.String())
				}
			}
		})
	}
}

// TestChooserStopsWithItsContext: an interrupted probe is no reason to
// fall back to TCG; the boot stops.
func TestChooserStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Chooser{Want: AccelAuto, Probe: func(ctx context.Context) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}}
	if got, err := c.Choose(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Choose = %+v, %v; want context.Canceled", got, err)
	}
}

func TestParseAccel(t *testing.T) {
	for in, want := range map[string]Accel{"": AccelAuto, "auto": AccelAuto, "kvm": AccelKVM, "tcg": AccelTCG} {
		if got, err := ParseAccel(in); err != nil || got != want {
			t.Errorf("ParseAccel(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"KVM", "hvf", " tcg"} {
		if _, err := ParseAccel(in); err == nil {
			t.Errorf("ParseAccel(%q) took it", in)
		}
	}
}
