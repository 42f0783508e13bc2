package main

import (
	"runtime/debug"
	"testing"
)

// The bridge runs its collector at GOGC=40 when the user sets nothing,
// and leaves a GOGC the user set alone.
func TestGOGCIs40UnlessSet(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	gcDefault(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != 40 {
		t.Errorf("with GOGC unset the collector runs at %d, want 40", got)
	}
	gcDefault(func(k string) string {
		if k == "GOGC" {
			return "75"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, the bridge changed the collector to %d", got)
	}
}
