package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// segment is a private Ethernet segment for VMs: a network namespace of
// the test's own with a bridge, a tap device for each VM, and dnsmasq
// serving DHCP on it, a fixed address and hostname for each MAC. The
// bridge's address is the segment's router and its DNS server, with no
// route beyond it and no DNS served (dnsmasq's port 0): the VMs can reach
// each other and nothing else, and nothing of it is on the host's own
// network. The DNS server is named all the same, as a site's DHCP names
// one: CoreDNS forwards to the node's resolv.conf and will not start
// without a server in it ("plugin/forward: no valid upstream addresses
// found").
type segment struct {
	netns  string
	router string
}

// host is a VM's place on a segment.
type host struct{ mac, ip, name, tap string }

func newSegment(t *testing.T, dir string, hosts []*host) *segment {
	t.Helper()
	for _, p := range []string{"ip", "dnsmasq"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s: %v (ci/deps.sh installs it)", p, err)
		}
	}
	b := make([]byte, 3)
	rand.Read(b)
	s := &segment{netns: "nbtest-" + hex.EncodeToString(b), router: "10.10.0.254"}
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"netns", "exec", s.netns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if out, err := exec.Command("ip", "netns", "add", s.netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", s.netns).Run() })
	sh("ip", "link", "set", "lo", "up")
	sh("ip", "link", "add", "br0", "type", "bridge")
	sh("ip", "addr", "add", s.router+"/24", "dev", "br0")
	sh("ip", "link", "set", "br0", "up")
	args := []string{"netns", "exec", s.netns, "dnsmasq", "--keep-in-foreground", "--no-daemon", "--conf-file=/dev/null",
		"--port=0", "--no-resolv", "--no-hosts", "--interface=br0", "--bind-interfaces", "--dhcp-authoritative",
		"--dhcp-range=10.10.0.100,10.10.0.200,12h", "--dhcp-option=option:router," + s.router, "--dhcp-option=option:dns-server," + s.router,
		"--dhcp-leasefile=" + filepath.Join(dir, "dnsmasq.leases"), "--log-dhcp"}
	for i, h := range hosts {
		h.tap = fmt.Sprintf("tap%d", i)
		sh("ip", "tuntap", "add", h.tap, "mode", "tap")
		sh("ip", "link", "set", h.tap, "master", "br0")
		sh("ip", "link", "set", h.tap, "up")
		args = append(args, fmt.Sprintf("--dhcp-host=%s,%s,%s", h.mac, h.ip, h.name))
	}
	log, err := os.Create(filepath.Join(dir, "dnsmasq.log"))
	if err != nil {
		t.Fatal(err)
	}
	d := exec.Command("ip", args...)
	d.Stdout, d.Stderr = log, log
	d.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Kill(); d.Wait(); log.Close() })
	return s
}
