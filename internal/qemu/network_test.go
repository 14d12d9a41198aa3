package qemu

import (
	"strings"
	"testing"
)

func TestTapNetwork(t *testing.T) {
	args, err := networkArgs(0, Network{Mode: "tap", Tap: "nbtap1", MAC: "52:54:00:10:00:11"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(args, " "); got != "-netdev tap,id=net0,ifname=nbtap1,script=no,downscript=no -device virtio-net-pci,netdev=net0,mac=52:54:00:10:00:11" {
		t.Errorf("args %q", got)
	}
	// A name that would add QEMU options is refused.
	for _, name := range []string{"", "tap0,script=/tmp/x", "a-name-far-too-long-for-linux"} {
		if _, err := networkArgs(0, Network{Mode: "tap", Tap: name}); err == nil {
			t.Errorf("tap %q accepted", name)
		}
	}
}
