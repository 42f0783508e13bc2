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
	gcDefault(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// gcDefault runs the collector at GOGC=40 unless GOGC is set. A fleet's sockets
// each hold a goroutine whose stack the collector counts in its goal,
// so its headroom weighs: 1,000 cars keep 44.6-45.9 MB resident after
// the bench's hour at 40, 47.5-48.0 MB at 50, for about a third more
// CPU per telemetry update (still under 0.2 ms); one car keeps the
// same 12.6-13.1 MB (docs/performance.md). GOMEMLIMIT is honoured as Go
// does.
func gcDefault(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(40)
	}
}
