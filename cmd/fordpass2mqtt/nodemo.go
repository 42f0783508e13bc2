//go:build nodemo

package main

import (
	"context"
	"fmt"
	"io"
)

// The production build has no demo and no simulator: they would carry an
// embedded broker and a fake Ford cloud into every user's image.

func runDemo(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "this build of fordpass2mqtt has no demo; run it from the source (go run ./cmd/fordpass2mqtt demo) or with the demo image (docker compose --profile demo up demo)")
	return exitConfig
}

func runSimulate(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "this build of fordpass2mqtt has no simulator; run it from the source (go run ./cmd/fordpass2mqtt simulate)")
	return exitConfig
}
