package bridge_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

func componentNames(t *testing.T, config string) []string {
	t.Helper()
	var p struct {
		Cmps map[string]json.RawMessage `json:"cmps"`
	}
	if err := json.Unmarshal([]byte(config), &p); err != nil {
		t.Fatalf("config is not JSON: %v", err)
	}
	return slices.Sorted(maps.Keys(p.Cmps))
}

// TestRestartKeepsHomeAssistantWhole: a restart while Ford is down (no
// telemetry arrives) republishes each car's device config with every
// component it had, never a subset.
func TestRestartKeepsHomeAssistantWhole(t *testing.T) {
	t.Parallel()
	vin2 := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2}})
	before := map[string]string{}
	for _, vin := range []string{vin1, vin2} {
		e.w.waitValue(e.topic(vin, "lock"), "locked", 10*time.Second)
		before[vin] = e.w.waitFor(e.deviceConfig(vin), 10*time.Second, func(s string) bool { return len(componentNames(t, s)) > 20 })
	}
	time.Sleep(300 * time.Millisecond) // the last config is the one kept
	seen := map[string]int{}
	for _, vin := range []string{vin1, vin2} {
		before[vin], _ = e.w.get(e.deviceConfig(vin))
		seen[vin] = len(e.w.history(e.deviceConfig(vin)))
	}
	e.simPost("/_sim/outage?status=503&for=60s")
	e.restart()
	e.w.waitValue(e.topic("bridge", "availability"), "online", 10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	for _, vin := range []string{vin1, vin2} {
		after := e.w.history(e.deviceConfig(vin))[seen[vin]:]
		if len(after) == 0 {
			t.Fatalf("%s: no device config after the restart", vin)
		}
		want := componentNames(t, before[vin])
		for _, cfg := range after {
			if got := componentNames(t, cfg); !slices.Equal(got, want) {
				t.Fatalf("%s: a config after the restart has %d components, before %d: %v", vin, len(got), len(want), got)
			}
		}
		t.Logf("%s: %d components before and after the restart (%d bytes)", vin, len(want), len(after[len(after)-1]))
	}
	if n := e.sim.Snapshot().Calls["telemetry"]; n != 0 {
		t.Logf("%d REST telemetry calls", n)
	}
}
