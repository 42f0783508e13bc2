package bridge_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// TestChargeLocationTargets: after its first telemetry the simulator's EV
// has its saved charging locations read (the preferred-charge-times list,
// which holds every EV of the account: only the car's own are kept):
// charge_locations says 2, charge_location_list names Home at 80 and Work
// at 90, and Home Assistant shows the count with the list as attributes;
// the pickup has none. charge_location_target sends the Work entry back to
// Ford with targetSoc 85 (its path the location's id, the vin in the
// header, as ha-fordpass does) and the list shows 85 at once; a location
// the car lacks fails without touching the connection's state, 75 and
// the pickup are refused without a call, and a restart reads nothing again.
func TestChargeLocationTargets(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, sim: fordsim.Options{Vehicles: 4}, allowed: []string{"lock", "charge_location_target"}})
	e.w.WaitValue(e.topic(ev, "charge_locations"), "2", 10*time.Second)
	list := func() []map[string]any {
		var l struct {
			Locations []map[string]any `json:"locations"`
		}
		if err := json.Unmarshal([]byte(e.w.WaitFor(e.topic(ev, "charge_location_list"), 5*time.Second, func(s string) bool { return s != "" })), &l); err != nil {
			t.Fatal(err)
		}
		return l.Locations
	}
	if l := list(); len(l) != 2 || l[0]["name"] != "Home" || l[0]["target"] != float64(80) || l[1]["name"] != "Work" || l[1]["target"] != float64(90) {
		t.Fatalf("the EV's locations: %v", l)
	}
	cfg := cmps(t, e.w.WaitFor(e.deviceConfig(ev), 10*time.Second, func(s string) bool { return strings.Contains(s, `"charge_locations"`) }))
	if c := cfg["charge_locations"]; c["json_attributes_topic"] != e.topic(ev, "charge_location_list") {
		t.Fatalf("the locations' entity: %v", c)
	}
	if _, ok := e.w.Get(e.topic(vin1, "charge_locations")); ok {
		t.Error("the pickup shows charging locations")
	}
	e.w.Publish(e.topic(ev, "command"), `{"command":"charge_location_target","location":"work","value":75,"id":"t75"}`, false)
	e.result(ev, "t75", "rejected", 5*time.Second)
	e.w.Publish(e.topic(ev, "command"), `{"command":"charge_location_target","value":80,"id":"tnone"}`, false)
	if r := e.result(ev, "tnone", "rejected", 5*time.Second); !strings.Contains(r.Error, "needs a location") {
		t.Fatalf("no location: %+v", r)
	}
	for id, loc := range map[string]string{"tbool": "true", "tzero": "0", "thalf": "1.5", "tobj": `{"name":"Home"}`, "tblank": `"  "`} {
		e.w.Publish(e.topic(ev, "command"), `{"command":"charge_location_target","location":`+loc+`,"value":80,"id":"`+id+`"}`, false)
		if r := e.result(ev, id, "rejected", 5*time.Second); !strings.Contains(r.Error, "a name or a place") {
			t.Fatalf("location %s: %+v", loc, r)
		}
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"charge_location_target","location":"Home","value":80,"id":"truck"}`, false)
	e.result(vin1, "truck", "rejected", 5*time.Second)
	e.w.Publish(e.topic(ev, "command"), `{"command":"charge_location_target","location":3,"value":80,"id":"t3"}`, false)
	if r := e.result(ev, "t3", "failed", 5*time.Second); !strings.Contains(r.Error, `"Home", "Work"`) {
		t.Fatalf("a third location: %+v", r)
	}
	if n := len(e.sim.Stats().Commands); n != 0 {
		t.Fatalf("%d changes reached Ford", n)
	}
	e.w.Publish(e.topic(ev, "command"), `{"command":"charge_location_target","location":"Work","value":85,"id":"t85"}`, false)
	e.result(ev, "t85", "success", 10*time.Second)
	cmds := e.sim.Stats().Commands
	if len(cmds) != 1 || cmds[0].Type != "updateChargeProfiles" || cmds[0].Properties["location"] != "2002" || cmds[0].Properties["targetSoc"] != float64(85) {
		t.Fatalf("Ford received %+v", cmds)
	}
	e.w.WaitFor(e.topic(ev, "charge_location_list"), 5*time.Second, func(s string) bool { return strings.Contains(s, `"name":"Work","target":85`) })
	if h := e.w.History(e.topic("auth", "state")); slices.Contains(h, "unavailable") {
		t.Fatalf("the auth state went %v", h)
	}
	reads := e.sim.Stats().Calls["charge_locations"]
	if reads != 2 { // the two EVs, each once
		t.Fatalf("%d reads of the charging locations for two EVs", reads)
	}
	e.w.Reset(e.topic("bridge", "availability"))
	e.restart()
	e.w.WaitValue(e.topic("bridge", "availability"), "online", 10*time.Second)
	e.w.WaitValue(e.topic(ev, "lock"), "locked", 10*time.Second)
	e.w.Publish(e.topic(ev, "command"), `{"command":"charge_location_target","location":1,"value":100,"id":"t100"}`, false)
	e.result(ev, "t100", "success", 10*time.Second)
	if got := e.sim.Stats().Calls["charge_locations"]; got != reads {
		t.Fatalf("the restart read the locations again (%d reads, %d before) though STATE_DIR keeps them", got, reads)
	}
	if l := list(); l[0]["target"] != float64(100) || l[1]["target"] != float64(85) {
		t.Fatalf("after the restart: %v", l)
	}
	e.assertNoSecretsLogged()
}

// TestFordConnectExtras: with FORD_BACKEND=fordconnect, after the car's
// first telemetry its health alerts and an EV's departure times are read
// from FordConnect Query and shown as Ford answers them (health_alerts
// counts VehicleAlertList[].ActiveAlerts); departure times of the pickup
// (404: not for this car) and charge schedules (403: that category is not
// consented) are not shown, and neither makes the bridge ask for a
// sign-in: the state stays ok.
func TestFordConnectExtras(t *testing.T) {
	t.Parallel()
	const pace = 100 * time.Millisecond
	e := newEnv(t, envOptions{fordconnect: pace, sim: fordsim.Options{FconPace: pace, Vehicles: 2}})
	e.w.WaitValue(e.topic("auth", "state"), "reauth_required", 10*time.Second)
	link := e.w.WaitFor(e.topic("auth", "login_url"), 5*time.Second, func(s string) bool { return s != "" })
	landing, err := fordsim.FollowLogin(context.Background(), link)
	if err != nil {
		t.Fatal(err)
	}
	e.w.Publish(e.topic("auth", "code", "set"), landing, false)
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	// The second car's consent, on a link made after the first consent.
	second := e.w.WaitFor(e.topic("auth", "fordconnect", "login_url"), 10*time.Second, func(s string) bool { return s != "" && s != link })
	e.w.Publish(e.topic("auth", "code", "set"), bridgetest.FollowLogin(t, second), false)
	ev := fordsim.VIN(2)
	for _, vin := range []string{vin1, ev} {
		e.w.WaitValue(e.topic(vin, "health_alerts"), "1", 15*time.Second)
		alerts := e.w.WaitFor(e.topic(vin, "health_alert_list"), 5*time.Second, func(s string) bool { return s != "" })
		if !strings.Contains(alerts, `"ActiveAlerts"`) || !strings.Contains(alerts, vin) {
			t.Fatalf("%s's alerts: %s", vin, alerts)
		}
	}
	e.w.WaitFor(e.topic(ev, "departure_schedules"), 15*time.Second, func(s string) bool { return strings.Contains(s, "departureTimes") })
	read := e.w.WaitFor(e.topic(ev, "departure_schedules_read"), 5*time.Second, func(s string) bool { return s != "" })
	if _, err := time.Parse(time.RFC3339, read); err != nil {
		t.Fatalf("departure_schedules_read %q: %v", read, err)
	}
	cfg := cmps(t, e.w.WaitFor(e.deviceConfig(ev), 10*time.Second, func(s string) bool { return strings.Contains(s, `"departure_schedules_read"`) }))
	if c := cfg["health_alerts"]; c == nil || c["json_attributes_topic"] != e.topic(ev, "health_alert_list") {
		t.Fatalf("the alerts' entity: %v", c)
	}
	// Every read was tried once per car (the pickup's departure times and
	// both cars' charge schedules answered 404 and 403).
	bridgetest.Eventually(t, 10*time.Second, "a read of the charge schedules", func() bool { return e.sim.Stats().Calls["fcon_charge_schedules"] >= 1 })
	st := e.sim.Stats().Calls
	if st["fcon_charge_schedules"] != 1 || st["fcon_departure_schedules"] != 1 || st["fcon_health_alerts"] != 2 {
		t.Fatalf("reads: %d charge schedules, %d departure times, %d alerts", st["fcon_charge_schedules"], st["fcon_departure_schedules"], st["fcon_health_alerts"])
	}
	for _, topic := range []string{e.topic(ev, "charge_schedules_read"), e.topic(vin1, "departure_schedules_read")} {
		if v, ok := e.w.Get(topic); ok && v != "" {
			t.Errorf("%s shows %q", topic, v)
		}
	}
	if h := e.w.History(e.topic("auth", "state")); h[len(h)-1] != "ok" {
		t.Fatalf("the auth state went %v", h)
	}
	e.assertNoSecretsLogged()
}

// TestACarThatJoinsLaterGetsItsReads: an EV that Ford's list leaves out at
// the start and shows later has its reads besides telemetry made when it
// joins (its charging locations and its climate profile), not a whole
// ExtrasEvery later.
func TestACarThatJoinsLaterGetsItsReads(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(4)
	e := newEnv(t, envOptions{signedIn: true, sim: fordsim.Options{Vehicles: 4}, simControls: []string{"/_sim/account?hide=" + ev},
		options: func(o *bridge.Options) { o.VehicleListTTL = 300 * time.Millisecond }})
	// The other EV's reads are made: the loop has looked at the cars.
	e.w.WaitValue(e.topic(fordsim.VIN(2), "charge_locations"), "2", 10*time.Second)
	e.simPost("/_sim/account?hide=")
	e.w.WaitValue(e.topic(ev, "charge_locations"), "2", 15*time.Second)
	e.w.WaitFor(e.topic(ev, "climate"), 10*time.Second, func(s string) bool { return strings.Contains(s, "temperature") })
}
