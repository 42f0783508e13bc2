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
	// The collector runs at GOGC=50 unless GOGC is set: with 1,000 cars
	// it keeps 62 MB resident after the bench's hour instead of 82 MB, for
	// 15 % more CPU per update (docs/performance.md); with one car it
	// changes nothing measurable (12.5 MB against 11.6 MB, measured
	// earlier side by side). GOMEMLIMIT is honoured as Go does.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
