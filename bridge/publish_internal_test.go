package bridge

import (
	"testing"

	"go.uber.org/zap"
)

// TestHeldResultsAreBounded: results reached while the broker is
// unreachable are held in order up to the last 100; older ones are
// dropped and counted.
func TestHeldResultsAreBounded(t *testing.T) {
	p := &publisher{core: &core{log: zap.NewNop()}}
	for i := range 150 {
		if tok := p.publishEvent("r", i); tok != nil {
			t.Fatal("published while disconnected")
		}
	}
	if len(p.held.msgs) != maxHeld || p.held.dropped != 50 || string(p.held.msgs[0].data) != "50" || string(p.held.msgs[99].data) != "149" {
		t.Fatalf("held %d (first %s), dropped %d", len(p.held.msgs), p.held.msgs[0].data, p.held.dropped)
	}
}
