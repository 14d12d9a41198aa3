// Command probe reports, as JSON, what a program can see and do from
// inside the sandbox; sandbox_test builds it static and runs it there.
package main

import (
	"encoding/json"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	switch os.Args[1] {
	case "report":
		report(os.Args[2], os.Args[3])
	case "alloc": // more than the address-space bound
		b := make([]byte, 2<<30)
		for i := range b {
			b[i] = 1
		}
	case "spin":
		for {
		}
	case "sleep":
		time.Sleep(time.Hour)
	}
}

func report(addr, hostFile string) {
	r := map[string]any{"uid": os.Getuid(), "env": os.Environ()}
	r["uidMap"], _ = readString("/proc/self/uid_map")
	r["capEff"] = capEff()
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		r["dial"] = "connected"
	} else {
		r["dial"] = err.Error()
	}
	_, err := os.Stat(hostFile)
	r["hostFileVisible"] = err == nil
	r["rootWritable"] = os.WriteFile("/x", nil, 0o644) == nil
	r["tmpWritable"] = os.WriteFile("/tmp/x", []byte("x"), 0o644) == nil
	ifaces, _ := net.Interfaces()
	var names []string
	for _, i := range ifaces {
		names = append(names, i.Name)
	}
	r["interfaces"] = names
	entries, _ := os.ReadDir("/")
	var root []string
	for _, e := range entries {
		root = append(root, e.Name())
	}
	r["root"] = root
	json.NewEncoder(os.Stdout).Encode(r)
}

func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// capEff is the effective capability set from /proc/self/status.
func capEff() string {
	s, _ := readString("/proc/self/status")
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
