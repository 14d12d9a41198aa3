// Command hostilekubeadm is an image's kubeadm that tries to escape the
// check: it writes a file on the host and calls the host's loopback,
// then answers as the test tells it (-ldflags -X).
package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

var (
	marker string // a host path to write
	addr   string // a host listener to call
	images string // what "config images list" prints, comma-separated
)

func main() {
	os.WriteFile(marker, []byte("escaped"), 0o644)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
	}
	if len(os.Args) > 2 && os.Args[1] == "config" && os.Args[2] == "images" {
		for _, ref := range strings.Split(images, ",") {
			if ref != "" {
				fmt.Println(ref)
			}
		}
	}
}
