package bridge_test

import (
	"encoding/json"
	"fmt"
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
		e.w.WaitValue(e.topic(vin, "lock"), "locked", 10*time.Second)
		before[vin] = e.w.WaitFor(e.deviceConfig(vin), 10*time.Second, func(s string) bool { return len(componentNames(t, s)) > 20 })
	}
	time.Sleep(300 * time.Millisecond) // the last config is the one kept
	seen := map[string]int{}
	for _, vin := range []string{vin1, vin2} {
		before[vin], _ = e.w.Get(e.deviceConfig(vin))
		seen[vin] = len(e.w.History(e.deviceConfig(vin)))
	}
	e.simPost("/_sim/outage?status=503&for=60s")
	e.restart()
	e.w.WaitValue(e.topic("bridge", "availability"), "online", 10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	for _, vin := range []string{vin1, vin2} {
		after := e.w.History(e.deviceConfig(vin))[seen[vin]:]
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
	if n := e.sim.Stats().Calls["telemetry"]; n != 0 {
		t.Logf("%d REST telemetry calls", n)
	}
}

// TestFiveRestartsOnTheDefaultBudget: a restart costs one socket per car
// (the vehicle list comes from the cache, the car's state from the
// socket), so five restarts in a row on the default budget of 250 still
// bring live changes, and the car is never dark.
func TestFiveRestartsOnTheDefaultBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true, budget: 250})
	for i := range 5 {
		if i > 0 {
			e.restart()
		}
		e.waitStream(vin1)
		v := fmt.Sprintf("%d.5", 5000+i)
		e.patch(vin1, `{"metrics":{"odometer":{"value":`+v+`}}}`)
		e.w.WaitValue(e.topic(vin1, "odometer"), v, 10*time.Second)
		if a, _ := e.w.Get(e.topic(vin1, "availability")); a != "online" {
			t.Fatalf("start %d: availability %q", i+1, a)
		}
	}
	st := e.sim.Stats()
	if slices.Contains(e.w.History(e.topic(vin1, "availability")), "offline") {
		t.Fatalf("the car went dark during the restarts: %v", e.w.History(e.topic(vin1, "availability", "detail")))
	}
	t.Logf("5 starts: %d sockets, %d vehicle lists, %d REST telemetry calls, %d calls counted in the budget",
		st.Calls["stream"], st.Calls["vehicle_list"]+st.Calls["garage"], st.Calls["telemetry"], e.client.Budget().Used())
	if st.Calls["vehicle_list"]+st.Calls["garage"] != 1 {
		t.Fatalf("%d vehicle lists for 5 starts; the cache is a day old at most", st.Calls["vehicle_list"])
	}
}
