package bridge_test

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkStreamedUpdate is one telemetry change from the simulated car to
// the subscriber, through the real bridge, websocket and broker: a profile
// of it (-cpuprofile) shows where an update's CPU goes.
func BenchmarkStreamedUpdate(b *testing.B) {
	e := newEnv(b, envOptions{signedIn: true, stream: true})
	e.w.waitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.waitStream(vin1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		want := fmt.Sprintf("%d.5", 70000+i)
		if err := e.sim.Patch(vin1, map[string]any{"metrics": map[string]any{"odometer": map[string]any{"value": float64(70000+i) + 0.5}}}); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if v, _ := e.w.get(e.topic(vin1, "odometer")); v == want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("update not seen")
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}
