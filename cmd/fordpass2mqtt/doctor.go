package main

import (
	"context"
	"fmt"
	"io"
)

func runDoctor(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "doctor is not built yet (issue 8)")
	return exitFatal
}
