// Command firstboot turns a booted nodebake image into a Kubernetes node
// from its Ignition config, and helps the person preparing nodes render
// and check those configs.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels the work, which then cleans up; a second
	// one kills at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "firstboot:", err)
	}
	os.Exit(exitCode(err))
}
