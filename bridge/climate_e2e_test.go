package bridge_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// TestStartWithClimate: on the simulator's EV, whose vehicle profile lists
// remote climate, a start carrying climate settings writes them to the
// car's climate profile first, in Ford's words, then starts the car; a
// value Ford would refuse is rejected without a Ford call, and so is
// climate on the truck, which has no remote climate (its plain start still
// runs).
func TestStartWithClimate(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2}})
	e.w.WaitValue(e.topic(ev, "remote_start"), "off", 10*time.Second)
	e.waitStream(ev)

	for id, bad := range map[string]struct{ climate, want string }{
		"hot":     {`{"temperature":35}`, "16 to 30"},
		"odd":     {`{"temperature":21.3}`, "steps of 0.5"},
		"toasty":  {`{"seat_front_left":"toasty"}`, "heated1, heated2"},
		"sauna":   {`{"sauna":true}`, `no setting "sauna"`},
		"word":    {`"warm"`, "must be an object"},
		"empty":   {`{}`, "is empty"},
		"defrost": {`{"rear_defrost":"yes"}`, "true or false"},
	} {
		e.w.Publish(e.topic(ev, "command"), `{"command":"start","id":"`+id+`","climate":`+bad.climate+`}`, false)
		if r := e.result(ev, id, "rejected", 5*time.Second); !strings.Contains(r.Error, bad.want) {
			t.Errorf("climate %s: %q, want it to say %q", bad.climate, r.Error, bad.want)
		}
	}
	if got := e.simCommands(ev); len(got) != 0 {
		t.Fatalf("refused settings reached Ford: %v", got)
	}

	e.w.Publish(e.topic(ev, "command"), `{"command":"start","id":"warm","climate":{"temperature":21.5,"rear_defrost":true,"heated_wheel":true,"seat_front_left":"Heated2","seat_front_right":"off"}}`, false)
	e.result(ev, "warm", "success", 10*time.Second)
	e.w.WaitValue(e.topic(ev, "remote_start"), "on", 5*time.Second)
	e.w.WaitFor(e.topic(ev, "climate"), 5*time.Second, func(s string) bool {
		return strings.Contains(s, `"temperature":21.5`) && strings.Contains(s, `"seat_front_left":"heated2"`)
	})
	if got := e.simCommands(ev); !slices.Equal(got, []string{"climateProfile", "remoteStart"}) {
		t.Fatalf("Ford got %v; want the climate profile, then the start", got)
	}
	want := map[string]string{"SetPointTemp_Rq": "21_5", "RccRearDefrost_Rq": "On", "RccHeatedSteeringWheel_Rq": "On",
		"RccLeftFrontClimateSeat_Rq": "Heated2", "RccRightFrontClimateSeat_Rq": "Off",
		"RccHeatedWindshield_Rq": "Off", "RccLeftRearClimateSeat_Rq": "Off", "RccRightRearClimateSeat_Rq": "Off"}
	written := e.sim.Stats().Commands[0].Properties
	for k, v := range want {
		if written[k] != v {
			t.Errorf("the profile written has %s = %v, want %s", k, written[k], v)
		}
	}
	if len(written) != len(want) {
		t.Errorf("the profile written is %v; want the whole profile, %d preferences", written, len(want))
	}

	e.w.Publish(e.topic(vin1, "command"), `{"command":"start","id":"truck-warm","climate":{"temperature":20}}`, false)
	if r := e.result(vin1, "truck-warm", "rejected", 5*time.Second); !strings.Contains(r.Error, "no remote climate") || !strings.Contains(r.Error, "Ford was not called") {
		t.Fatalf("climate on the truck: %+v", r)
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"start","id":"truck-start"}`, false)
	e.result(vin1, "truck-start", "success", 10*time.Second)
	if got := e.simCommands(vin1); !slices.Equal(got, []string{"remoteStart"}) {
		t.Fatalf("Ford got %v for the truck", got)
	}
	if h := e.w.History(e.topic("auth", "state")); slices.Contains(h, "unavailable") {
		t.Fatalf("auth states %v", h)
	}
}

// TestZoneLights: the truck, whose vehicle list entry has four lighting
// zones, turns its lights on in a zone (switched on, then the zone picked)
// and off, each call on Ford's zone lighting paths; a zone that does not
// exist is refused with the ones that do, and the EV, which has no zone
// lighting, is refused without a Ford call. Only the truck's device has
// the zone lighting buttons.
func TestZoneLights(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, sim: fordsim.Options{Vehicles: 2}, allowed: []string{"lock", "unlock", "zone_lights"}})
	truckConfig := e.w.WaitFor(e.deviceConfig(vin1), 10*time.Second, func(s string) bool { return strings.Contains(s, "zone_lights_button") })
	for key, press := range map[string]string{"zone_lights_button": `{"command":"zone_lights","zone":"all"}`, "zone_lights_off_button": `{"command":"zone_lights","zone":"off"}`} {
		if c := cmps(t, truckConfig)[key]; c == nil || c["payload_press"] != press {
			t.Errorf("%s: %v", key, c)
		}
	}
	evConfig := e.w.WaitFor(e.deviceConfig(ev), 10*time.Second, func(s string) bool { return strings.Contains(s, "odometer") })
	if strings.Contains(evConfig, "zone_lights") {
		t.Error("the EV's device offers zone lighting")
	}

	e.w.Publish(e.topic(vin1, "command"), `{"command":"zone_lights","zone":"roof","id":"roof"}`, false)
	if r := e.result(vin1, "roof", "rejected", 5*time.Second); !strings.Contains(r.Error, "all, front, rear, driver, passenger or off") {
		t.Fatalf("zone roof: %+v", r)
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"zone_lights","id":"nozone"}`, false)
	e.result(vin1, "nozone", "rejected", 5*time.Second)
	e.w.Publish(e.topic(ev, "command"), `{"command":"zone_lights","zone":"all","id":"ev"}`, false)
	if r := e.result(ev, "ev", "rejected", 5*time.Second); !strings.Contains(r.Error, "no zone lighting") {
		t.Fatalf("zone lights on the EV: %+v", r)
	}

	// The car shows where its lights are (the power mode event); the
	// commands follow it: on then the zone from off, nothing for the zone
	// already lit, the zone alone from another.
	e.w.WaitValue(e.topic(vin1, "zone_lights"), "off", 5*time.Second)
	for _, zone := range []string{"front", "front", "rear", "off"} {
		id := "z" + bridgetest.Suffix()
		e.w.Publish(e.topic(vin1, "command"), `{"command":"zone_lights","zone":"`+zone+`","id":"`+id+`"}`, false)
		e.result(vin1, id, "success", 10*time.Second)
		e.w.WaitValue(e.topic(vin1, "zone_lights"), zone, 5*time.Second)
	}
	cmds := e.sim.Stats().Commands
	var got []string
	for _, c := range cmds {
		got = append(got, c.Type)
		if c.VIN != vin1 {
			t.Fatalf("Ford got %+v", c)
		}
	}
	if !slices.Equal(got, []string{"zoneLightsOn", "zoneLightsZone", "zoneLightsZone", "zoneLightsOff"}) || cmds[1].Properties["zone"] != "1" || cmds[2].Properties["zone"] != "2" {
		t.Fatalf("Ford got %v (%+v); want on, zone 1, zone 2, off", got, cmds)
	}
}

// TestClimateEntitiesChangeTheProfile: the EV's Home Assistant device has
// the climate profile's entities (a temperature number, a switch per
// heater, a select per seat), each sending a climate command; a change is
// written to the car's profile without starting the car, and
// P/VIN/climate shows the whole profile as written. The truck, which has
// no remote climate, has none of them and refuses the command.
func TestClimateEntitiesChangeTheProfile(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, sim: fordsim.Options{Vehicles: 2}, allowed: []string{"lock", "unlock", "start", "climate"}})
	cfg := cmps(t, e.w.WaitFor(e.deviceConfig(ev), 10*time.Second, func(s string) bool { return strings.Contains(s, "climate_temperature") }))
	climate := e.topic(ev, "climate")
	temp := cfg["climate_temperature"]
	if temp["platform"] != "number" || temp["min"] != 15.5 || temp["max"] != 30.5 || temp["step"] != 0.5 || temp["state_topic"] != climate ||
		temp["command_template"] != `{"command":"climate","climate":{"temperature":{{ value }}}}` {
		t.Fatalf("temperature entity %v", temp)
	}
	defrost := cfg["climate_rear_defrost"]
	if defrost["platform"] != "switch" || defrost["payload_on"] != `{"command":"climate","climate":{"rear_defrost":true}}` ||
		defrost["state_on"] != "ON" || !strings.Contains(defrost["value_template"].(string), "value_json.rear_defrost") {
		t.Fatalf("rear defrost entity %v", defrost)
	}
	seat := cfg["climate_seat_front_left"]
	if seat["platform"] != "select" || len(seat["options"].([]any)) != 7 || seat["command_template"] != `{"command":"climate","climate":{"seat_front_left":"{{ value }}"}}` {
		t.Fatalf("seat entity %v", seat)
	}
	truck := e.w.WaitFor(e.deviceConfig(vin1), 10*time.Second, func(s string) bool { return strings.Contains(s, "odometer") })
	if strings.Contains(truck, "climate_") {
		t.Error("the truck's device offers climate settings")
	}

	// What Home Assistant publishes when the entities change.
	e.w.Publish(e.topic(ev, "command"), `{"command":"climate","climate":{"temperature":22.5},"id":"t"}`, false)
	e.result(ev, "t", "success", 10*time.Second)
	e.w.WaitValue(climate, `{"temperature":22.5,"rear_defrost":false,"heated_windshield":false,"heated_wheel":false,"seat_front_left":"off","seat_front_right":"off","seat_rear_left":"off","seat_rear_right":"off"}`, 5*time.Second)
	e.w.Publish(e.topic(ev, "command"), defrost["payload_on"].(string), false)
	e.w.WaitFor(climate, 10*time.Second, func(s string) bool {
		return strings.Contains(s, `"rear_defrost":true`) && strings.Contains(s, `"temperature":22.5`)
	})
	e.w.Publish(e.topic(ev, "command"), `{"command":"climate","climate":{"seat_front_left":"cooled1","temperature":"hi"},"id":"s"}`, false)
	e.result(ev, "s", "success", 10*time.Second)
	e.w.WaitFor(climate, 5*time.Second, func(s string) bool {
		return strings.Contains(s, `"seat_front_left":"cooled1"`) && strings.Contains(s, `"temperature":"hi"`)
	})
	if got := e.simCommands(ev); !slices.Equal(got, []string{"climateProfile", "climateProfile", "climateProfile"}) {
		t.Fatalf("Ford got %v; want three profile writes and no start", got)
	}

	e.w.Publish(e.topic(ev, "command"), `{"command":"climate","id":"none"}`, false)
	if r := e.result(ev, "none", "rejected", 5*time.Second); !strings.Contains(r.Error, "settings to change") {
		t.Fatalf("climate without settings: %+v", r)
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"climate","climate":{"temperature":20},"id":"truck"}`, false)
	if r := e.result(vin1, "truck", "rejected", 5*time.Second); !strings.Contains(r.Error, "no remote climate") {
		t.Fatalf("climate on the truck: %+v", r)
	}
}

// TestClimateAsTheCarHasIt: the climate entities follow what Ford's
// profile lists of each car (ha-fordpass reads driverHeatedSeat and
// heatedSteeringWheel): the simulator's second Mach-E has seats that heat
// only and no heated wheel, so its seats offer no cooling and it has no
// wheel switch, and a cooled seat or the wheel sent to it over MQTT is
// refused without a Ford call; the first Mach-E offers both. The
// temperature number spans 15.5 to 30.5 °C, its ends LO and HI: 15.5
// reaches Ford as LO and P/VIN/climate says "lo", which the number shows
// as 15.5 again.
func TestClimateAsTheCarHasIt(t *testing.T) {
	t.Parallel()
	vented, heatOnly := fordsim.VIN(2), fordsim.VIN(4)
	e := newEnv(t, envOptions{signedIn: true, sim: fordsim.Options{Vehicles: 4}, allowed: []string{"lock", "unlock", "start", "climate"}})
	full := cmps(t, e.w.WaitFor(e.deviceConfig(vented), 10*time.Second, func(s string) bool { return strings.Contains(s, "climate_temperature") }))
	if seat := full["climate_seat_front_left"]; seat == nil || len(seat["options"].([]any)) != 7 || full["climate_heated_wheel"] == nil {
		t.Fatalf("the vented car's seats and wheel: %v, %v", seat, full["climate_heated_wheel"])
	}
	some := cmps(t, e.w.WaitFor(e.deviceConfig(heatOnly), 10*time.Second, func(s string) bool { return strings.Contains(s, "climate_temperature") }))
	if seat := some["climate_seat_rear_right"]; seat == nil || !slices.Equal(seat["options"].([]any), []any{"off", "heated1", "heated2", "heated3"}) {
		t.Fatalf("the heat-only car's seat: %v", seat)
	}
	if some["climate_heated_wheel"] != nil {
		t.Fatalf("a car without a heated wheel offers it: %v", some["climate_heated_wheel"])
	}
	for id, settings := range map[string]string{"cool": `{"seat_front_left":"cooled2"}`, "wheel": `{"heated_wheel":true}`} {
		e.w.Publish(e.topic(heatOnly, "command"), `{"command":"climate","climate":`+settings+`,"id":"`+id+`"}`, false)
		if r := e.result(heatOnly, id, "rejected", 5*time.Second); !strings.Contains(r.Error, "heat only") && !strings.Contains(r.Error, "lists no") {
			t.Fatalf("%s: %+v", id, r)
		}
	}
	if cmds := e.simCommands(heatOnly); len(cmds) != 0 {
		t.Fatalf("Ford got %v", cmds)
	}
	temp := some["climate_temperature"]
	e.w.Publish(e.topic(heatOnly, "command"), strings.ReplaceAll(temp["command_template"].(string), "{{ value }}", "15.5"), false)
	e.w.WaitFor(e.topic(heatOnly, "climate"), 10*time.Second, func(s string) bool { return strings.Contains(s, `"temperature":"lo"`) })
	if cmds := e.sim.Stats().Commands; len(cmds) != 1 || cmds[0].Properties["SetPointTemp_Rq"] != "LO" {
		t.Fatalf("Ford got %+v", cmds)
	}
	if !strings.Contains(temp["value_template"].(string), "15.5 if t == 'lo'") {
		t.Fatalf("the number does not show lo as 15.5: %v", temp["value_template"])
	}
}
