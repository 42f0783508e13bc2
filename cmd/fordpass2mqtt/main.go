// Command fordpass2mqtt keeps a Ford vehicle on MQTT: see README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		// An always-on bridge idles almost all the time: trade a little CPU
		// for a smaller heap (docs/performance.md has the figures).
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
