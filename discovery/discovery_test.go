package discovery

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var settings = Settings{DiscoveryPrefix: "homeassistant", TopicPrefix: "fordpass", Version: "1.2.3", PublicURL: "http://nas.local:8080/"}

var petrolFields = []string{"alarm", "battery_12v_soc", "battery_12v_voltage", "door_driver", "door_hood", "door_passenger",
	"door_rear_left", "door_rear_right", "door_tailgate", "fuel_level", "fuel_range", "gear", "ignition", "lock", "odometer",
	"outside_temperature", "remote_start", "remote_start_remaining", "speed", "tire_pressure_front_left",
	"engine_coolant_temperature", "engine_speed", "oil_life", "indicator_malfunction_indicator", "indicator_lane_keeping_aid",
	"tire_pressure_front_right", "tire_pressure_rear_left", "tire_pressure_rear_right", "window_driver", "window_passenger"}

// The buttons as the bridge's command table makes them.
var (
	startButton   = Button{Key: "remote_start_button", Name: "Remote start", Press: "start", Icon: "mdi:car-key"}
	stopButton    = Button{Key: "remote_stop_button", Name: "Stop remote start", Press: "stop", Icon: "mdi:car-off"}
	refreshButton = Button{Key: "refresh_button", Name: "Refresh from car", Press: "refresh", Icon: "mdi:refresh"}
	hornButton    = Button{Key: "horn_button", Name: "Horn and lights", Press: "horn", Icon: "mdi:bullhorn", DeviceClass: "identify"}
)

var vehicles = map[string]VehicleInfo{
	"petrol": {VIN: "1FTEW1EP000000001", Name: "Truck", Model: "F-150", Year: "2023", Fields: petrolFields,
		HasLocation: true, HasUpdatedAt: true, Lock: true, LockPress: [2]string{"lock", "unlock"}, Buttons: []Button{startButton, stopButton, refreshButton, hornButton}},
	"ev": {VIN: "3FMTK3SU000000002", Name: "Mach-E", Model: "Mustang Mach-E", Year: "2024", EV: true,
		Fields: []string{"battery_soc", "charge_plug", "charging_status", "ev_range", "lock", "odometer", "time_to_full_charge",
			"door_driver", "window_driver", "ignition", "remote_start", "battery_energy_remaining", "battery_capacity",
			"battery_temperature", "charging_power", "battery_hv_voltage", "battery_hv_current", "heading", "outside_temperature", "charge_target"},
		HasLocation: true, HasUpdatedAt: true, Lock: true, LockPress: [2]string{"lock", "unlock"}, Buttons: []Button{startButton, stopButton, refreshButton},
		Settable: map[string]string{"charge_target": "charge_target"}},
	"few": {VIN: "WF0XXXGCDX0000003", Model: "Focus", Year: "2019", Fields: []string{"odometer", "lock", "fuel_level"}},
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("%s is not JSON: %v", name, err)
	}
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./discovery -update)", err)
	}
	if !bytes.Equal(want, pretty.Bytes()) {
		t.Errorf("%s differs from %s (run go test ./discovery -update and review the diff)", name, path)
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	topic, payload := Bridge(settings)
	if topic != "homeassistant/device/fordpass_bridge/config" {
		t.Errorf("bridge topic %s", topic)
	}
	golden(t, "bridge", payload)
	for name, v := range vehicles {
		topic, payload := Vehicle(settings, v)
		if topic != "homeassistant/device/fordpass_"+v.VIN+"/config" {
			t.Errorf("vehicle topic %s", topic)
		}
		golden(t, "vehicle_"+name, payload)
	}
}

// units valid for each device class in Home Assistant (the ones we use).
var units = map[string][]string{
	"distance": {"km"}, "battery": {"%"}, "voltage": {"V"}, "temperature": {"°C"}, "pressure": {"kPa"},
	"speed": {"km/h"}, "duration": {"min", "s"}, "timestamp": {""}, "enum": {""},
	"energy_storage": {"kWh"}, "power": {"W"}, "current": {"A"},
}

func TestPayloadsCarryWhatHomeAssistantRequires(t *testing.T) {
	t.Parallel()
	payloads := map[string][]byte{}
	// The bridge device with two accounts: its own components and each
	// account's.
	accounts := settings
	accounts.Accounts = []string{"home", "Work_2"}
	_, payloads["bridge"] = Bridge(accounts)
	for name, v := range vehicles {
		_, payloads[name] = Vehicle(settings, v)
	}
	ids := map[string]string{}
	for name, raw := range payloads {
		if strings.Contains(string(raw), "object_id") {
			t.Errorf("%s uses the deprecated object_id", name)
		}
		var p map[string]any
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dev, _ := p["device"].(map[string]any)
		if len(dev["identifiers"].([]any)) == 0 || dev["name"] == "" || dev["manufacturer"] == "" {
			t.Errorf("%s: device %v", name, dev)
		}
		if name != "bridge" && (dev["serial_number"] == nil || dev["via_device"] == nil) {
			t.Errorf("%s: vehicle device needs serial_number and via_device", name)
		}
		origin, _ := p["origin"].(map[string]any)
		if origin["name"] != "fordpass2mqtt" || origin["sw_version"] != "1.2.3" || origin["support_url"] == nil {
			t.Errorf("%s: origin %v", name, origin)
		}
		cmps, _ := p["cmps"].(map[string]any)
		if len(cmps) == 0 {
			t.Fatalf("%s: no components", name)
		}
		for key, raw := range cmps {
			c := raw.(map[string]any)
			str := func(k string) string { s, _ := c[k].(string); return s }
			platform := str("platform")
			where := name + "/" + key
			if str("unique_id") == "" || !strings.HasPrefix(str("default_entity_id"), platform+".") || str("name") == "" {
				t.Errorf("%s: unique_id/default_entity_id/name: %v", where, c)
			}
			if prev, dup := ids[str("unique_id")]; dup {
				t.Errorf("%s: unique_id also used by %s", where, prev)
			}
			ids[str("unique_id")] = where
			// Every entity needs the bridge online; a car's also needs a
			// channel to Ford for that car (both: availability_mode all).
			av, _ := c["availability"].([]any)
			switch {
			case len(av) == 0 || av[0].(map[string]any)["topic"] != "fordpass/bridge/availability":
				t.Errorf("%s: availability %v", where, c["availability"])
			case name != "bridge" && (len(av) != 2 || !strings.HasSuffix(av[1].(map[string]any)["topic"].(string), "/availability") ||
				!strings.Contains(av[1].(map[string]any)["topic"].(string), dev["serial_number"].(string)) || c["availability_mode"] != "all"):
				t.Errorf("%s: a car's entity must also follow the car's availability: %v %v", where, c["availability"], c["availability_mode"])
			case name == "bridge" && len(av) != 1:
				t.Errorf("%s: availability %v", where, c["availability"])
			}
			switch platform {
			case "sensor", "binary_sensor":
				if str("state_topic") == "" {
					t.Errorf("%s: no state_topic", where)
				}
			case "lock":
				if str("state_topic") == "" || str("command_topic") == "" || str("payload_lock") != "lock" || str("state_jammed") != "jammed" {
					t.Errorf("%s: lock keys %v", where, c)
				}
			case "number":
				if !strings.HasSuffix(str("command_topic"), "/command") || !strings.Contains(str("command_template"), `"command":`) || c["min"] == nil || c["max"] == nil {
					t.Errorf("%s: number keys %v", where, c)
				}
			case "button":
				if !strings.HasSuffix(str("command_topic"), "/command") || str("payload_press") == "" {
					t.Errorf("%s: button keys %v", where, c)
				}
			case "device_tracker":
				if str("json_attributes_topic") == "" || str("source_type") != "gps" {
					t.Errorf("%s: tracker keys %v", where, c)
				}
			default:
				t.Errorf("%s: unexpected platform %q", where, platform)
			}
			if dc := str("device_class"); platform == "sensor" && dc != "" {
				allowed, known := units[dc]
				if !known || !slices.Contains(allowed, str("unit_of_measurement")) {
					t.Errorf("%s: unit %q is not valid for device class %q", where, str("unit_of_measurement"), dc)
				}
			}
			if sc := str("state_class"); sc == "total_increasing" && key != "odometer" {
				t.Errorf("%s: total_increasing on %s", where, key)
			}
			// Home Assistant's rules: an angle in degrees is
			// measurement_angle (sensor/const.py); entity names in
			// sentence case; "unavailable" and "unknown" are states it
			// reserves, so no enum offers them.
			if str("unit_of_measurement") == "°" && str("state_class") != "measurement_angle" {
				t.Errorf("%s: an angle in degrees needs the state class measurement_angle", where)
			}
			for i, w := range strings.Fields(str("name")) {
				if i > 0 && w != strings.ToLower(w) && w != "V" {
					t.Errorf("%s: name %q is not in sentence case", where, str("name"))
				}
			}
			if opts, _ := c["options"].([]any); slices.Contains(opts, any("unavailable")) || slices.Contains(opts, any("unknown")) {
				t.Errorf("%s: options %v hold a state Home Assistant reserves", where, opts)
			}
		}
	}
}

// TestDemoAndOtherPrefixesHaveTheirOwnDevices: the demo's devices and a
// second bridge's never overwrite the default bridge's configs.
func TestDemoAndOtherPrefixesHaveTheirOwnDevices(t *testing.T) {
	t.Parallel()
	demo := settings
	demo.TopicPrefix, demo.Demo = "fordpass_demo", true
	other := settings
	other.TopicPrefix = "garage2"
	topics := map[string]string{}
	for name, s := range map[string]Settings{"default": settings, "demo": demo, "other": other} {
		bt, bp := Bridge(s)
		vt, vp := Vehicle(s, vehicles["few"])
		mine := []string{bt, vt}
		if name == "other" {
			mine = mine[:1] // a car is the same device whichever bridge shows it
		}
		for _, topic := range mine {
			if prev, dup := topics[topic]; dup {
				t.Errorf("%s and %s both publish %s", prev, name, topic)
			}
			topics[topic] = name
		}
		var b, v Payload
		_ = json.Unmarshal(bp, &b)
		_ = json.Unmarshal(vp, &v)
		if s.Demo != strings.HasSuffix(b.Device.Name, " (demo)") || s.Demo != strings.HasSuffix(v.Device.Name, " (demo)") {
			t.Errorf("%s: device names %q, %q", name, b.Device.Name, v.Device.Name)
		}
		if s.Demo && (!strings.HasPrefix(v.Components["odometer"].UniqueID, "fordpass_demo_") ||
			!strings.Contains(v.Components["odometer"].DefaultEntityID, "ford_demo_")) {
			t.Errorf("demo entity ids: %+v", v.Components["odometer"])
		}
	}
	if bt, _ := Bridge(settings); bt != "homeassistant/device/fordpass_bridge/config" {
		t.Errorf("the default bridge's node id changed: %s", bt)
	}
}

func TestOnlyWhatTheCarHas(t *testing.T) {
	t.Parallel()
	_, petrol := Vehicle(settings, vehicles["petrol"])
	_, ev := Vehicle(settings, vehicles["ev"])
	_, few := Vehicle(settings, vehicles["few"])
	if strings.Contains(string(petrol), "battery_soc") || strings.Contains(string(petrol), "ev_range") {
		t.Error("EV entities on a petrol car")
	}
	if strings.Contains(string(ev), "horn_button") {
		t.Error("horn button on a car without the capability")
	}
	var p Payload
	_ = json.Unmarshal(few, &p)
	if _, ok := p.Components["remote_start_button"]; ok {
		t.Error("remote start on a car without it")
	}
	if c := p.Components["lock"]; c.Platform != "sensor" {
		t.Errorf("a lock that cannot be commanded must be a sensor, got %q", c.Platform)
	}
	if p.Device.Name != "WF0XXXGCDX0000003" && p.Device.Name == "" {
		t.Error("device without a name")
	}
}

func BenchmarkVehicle(b *testing.B) {
	v := vehicles["petrol"]
	b.ReportAllocs()
	for b.Loop() {
		Vehicle(settings, v)
	}
}

// TestPrefixNamesTheCarsDevices: the default prefix keeps the device and
// unique ids it always had; another prefix carries it, and neither
// installation takes the other's device config for its own.
func TestPrefixNamesTheCarsDevices(t *testing.T) {
	const vin = "1FTEW1EP000000001"
	def := Settings{DiscoveryPrefix: "homeassistant", TopicPrefix: "fordpass"}
	other := Settings{DiscoveryPrefix: "homeassistant", TopicPrefix: "fp_fc"}
	if got := VehicleTopic(def, vin); got != "homeassistant/device/fordpass_"+vin+"/config" {
		t.Fatalf("default: %s", got)
	}
	if got := VehicleTopic(other, vin); got != "homeassistant/device/fordpass_fp_fc_"+vin+"/config" {
		t.Fatalf("fp_fc: %s", got)
	}
	if _, ok := OwnsConfig(def, VehicleTopic(other, vin)); ok {
		t.Fatal("the default installation owns fp_fc's device")
	}
	if _, ok := OwnsConfig(other, VehicleTopic(def, vin)); ok {
		t.Fatal("fp_fc owns the default installation's device")
	}
	if v, ok := OwnsConfig(other, VehicleTopic(other, vin)); !ok || v != vin {
		t.Fatal("fp_fc does not own its own device")
	}
}
