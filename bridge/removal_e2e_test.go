package bridge_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
)

// cmps reads a device config's components, each as its raw JSON.
func cmps(t testing.TB, config string) map[string]map[string]any {
	t.Helper()
	var p struct {
		Cmps map[string]map[string]any `json:"cmps"`
	}
	if err := json.Unmarshal([]byte(config), &p); err != nil {
		t.Fatalf("config: %v", err)
	}
	return p.Cmps
}

// removedAs reports whether a config carries component key as its platform
// alone (Home Assistant's removal).
func removedAs(t testing.TB, config, key, platform string) bool {
	c, ok := cmps(t, config)[key]
	return ok && len(c) == 1 && c["platform"] == platform
}

// waitRemoval waits for a config that removes key (as platform) and then
// for the config after it, which no longer names key.
func (e *env) waitRemoval(topic, key, platform string, from int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := e.w.History(topic)[from:]
		if i := slices.IndexFunc(h, func(s string) bool { return s != "" && removedAs(e.t, s, key, platform) }); i >= 0 && i+1 < len(h) {
			if _, still := cmps(e.t, h[len(h)-1])[key]; still && removedAs(e.t, h[len(h)-1], key, platform) {
				for j, c := range h {
					e.t.Logf("config %d: %v", j, cmps(e.t, c)[key])
				}
				e.t.Fatalf("%s: the removal of %s is the config that stays", topic, key)
			}
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: no config removing %s as %s, then dropping it (%d configs)", topic, key, platform, len(h))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFieldTheCarStopsReportingLeavesHomeAssistantAndTheBroker: a field the
// car no longer reports is sent to Home Assistant as its platform alone,
// once, then left out; its retained topic is cleared.
//
// A field missing from Ford's answers keeps its value for
// Options.FieldGrace (a day; a nanosecond here: the answer that lacks it
// first keeps it, the next does not) before it counts as no longer
// reported.
func TestFieldTheCarStopsReportingLeavesHomeAssistantAndTheBroker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true, options: func(o *bridge.Options) { o.FieldGrace = time.Nanosecond }})
	topic := e.deviceConfig(vin1)
	e.w.WaitFor(topic, 10*time.Second, func(s string) bool { return cmps(t, s)["outside_temperature"] != nil })
	e.w.WaitFor(e.topic(vin1, "outside_temperature"), 5*time.Second, func(s string) bool { return s != "" })
	e.waitStream(vin1)
	from := len(e.w.History(topic))
	e.patch(vin1, `{"metrics":{"outsideTemperature":null}}`)
	e.patch(vin1, `{"metrics":{"odometer":{"value":12999.5}}}`) // the next answer without it
	e.waitRemoval(topic, "outside_temperature", "sensor", from)
	e.w.WaitValue(e.topic(vin1, "outside_temperature"), "", 5*time.Second)
	last, _ := e.w.Get(topic)
	if _, still := cmps(t, last)["outside_temperature"]; still || cmps(t, last)["odometer"] == nil {
		t.Fatalf("the config that stays: %v", cmps(t, last)["outside_temperature"])
	}
	late := bridgetest.Watch(t, e.cfg.MQTTURL, e.p+"/#")
	late.WaitFor(e.topic(vin1, "odometer"), 5*time.Second, func(s string) bool { return s != "" })
	if v, ok := late.Get(e.topic(vin1, "outside_temperature")); ok {
		t.Fatalf("the dropped field is still retained: %q", v)
	}
}

// TestConfigFromBeforeIsCleanedUp: after a restart with fewer commands
// allowed, the components the device no longer has (the horn button, the
// lock as a lock) are removed, though this run never published them: they
// are read from the config retained on the broker.
func TestConfigFromBeforeIsCleanedUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true})
	topic := e.deviceConfig(vin1)
	e.w.WaitFor(topic, 10*time.Second, func(s string) bool {
		c := cmps(t, s)
		// The messages' entity too: the device is whole.
		return c["lock"] != nil && c["lock"]["platform"] == "lock" && c["horn_button"] != nil && c["odometer"] != nil && c["messages_unread"] != nil
	})
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	from := len(e.w.History(topic))
	e.cfg.CommandsAllowed = []string{"refresh", "start", "stop"}
	e.restart()
	e.waitRemoval(topic, "horn_button", "button", from)
	e.waitRemoval(topic, "lock", "lock", from)
	last := e.w.WaitFor(topic, 5*time.Second, func(s string) bool {
		c := cmps(t, s)
		return c["lock"] != nil && c["lock"]["platform"] == "sensor" && c["horn_button"] == nil
	})
	if c := cmps(t, last); c["odometer"] == nil || c["remote_start_button"] == nil {
		t.Fatalf("the config that stays lost components it has: %d", len(c))
	}
	// And the bridge does not loop on its own removals.
	time.Sleep(500 * time.Millisecond)
	n := len(e.w.History(topic))
	time.Sleep(700 * time.Millisecond)
	if m := len(e.w.History(topic)); m != n {
		t.Fatalf("%d more configs without a change", m-n)
	}
}

// TestAFieldMissingFromOneAnswerKeepsItsValue: Ford's answers that lack a
// field the car reported (FordConnect's odometer vanished for days,
// ha-fordconnect-query #48) leave Home Assistant's value and entity as they
// were; the field's next value goes out as usual.
func TestAFieldMissingFromOneAnswerKeepsItsValue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	odo := e.topic(vin1, "odometer")
	e.w.WaitFor(odo, 10*time.Second, func(s string) bool { return s != "" })
	before, _ := e.w.Get(odo)
	e.patch(vin1, `{"metrics":{"odometer":null}}`)
	polls := e.sim.Stats().Calls["telemetry"]
	bridgetest.Eventually(t, 10*time.Second, "three polls without the odometer", func() bool { return e.sim.Stats().Calls["telemetry"] >= polls+3 })
	if h := e.w.History(odo); slices.Contains(h, "") {
		t.Fatalf("the odometer was cleared: %v", h)
	}
	if c := cmps(t, e.w.WaitFor(e.deviceConfig(vin1), time.Second, func(string) bool { return true })); c["odometer"] == nil || c["odometer"]["platform"] != "sensor" {
		t.Fatalf("the odometer's entity left the device: %v", c["odometer"])
	}
	if s, _ := e.w.Get(e.topic(vin1, "state")); !strings.Contains(s, `"odometer":`+before) {
		t.Fatalf("the state lost the odometer: %s", s)
	}
	e.patch(vin1, `{"metrics":{"odometer":{"value":13000.5}}}`)
	e.w.WaitValue(odo, "13000.5", 10*time.Second)
}
