package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/doctor"
)

// runDoctor runs the troubleshooting checklist: exit 0 when nothing failed.
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	live := fs.Bool("live", false, "also refresh the token and list the vehicles (spends 2-3 Ford calls)")
	asJSON := fs.Bool("json", false, "print the report as JSON (it never contains a token or a code)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	cfg, err := config.Load(bridge.Commands())
	r := doctor.Run(ctx, cfg, err, doctor.Options{Live: *live})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	} else {
		doctor.PrintReport(stdout, r)
	}
	if r.Failed() {
		return exitFatal
	}
	return exitOK
}
