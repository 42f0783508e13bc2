package bridge_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// TestChargingCommandsOnTheEV: on the simulator's electric car each
// charging command reaches Ford as its command type on the newer command
// path, ends in success, and the charging status shows it; on the fuel
// truck it is refused without a Ford call; only the EV's device has the
// charging buttons.
func TestChargingCommandsOnTheEV(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2},
		allowed: []string{"lock", "unlock", "charge_start", "charge_pause", "charge_cancel"}})
	e.w.WaitValue(e.topic(ev, "charging_status"), "not_ready", 10*time.Second)
	evConfig := e.w.WaitFor(e.deviceConfig(ev), 10*time.Second, func(s string) bool { return strings.Contains(s, "charge_start_button") })
	for _, k := range []string{"charge_start_button", "charge_pause_button", "charge_cancel_button"} {
		if c := cmps(t, evConfig)[k]; c == nil || c["platform"] != "button" {
			t.Errorf("the EV's device lacks %s", k)
		}
	}
	truckConfig := e.w.WaitFor(e.deviceConfig(vin1), 10*time.Second, func(s string) bool { return strings.Contains(s, "odometer") })
	if strings.Contains(truckConfig, "charge_") {
		t.Error("the fuel truck's device offers charging")
	}
	e.waitStream(ev)
	for _, step := range []struct{ cmd, ford, status string }{
		{"charge_start", "startGlobalCharge", "in_progress"},
		{"charge_pause", "pauseGlobalCharge", "paused"},
		{"charge_cancel", "cancelGlobalCharge", "stopped"},
	} {
		e.w.Publish(e.topic(ev, "command"), `{"command":"`+step.cmd+`","id":"`+step.cmd+`"}`, false)
		e.result(ev, step.cmd, "success", 10*time.Second)
		e.w.WaitValue(e.topic(ev, "charging_status"), step.status, 5*time.Second)
		if got := e.simCommands(ev); !slices.Contains(got, step.ford) {
			t.Fatalf("Ford got %v, want %s", got, step.ford)
		}
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"charge_start","id":"truck"}`, false)
	if r := e.result(vin1, "truck", "rejected", 5*time.Second); !strings.Contains(r.Error, "need an electric car") || !strings.Contains(r.Error, "Ford was not called") {
		t.Fatalf("charging the truck: %+v", r)
	}
	if got := e.simCommands(vin1); len(got) != 0 {
		t.Fatalf("Ford got %v for the truck", got)
	}
}

// TestHornDuration: the horn's duration reaches Ford as its property; a
// length Ford does not offer is refused with the allowed ones, without a
// Ford call.
func TestHornDuration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	// Home Assistant has a button per length.
	cfg := e.w.WaitFor(e.deviceConfig(vin1), 10*time.Second, func(s string) bool { return strings.Contains(s, "horn_5s_button") })
	for key, press := range map[string]string{"horn_button": "horn", "horn_1s_button": `{"command":"horn","duration":1}`, "horn_5s_button": `{"command":"horn","duration":5}`} {
		if c := cmps(t, cfg)[key]; c == nil || c["payload_press"] != press {
			t.Errorf("%s: %v", key, c)
		}
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"horn","duration":7,"id":"h7"}`, false)
	if r := e.result(vin1, "h7", "rejected", 5*time.Second); !strings.Contains(r.Error, "1, 3 or 5") {
		t.Fatalf("horn of 7 s: %+v", r)
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"horn","duration":5,"id":"h5"}`, false)
	e.result(vin1, "h5", "success", 10*time.Second)
	cmds := e.sim.Stats().Commands
	if len(cmds) != 1 || cmds[0].Type != "startPanicCue" || cmds[0].Properties["duration"] != float64(5) {
		t.Fatalf("Ford received %+v", cmds)
	}
}

// TestChargeTarget: the EV's charge target is a number in Home Assistant;
// a target of 80 reaches Ford's charge settings and shows on the car's
// topic; 150, 55 and a missing value are refused with the allowed values,
// and the truck cannot, all without a Ford call.
func TestChargeTarget(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2},
		allowed: []string{"lock", "unlock", "charge_target"}})
	e.w.WaitValue(e.topic(ev, "charge_target"), "90", 10*time.Second)
	cfg := e.w.WaitFor(e.deviceConfig(ev), 10*time.Second, func(s string) bool { return strings.Contains(s, `"charge_target"`) })
	if c := cmps(t, cfg)["charge_target"]; c["platform"] != "number" || c["min"] != float64(50) || c["max"] != float64(100) ||
		!strings.Contains(c["command_template"].(string), `"command":"charge_target"`) {
		t.Fatalf("the charge target in Home Assistant: %v", c)
	}
	e.waitStream(ev)
	for id, payload := range map[string]string{"t150": `150`, "t55": `55`, "tnone": ``} {
		body := `{"command":"charge_target","id":"` + id + `"}`
		if payload != "" {
			body = `{"command":"charge_target","value":` + payload + `,"id":"` + id + `"}`
		}
		e.w.Publish(e.topic(ev, "command"), body, false)
		if r := e.result(ev, id, "rejected", 5*time.Second); !strings.Contains(r.Error, "50, 60, 70") && !strings.Contains(r.Error, "needs a value") {
			t.Fatalf("%s: %+v", id, r)
		}
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"charge_target","value":80,"id":"truck"}`, false)
	e.result(vin1, "truck", "rejected", 5*time.Second)
	if n := len(e.sim.Stats().Commands); n != 0 {
		t.Fatalf("%d commands reached Ford", n)
	}
	e.w.Publish(e.topic(ev, "command"), `{"command":"charge_target","value":80,"id":"t80"}`, false)
	e.result(ev, "t80", "success", 10*time.Second)
	e.w.WaitValue(e.topic(ev, "charge_target"), "80", 5*time.Second)
	cmds := e.sim.Stats().Commands
	if len(cmds) != 1 || cmds[0].Type != "updateChargeSettings" {
		t.Fatalf("Ford received %+v", cmds)
	}
	cs, _ := cmds[0].Properties["chargeSettings"].(map[string]any)
	if cs["globalTargetSoc"] != float64(80) {
		t.Fatalf("charge settings sent: %v", cmds[0].Properties)
	}
}

// chargeSetting is one of the charge settings a command sets alone
// inside Ford's updateChargeSettings (as ha-fordpass set_charge_settings
// sends each), tried by trySetting.
type chargeSetting struct {
	command, reported string  // the command, and the value the simulator's EV reports
	min, max, step    float64 // the Home Assistant number's
	unit              string
	bad               []string // values refused, each naming allowed
	allowed, pickup   string   // in each refusal's error; in the pickup's
	good, fordKey     string   // a value Ford gets, and its key in chargeSettings
}

// TestChargeSettingsAlone: the simulator's EV reports its AC current
// limit (48 A, customMetrics …:custom:global-ac-current-limit) and its DC
// power limit (100, …:custom:global-dc-power-limit) as ha-fordpass reads
// them; Home Assistant gets a number for each, in ha-fordpass's range,
// that sends the command; a good value reaches Ford alone inside the
// charge settings and the car's new value comes back; values outside the
// range, fractions, huge numbers, strings or none are refused without a
// Ford call, and so is the pickup, which reports neither.
func TestChargeSettingsAlone(t *testing.T) {
	t.Parallel()
	for _, c := range []chargeSetting{
		{command: "charge_current_limit", reported: "48", min: 5, max: 48, step: 1, unit: "A",
			bad: []string{"100", "4.5", "1e300", "-1e300", `"32"`}, allowed: "5 to 48", pickup: "electric car", good: "32", fordKey: "globalCurrentLimit"},
		// ha-fordpass's select offers 50, 60, 70, 80, 85, 90, 95 and 100.
		{command: "charge_dc_power_limit", reported: "100", min: 50, max: 100, step: 10,
			bad: []string{"55", "160", "110", `"80"`}, allowed: "85, 90, 95 or 100", pickup: "DC power limit", good: "85", fordKey: "globalDCPowerLimit"},
	} {
		t.Run(c.command, func(t *testing.T) {
			t.Parallel()
			trySetting(t, c)
		})
	}
}

func trySetting(t *testing.T, c chargeSetting) {
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2}, allowed: []string{"lock", "unlock", c.command}})
	e.w.WaitValue(e.topic(ev, c.command), c.reported, 10*time.Second)
	cfg := e.w.WaitFor(e.deviceConfig(ev), 10*time.Second, func(s string) bool { return strings.Contains(s, `"`+c.command+`":{"platform":"number"`) })
	n := cmps(t, cfg)[c.command]
	if n["min"] != c.min || n["max"] != c.max || n["step"] != c.step || c.unit != "" && n["unit_of_measurement"] != c.unit ||
		!strings.Contains(n["command_template"].(string), `"command":"`+c.command+`"`) {
		t.Fatalf("the number in Home Assistant: %v", n)
	}
	if truck := e.w.WaitFor(e.deviceConfig(vin1), 10*time.Second, func(s string) bool { return strings.Contains(s, "odometer") }); strings.Contains(truck, `"`+c.command+`"`) {
		t.Errorf("the pickup offers %s", c.command)
	}
	e.waitStream(ev)
	for i, v := range append(c.bad, "") {
		id, body := fmt.Sprintf("bad%d", i), `"value":`+v
		if v == "" {
			body = `"amount":32` // no value, and a key it does not take
		}
		e.w.Publish(e.topic(ev, "command"), `{"command":"`+c.command+`",`+body+`,"id":"`+id+`"}`, false)
		if r := e.result(ev, id, "rejected", 5*time.Second); !strings.Contains(r.Error, c.allowed) && !strings.Contains(r.Error, "takes value") {
			t.Fatalf("%s: %+v", body, r)
		}
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"`+c.command+`","value":`+c.good+`,"id":"truck"}`, false)
	if r := e.result(vin1, "truck", "rejected", 5*time.Second); !strings.Contains(r.Error, c.pickup) {
		t.Fatalf("the pickup: %+v", r)
	}
	if n := len(e.sim.Stats().Commands); n != 0 {
		t.Fatalf("%d commands reached Ford", n)
	}
	e.w.Publish(e.topic(ev, "command"), `{"command":"`+c.command+`","value":`+c.good+`,"id":"ok"}`, false)
	e.result(ev, "ok", "success", 10*time.Second)
	e.w.WaitValue(e.topic(ev, c.command), c.good, 5*time.Second)
	cmds := e.sim.Stats().Commands
	if len(cmds) != 1 || cmds[0].Type != "updateChargeSettings" {
		t.Fatalf("Ford received %+v", cmds)
	}
	want, _ := strconv.ParseFloat(c.good, 64)
	if cs, _ := cmds[0].Properties["chargeSettings"].(map[string]any); len(cs) != 1 || cs[c.fordKey] != want {
		t.Fatalf("charge settings sent: %v", cmds[0].Properties)
	}
}

// TestDepartureTimes: departure_times with enabled false reaches Ford as
// its disableDepartureTimes command (the newer path, version 1, the bare
// type, as ha-fordpass sends it) and true as enableDepartureTimes, each
// followed to its outcome; Home Assistant has a button for each. Without
// enabled, or on the pickup (Ford lists no departure times for it), the
// command is refused without a Ford call.
func TestDepartureTimes(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2},
		allowed: []string{"lock", "unlock", "departure_times"}})
	cfg := cmps(t, e.w.WaitFor(e.deviceConfig(ev), 10*time.Second, func(s string) bool { return strings.Contains(s, "departure_times_off_button") }))
	if b := cfg["departure_times_off_button"]; b["payload_press"] != `{"command":"departure_times","enabled":false}` {
		t.Fatalf("the off button: %v", b)
	}
	if truck := e.w.WaitFor(e.deviceConfig(vin1), 10*time.Second, func(s string) bool { return strings.Contains(s, "odometer") }); strings.Contains(truck, "departure_times") {
		t.Error("the pickup offers departure times")
	}
	e.waitStream(ev)
	e.w.Publish(e.topic(ev, "command"), `{"command":"departure_times","id":"d0"}`, false)
	if r := e.result(ev, "d0", "rejected", 5*time.Second); !strings.Contains(r.Error, "needs enabled") {
		t.Fatalf("without enabled: %+v", r)
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"departure_times","enabled":false,"id":"truck"}`, false)
	if r := e.result(vin1, "truck", "rejected", 5*time.Second); !strings.Contains(r.Error, "no departure times") {
		t.Fatalf("on the pickup: %+v", r)
	}
	if n := len(e.sim.Stats().Commands); n != 0 {
		t.Fatalf("%d commands reached Ford", n)
	}
	// The car shows whether they are on (its departure schedules setting).
	e.w.WaitValue(e.topic(ev, "departure_times"), "on", 5*time.Second)
	e.w.Publish(e.topic(ev, "command"), `{"command":"departure_times","enabled":false,"id":"off"}`, false)
	e.result(ev, "off", "success", 10*time.Second)
	e.w.WaitValue(e.topic(ev, "departure_times"), "off", 5*time.Second)
	e.w.Publish(e.topic(ev, "command"), `{"command":"departure_times","enabled":true,"id":"on"}`, false)
	e.result(ev, "on", "success", 10*time.Second)
	e.w.WaitValue(e.topic(ev, "departure_times"), "on", 5*time.Second)
	if c := cmps(t, e.w.WaitFor(e.deviceConfig(ev), time.Second, func(string) bool { return true }))["departure_times"]; c == nil || c["platform"] != "binary_sensor" {
		t.Fatalf("the departure times' entity: %v", c)
	}
	cmds := e.sim.Stats().Commands
	if len(cmds) != 2 || cmds[0].Type != "disableDepartureTimes" || cmds[1].Type != "enableDepartureTimes" {
		t.Fatalf("Ford received %+v", cmds)
	}
}

// TestEVFieldsFollowACharge: on the simulator's EV the fields an energy
// manager reads follow a charge from plug-in to unplug — plugged and
// charging as true/false, the IEC status A/B/C, the finish time in RFC 3339
// while it charges — Ford's CHARGINGAC is a connected plug, and the state
// JSON carries the car's availability, offline once the bridge stops.
func TestEVFieldsFollowACharge(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2}})
	want := func(step string, fields map[string]string) {
		t.Helper()
		for f, v := range fields {
			e.w.WaitFor(e.topic(ev, f), 10*time.Second, func(s string) bool { return s == v })
		}
	}
	want("unplugged", map[string]string{"plugged": "false", "charging": "false", "iec_status": "A", "charge_plug": "disconnected"})
	e.w.WaitFor(e.topic(ev, "state"), 5*time.Second, func(s string) bool { return strings.Contains(s, `"availability":"online"`) })
	e.waitStream(ev)
	e.patch(ev, `{"metrics":{"xevPlugChargerStatus":{"value":"CONNECTED"}}}`)
	want("plugged in", map[string]string{"plugged": "true", "charging": "false", "iec_status": "B"})
	at := time.Now().UTC().Truncate(time.Second)
	e.patch(ev, `{"metrics":{"xevPlugChargerStatus":{"value":"CHARGINGAC"},"xevBatteryChargeDisplayStatus":{"value":"IN_PROGRESS"},`+
		`"xevBatteryTimeToFullCharge":{"value":90,"updateTime":"`+at.Format(time.RFC3339)+`"}}}`)
	want("charging", map[string]string{"plugged": "true", "charging": "true", "iec_status": "C", "charge_plug": "connected",
		"charge_finish_at": at.Add(90 * time.Minute).Format(time.RFC3339)})
	e.patch(ev, `{"metrics":{"xevPlugChargerStatus":{"value":"DISCONNECTED"},"xevBatteryChargeDisplayStatus":{"value":"STOPPED"}}}`)
	want("unplugged", map[string]string{"plugged": "false", "charging": "false", "iec_status": "A"})
	e.w.WaitFor(e.topic(ev, "charge_finish_at"), 5*time.Second, func(s string) bool { return s == "" })
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	e.w.WaitFor(e.topic(ev, "state"), 5*time.Second, func(s string) bool { return strings.Contains(s, `"availability":"offline"`) })
}

// TestDepartureSchedule: the EV's departure schedules are its
// departure_times entity's attributes (P/VIN/departure_schedule, from the
// car's xevDepartureSchedulesSetting); departure_schedule sends Ford's
// updateDepartureTimes (the newer path, version 1, the bare type) with the
// schedules as given and isDepartureTimeEnabled, and the car's new
// schedule comes back as the attributes. Bad schedules of every kind are
// refused, each naming what is wrong, without a Ford call, and so is the
// pickup.
func TestDepartureSchedule(t *testing.T) {
	t.Parallel()
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2},
		allowed: []string{"lock", "departure_schedule"}})
	e.w.WaitFor(e.topic(ev, "departure_schedule"), 10*time.Second, func(s string) bool {
		return strings.Contains(s, `"day":"MONDAY","time":"07:30"`) && strings.Contains(s, `"status":"on"`)
	})
	cfg := cmps(t, e.w.WaitFor(e.deviceConfig(ev), 10*time.Second, func(s string) bool { return strings.Contains(s, `"departure_times"`) }))
	if c := cfg["departure_times"]; c["json_attributes_topic"] != e.topic(ev, "departure_schedule") {
		t.Fatalf("the departure times' entity: %v", c)
	}
	e.waitStream(ev)
	good := `[{"dayOfWeek":"FRIDAY","schedules":[{"locationId":1,"scheduleId":2,"scheduleStatus":"ON","preconditionTemperature":"HIGH","timeOfDay":{"hours":6,"minutes":5}}]}]`
	for id, bad := range map[string]string{
		"none":    `{"command":"departure_schedule","id":"none"}`,
		"notlist": `{"command":"departure_schedule","schedules":{"a":1},"id":"notlist"}`,
		"day":     `{"command":"departure_schedule","schedules":[{"dayOfWeek":"FUNDAY","schedules":[]}],"id":"day"}`,
		"twice":   `{"command":"departure_schedule","schedules":[` + good[1:len(good)-1] + `,` + good[1:len(good)-1] + `],"id":"twice"}`,
		"hour":    `{"command":"departure_schedule","schedules":` + strings.Replace(good, `"hours":6`, `"hours":24`, 1) + `,"id":"hour"}`,
		"temp":    `{"command":"departure_schedule","schedules":` + strings.Replace(good, `HIGH`, `WARM`, 1) + `,"id":"temp"}`,
		"status":  `{"command":"departure_schedule","schedules":` + strings.Replace(good, `"ON"`, `"on"`, 1) + `,"id":"status"}`,
		"extra":   `{"command":"departure_schedule","schedules":` + strings.Replace(good, `"scheduleId":2`, `"scheduleId":2,"x":1`, 1) + `,"id":"extra"}`,
		"noloc":   `{"command":"departure_schedule","schedules":` + strings.Replace(good, `"locationId":1,`, ``, 1) + `,"id":"noloc"}`,
	} {
		e.w.Publish(e.topic(ev, "command"), bad, false)
		if r := e.result(ev, id, "rejected", 5*time.Second); r.Error == "" {
			t.Fatalf("%s: %+v", id, r)
		}
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"departure_schedule","schedules":`+good+`,"id":"truck"}`, false)
	e.result(vin1, "truck", "rejected", 5*time.Second)
	if n := len(e.sim.Stats().Commands); n != 0 {
		t.Fatalf("%d commands reached Ford", n)
	}
	e.w.Publish(e.topic(ev, "command"), `{"command":"departure_schedule","schedules":`+good+`,"id":"ok"}`, false)
	e.result(ev, "ok", "success", 10*time.Second)
	cmds := e.sim.Stats().Commands
	if len(cmds) != 1 || cmds[0].Type != "updateDepartureTimes" || cmds[0].Properties["isDepartureTimeEnabled"] != true {
		t.Fatalf("Ford received %+v", cmds)
	}
	sent, _ := json.Marshal(cmds[0].Properties["departureSchedules"])
	var want any
	_ = json.Unmarshal([]byte(good), &want)
	if wantJSON, _ := json.Marshal(want); string(sent) != string(wantJSON) {
		t.Fatalf("schedules sent %s, want %s", sent, wantJSON)
	}
	e.w.WaitFor(e.topic(ev, "departure_schedule"), 5*time.Second, func(s string) bool { return strings.Contains(s, `"day":"FRIDAY","time":"06:05"`) })
}
