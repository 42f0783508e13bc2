// Command fordpass2mqtt keeps a Ford vehicle on MQTT: see README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Go's default GC settings: GOGC=50 was measured against the default
	// side by side and did not lower the resident memory (12.5 MB against
	// 11.6 MB, one car streaming); set GOGC or GOMEMLIMIT to tune.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
