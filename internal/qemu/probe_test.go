package qemu

import (
	"context"
	"testing"
	"time"

	"github.com/nodebake/nodebake/internal/command"
)

// TestFirmwareRunsOnTCG runs the probe's QEMU stage on TCG, which runs
// everywhere: OVMF must reach its serial console within the probe's
// bound. (Where KVM works, ProbeKVM's own run is the same on KVM; where
// it cannot emulate OVMF, the e2e tests see the fallback.)
func TestFirmwareRunsOnTCG(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU")
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultProbeTimeout)
	defer cancel()
	start := time.Now()
	if err := firmwareRuns(ctx, &command.Runner{}, Choice{Accel: AccelTCG}); err != nil {
		t.Fatal(err)
	}
	t.Logf("OVMF wrote to the serial console %.1f s after QEMU started, on TCG", time.Since(start).Seconds())
}
