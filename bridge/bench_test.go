package bridge_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// BenchmarkStreamedUpdate is one telemetry change from the simulated car to
// the subscriber, through the real bridge, websocket and broker: a profile
// of it (-cpuprofile) shows where an update's CPU goes.
func BenchmarkStreamedUpdate(b *testing.B) {
	e := newEnv(b, envOptions{signedIn: true, stream: true})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
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
			if v, _ := e.w.Get(e.topic(vin1, "odometer")); v == want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("update not seen")
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// BenchmarkCommandRoundTrip is an MQTT command to its success result
// through the bridge, the simulator (1 ms command delay) and the broker.
func BenchmarkCommandRoundTrip(b *testing.B) {
	e := newEnv(b, envOptions{signedIn: true, stream: true, sim: fordsim.Options{CommandDelay: time.Millisecond}})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.waitStream(vin1)
	res := e.topic(vin1, "command", "result")
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("b%d", i)
		word := []string{"unlock", "lock"}[i%2]
		e.w.Publish(e.topic(vin1, "command"), `{"command":"`+word+`","id":"`+id+`"}`, false)
		want := `"id":"` + id + `","command":"` + word + `","status":"success"`
		deadline := time.Now().Add(10 * time.Second)
		for {
			if v, _ := e.w.Get(res); strings.Contains(v, want) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("no success")
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
}
