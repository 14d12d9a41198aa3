package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The live outputs (profiles/test-live.yaml: the probe, no kit) boot
// under QEMU with real firmware: the ISO as a CD-ROM on OVMF and on
// SeaBIOS, the PXE folder through iPXE, QEMU's DHCP and TFTP and an HTTP
// server on the loopback, and a PXE root with one byte changed, which
// the initramfs must refuse.

// TestISOOnUEFIWithAStateDisk boots the ISO on OVMF, with a config put on
// it with xorriso the way the README says, and a disk formatted with the
// nodebake-live label: the state goes there and survives a reboot, and
// the config is where the agent's live-media source reads it.
func TestISOOnUEFIWithAStateDisk(t *testing.T) {
	out := liveImage(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.ign")
	if err := os.WriteFile(cfg, []byte(`{"ignition":{"version":"3.4.0"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "with-config.iso")
	tool(t, "xorriso", "-indev", filepath.Join(out, "test-live.iso"), "-outdev", iso,
		"-map", cfg, "/nodebake/config.ign", "-boot_image", "any", "replay")
	disk := filepath.Join(dir, "state.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 2<<30); err != nil {
		t.Fatal(err)
	}
	tool(t, "mkfs.ext4", "-q", "-L", "nodebake-live", disk)

	boots := probeBoots(t, iso, 2, "--disk", disk, "--no-network")
	checkLive(t, boots, "uefi", "ext4")
	for n := 1; n <= 2; n++ {
		b := boots[n]
		if !strings.HasPrefix(b["live"], "LABEL=NODEBAKE_") || b["live_root"] != "/run/nodebake/media/nodebake/root.squashfs" {
			t.Errorf("boot %d: booted from %q, root %q: want the ISO's label and its squashfs", n, b["live"], b["live_root"])
		}
		if b["var_source"] != "/dev/vda" {
			t.Errorf("boot %d: /var on %q, want the labelled disk /dev/vda", n, b["var_source"])
		}
		if want := sha256File(t, cfg); b["live_config"] != want {
			t.Errorf("boot %d: the ISO's config read %q, want sha256 %s", n, b["live_config"], want)
		}
	}
	checkSurvived(t, boots)
}

// TestISOOnBIOSInMemory boots the ISO on SeaBIOS with no disk at all: the
// state is in memory, and the probe powers off after one boot.
func TestISOOnBIOSInMemory(t *testing.T) {
	out := liveImage(t)
	boots := probeBoots(t, filepath.Join(out, "test-live.iso"), 1, "--firmware", "bios", "--no-network")
	checkLive(t, boots, "bios", "tmpfs")
	if b := boots[1]; b["var_source"] != "nodebake-state" || b["action"] != "poweroff" {
		t.Errorf("/var on %q, then %q: want the in-memory state, then a power-off", b["var_source"], b["action"])
	}
}

// TestPXE boots the PXE folder on SeaBIOS through iPXE: its script from
// QEMU's TFTP, then the kernel, the initramfs and both squashfs files
// from an HTTP server on the loopback. The chain script names a blank
// disk for the state, which the initramfs formats on the first boot and
// keeps on the second. Then the same folder with one byte of its root
// changed must stop in the initramfs, with a message that says why.
func TestPXE(t *testing.T) {
	out := liveImage(t)
	pxe := filepath.Join(out, "test-live.pxe")
	boots := probeBoots(t, pxe, 2, "--firmware", "bios", "--disk-size", "2GiB", "--kernel-args", "nodebake.state=/dev/vda")
	checkLive(t, boots, "bios", "ext4")
	for n := 1; n <= 2; n++ {
		b := boots[n]
		if b["live"] != "http://10.0.2.100:80/" || b["live_root"] != "/run/nodebake/media/root.squashfs" {
			t.Errorf("boot %d: booted from %q, root %q: want the HTTP server's and a copy in memory", n, b["live"], b["live_root"])
		}
		if b["var_source"] != "/dev/vda" {
			t.Errorf("boot %d: /var on %q, want the disk the kernel arguments name", n, b["var_source"])
		}
	}
	checkSurvived(t, boots)

	// One byte changed.
	tampered := filepath.Join(t.TempDir(), "tampered.pxe")
	tool(t, "cp", "-r", pxe, tampered)
	root := filepath.Join(tampered, "root.squashfs")
	f, err := os.OpenFile(root, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 1<<20); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, 1<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	serial, elapsed := bootUntil(t, tampered, "refusing to boot it", 10*time.Minute, "--firmware", "bios")
	console := readFile(serial)
	want := "root.squashfs from http://10.0.2.100:80/ has sha256 " + sha256File(t, root) + ", not the "
	if !strings.Contains(console, want) {
		t.Errorf("the console does not say %q:\n%s", want, tail(console, 3000))
	}
	if strings.Contains(console, "systemd[1]") || strings.Contains(console, "Welcome to") {
		t.Errorf("the tampered root was booted:\n%s", tail(console, 3000))
	}
	t.Logf("the tampered root was refused %s after power-on", elapsed.Round(time.Second))
}

// checkLive checks what every live boot shares: the read-only root from
// the medium, /var on varFS, a writable /etc overlaid on it, and a
// system whose only failed unit is the network wait, when it has no
// network.
func checkLive(t *testing.T, boots map[int]map[string]string, firmware, varFS string) {
	t.Helper()
	for n, b := range boots {
		expect := map[string]string{
			"firmware":                   firmware,
			"usr_write":                  "denied",
			"root_fstype":                "squashfs",
			"root_options":               "ro",
			"var_fstype":                 varFS,
			"var_write":                  "ok",
			"etc_write":                  "ok",
			"etc_fstype":                 "overlay",
			"etc_upper":                  "state",
			"growstate":                  "active",
			"cgroup_fstype":              "cgroup2fs",
			"swap_devices":               "0",
			"ssh_host_key":               "present",
			"module.overlay":             "loaded",
			"module.br_netfilter":        "loaded",
			"sysctl.net.ipv4.ip_forward": "1",
		}
		for k, want := range expect {
			if got := b[k]; got != want {
				t.Errorf("boot %d: %s = %q, want %q", n, k, got, want)
			}
		}
		switch b["failed_units"] {
		case "", "systemd-networkd-wait-online.service":
		default:
			t.Errorf("boot %d: failed units %s", n, b["failed_units"])
		}
		if len(b["machine_id"]) != 32 {
			t.Errorf("boot %d: machine-id %q", n, b["machine_id"])
		}
	}
}

// checkSurvived checks that a node's state outlived a reboot: the probe's
// marker in /var and /etc, and the machine-id.
func checkSurvived(t *testing.T, boots map[int]map[string]string) {
	t.Helper()
	if boots[1]["machine_id"] != boots[2]["machine_id"] {
		t.Errorf("machine-id changed across the reboot: %s, then %s", boots[1]["machine_id"], boots[2]["machine_id"])
	}
	marker := boots[1]["marker_written"]
	if marker == "" || boots[2]["marker_var"] != marker || boots[2]["marker_etc"] != marker {
		t.Errorf("state did not survive the reboot: wrote %q, read %q from /var and %q from /etc",
			marker, boots[2]["marker_var"], boots[2]["marker_etc"])
	}
}

// bootUntil boots image until its console shows want, then stops it, and
// returns the console's log and how long it took.
func bootUntil(t *testing.T, image, want string, limit time.Duration, flags ...string) (string, time.Duration) {
	t.Helper()
	serial := filepath.Join(t.TempDir(), "serial.log")
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, imagebuild(t), append([]string{"boot", image,
		"--serial-log", serial, "--memory", "2048", "--cpus", "2"}, flags...)...)
	cmd.Dir = repoRoot(t)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			t.Fatalf("the boot ended (%v) before its console showed %q:\n%s\nconsole:\n%s", err, want, out.String(), tail(readFile(serial), 3000))
		case <-ctx.Done():
			<-done
			t.Fatalf("no %q on the console in %s:\n%s", want, limit, tail(readFile(serial), 3000))
		case <-tick.C:
			if strings.Contains(readFile(serial), want) {
				elapsed := time.Since(start)
				cancel()
				<-done
				return serial, elapsed
			}
		}
	}
}
