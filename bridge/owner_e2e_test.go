package bridge_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// TestSoftwareUpdateStatusAndAutomaticUpdates: the simulator's EV reports
// its last software update as installed, with its details as the sensor's
// attributes; automatic updates are on, and auto_updates turns them off
// through Ford's publishASUSettingsCommand as ha-fordpass sends it.
func TestSoftwareUpdateStatusAndAutomaticUpdates(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2}, allowed: []string{"lock", "auto_updates"}})
	e.w.WaitValue(e.topic(ev, "ota_status"), "installed", 10*time.Second)
	var ota map[string]any
	if err := json.Unmarshal([]byte(e.w.WaitFor(e.topic(ev, "ota"), 5*time.Second, func(s string) bool { return s != "" })), &ota); err != nil ||
		ota["ford_state"] != "success" || ota["from_state"] != "deploying" {
		t.Fatalf("P/VIN/ota = %v (%v)", ota, err)
	}
	e.w.WaitFor(e.topic(ev, "state"), 5*time.Second, func(s string) bool { return strings.Contains(s, `"ota_status":"installed"`) })
	if _, ok := e.w.Get(e.topic(vin1, "ota_status")); ok {
		t.Error("the truck, which reports no update, has an ota_status")
	}
	cfg := e.w.WaitFor(e.deviceConfig(ev), 10*time.Second, func(s string) bool { return strings.Contains(s, "auto_updates_off_button") })
	c := cmps(t, cfg)
	if s := c["ota_status"]; s == nil || s["device_class"] != "enum" || s["json_attributes_topic"] != e.topic(ev, "ota") {
		t.Fatalf("the software update's entity: %v", s)
	}
	e.w.WaitValue(e.topic(ev, "auto_updates"), "on", 5*time.Second)
	e.waitStream(ev)
	e.w.Publish(e.topic(ev, "command"), `{"command":"auto_updates","enabled":"no","id":"bad"}`, false)
	if r := e.result(ev, "bad", "rejected", 5*time.Second); !strings.Contains(r.Error, "enabled, true or false") {
		t.Fatalf("enabled \"no\": %+v", r)
	}
	e.w.Publish(e.topic(ev, "command"), `{"command":"auto_updates","enabled":false,"id":"off"}`, false)
	e.result(ev, "off", "success", 10*time.Second)
	e.w.WaitValue(e.topic(ev, "auto_updates"), "off", 5*time.Second)
	cmds := e.sim.Stats().Commands
	if len(cmds) != 1 || cmds[0].Type != "publishASUSettings" || cmds[0].Properties["ASUState"] != "OFF" {
		t.Fatalf("Ford received %+v", cmds)
	}
	e.assertNoSecretsLogged()
}

// TestMessageCentre: every car shows its messages and those for every car,
// with their count in its state; deleting the newest reaches Ford as
// ha-fordpass sends it and leaves every car's list without it; a restart
// reads the messages kept in STATE_DIR, not Ford.
func TestMessageCentre(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, sim: fordsim.Options{Vehicles: 2}, allowed: []string{"lock", "delete_messages"}})
	for _, vin := range []string{vin1, ev} {
		e.w.WaitValue(e.topic(vin, "messages_unread"), "2", 10*time.Second)
		e.w.WaitFor(e.topic(vin, "state"), 5*time.Second, func(s string) bool { return strings.Contains(s, `"messages_unread":2`) })
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.w.WaitFor(e.topic(ev, "messages"), 5*time.Second, func(s string) bool { return s != "" })), &list); err != nil ||
		len(list) != 2 || list[0]["subject"] != "Welcome to FordPass" || list[1]["vin"] != ev {
		t.Fatalf("the EV's messages: %v (%v)", list, err)
	}
	cfg := e.w.WaitFor(e.deviceConfig(ev), 10*time.Second, func(s string) bool { return strings.Contains(s, "delete_latest_message_button") })
	if m := cmps(t, cfg)["messages_unread"]; m == nil || m["json_attributes_topic"] != e.topic(ev, "messages") {
		t.Fatalf("the messages' entity: %v", m)
	}
	e.w.Publish(e.topic(ev, "command"), `{"command":"delete_messages","latest":"yes","id":"bad"}`, false)
	if r := e.result(ev, "bad", "rejected", 5*time.Second); !strings.Contains(r.Error, "latest, true or false") {
		t.Fatalf("latest \"yes\": %+v", r)
	}
	e.w.Publish(e.topic(ev, "command"), `{"command":"delete_messages","latest":true,"id":"d1"}`, false)
	e.result(ev, "d1", "success", 10*time.Second)
	// The newest was the message for every car: both cars lose it.
	e.w.WaitValue(e.topic(ev, "messages_unread"), "1", 5*time.Second)
	e.w.WaitValue(e.topic(vin1, "messages_unread"), "1", 5*time.Second)
	if n := e.sim.Stats().Calls["messages_delete"]; n != 1 {
		t.Fatalf("%d deletions reached Ford", n)
	}
	reads := e.sim.Stats().Calls["messages"]
	e.w.Reset(e.topic("bridge", "availability"))
	e.restart()
	// online: the new bridge has its subscriptions and takes commands.
	e.w.WaitValue(e.topic("bridge", "availability"), "online", 10*time.Second)
	e.w.WaitValue(e.topic(ev, "messages_unread"), "1", 10*time.Second)
	if got := e.sim.Stats().Calls["messages"]; got != reads {
		t.Fatalf("the restart read the message centre again (%d reads, %d before) though STATE_DIR keeps it", got, reads)
	}
	e.w.Publish(e.topic(ev, "command"), `{"command":"delete_messages","id":"d2"}`, false)
	e.result(ev, "d2", "success", 10*time.Second)
	e.w.WaitValue(e.topic(ev, "messages_unread"), "0", 5*time.Second)
	e.w.Publish(e.topic(ev, "command"), `{"command":"delete_messages","id":"d3"}`, false)
	if r := e.result(ev, "d3", "failed", 10*time.Second); !strings.Contains(r.Error, "no messages") {
		t.Fatalf("deleting from an empty list: %+v", r)
	}
	// Nothing to delete is no news about Ford: the connection stays ok.
	if h := e.w.History(e.topic("auth", "state")); h[len(h)-1] != "ok" || slices.Contains(h, "unavailable") {
		t.Fatalf("the auth state went %v", h)
	}
	e.assertNoSecretsLogged()
}

// TestTrailerLightCheckGuardModeAndGearbox: the trucks, which Ford lists
// with a trailer light check and guard mode, get their buttons and their
// commands reach Ford as ha-fordpass sends them; the EV, which lists
// neither, is refused without a Ford call; the third car, whose profile
// says a manual gearbox, has no gear lever entity.
func TestTrailerLightCheckGuardModeAndGearbox(t *testing.T) {
	t.Parallel()
	ev, manual := fordsim.VIN(2), fordsim.VIN(3)
	e := newEnv(t, envOptions{signedIn: true, sim: fordsim.Options{Vehicles: 3}, allowed: []string{"lock", "trailer_light_check", "guard_mode"}})
	cfg := cmps(t, e.w.WaitFor(e.deviceConfig(vin1), 10*time.Second, func(s string) bool { return strings.Contains(s, "guard_mode_off_button") }))
	for _, k := range []string{"trailer_light_check_button", "trailer_light_check_stop_button", "guard_mode_on_button", "gear"} {
		if cfg[k] == nil {
			t.Errorf("the truck's device lacks %s", k)
		}
	}
	if c := cmps(t, e.w.WaitFor(e.deviceConfig(manual), 10*time.Second, func(s string) bool { return strings.Contains(s, `"odometer"`) })); c["gear"] != nil {
		t.Error("the car with a manual gearbox has a gear lever entity")
	}
	for _, cmd := range []string{"trailer_light_check", "guard_mode"} {
		e.w.Publish(e.topic(ev, "command"), `{"command":"`+cmd+`","enabled":true,"id":"ev-`+cmd+`"}`, false)
		if r := e.result(ev, "ev-"+cmd, "rejected", 5*time.Second); !strings.Contains(r.Error, "Ford lists no") {
			t.Fatalf("%s on the EV: %+v", cmd, r)
		}
	}
	for _, step := range []struct{ cmd, ford string }{
		{`"command":"trailer_light_check","enabled":true`, "startTrailerLightCheck"},
		{`"command":"trailer_light_check","enabled":false`, "stopTrailerLightCheck"},
		{`"command":"guard_mode","enabled":true`, "guardModeOn"},
		{`"command":"guard_mode","enabled":false`, "guardModeOff"},
	} {
		id := "t" + bridgetest.Suffix()
		before := len(e.sim.Stats().Commands)
		e.w.Publish(e.topic(vin1, "command"), `{`+step.cmd+`,"id":"`+id+`"}`, false)
		e.result(vin1, id, "success", 10*time.Second)
		cmds := e.sim.Stats().Commands
		if len(cmds) != before+1 || cmds[before].Type != step.ford || cmds[before].VIN != vin1 {
			t.Fatalf("%s: Ford got %+v", step.cmd, cmds[before:])
		}
	}
}
