package bridge_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/discovery"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// sharedCapture reads a real Ford capture from ../shared/fixtures/fordpass,
// or skips the test where that folder is absent (CI has it).
func sharedCapture(t *testing.T, name string) map[string]any {
	t.Helper()
	for _, dir := range []string{"../../shared/fixtures/fordpass", "../shared/fixtures/fordpass"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return doc
	}
	t.Skip("../shared/fixtures/fordpass is not beside this checkout (CI has it): the end-to-end test on real captures is skipped")
	return nil
}

// TestRealRecordReachesMQTT merges real captures into simulated cars (a
// Puma Gen-E's whole record into the BEV, an F-150's door and engine
// figures into the truck) and checks every figure on MQTT, in the
// documented units, with a fitting Home Assistant config.
func TestRealRecordReachesMQTT(t *testing.T) {
	t.Parallel()
	puma := sharedCapture(t, "telemetry_puma-gen-e_fordconnect-query_2026-03-11.json")
	doors := sharedCapture(t, "derived/hf271_doorStatus_2026-09-10.json")
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2}})
	bev, truck := fordsim.VIN(2), fordsim.VIN(1)
	e.w.WaitFor(e.topic(bev, "state"), 10*time.Second, func(string) bool { return true })
	e.waitStream(bev)
	e.waitStream(truck)
	patch := func(vin string, doc map[string]any) {
		data, _ := json.Marshal(map[string]any{"metrics": doc["metrics"]})
		e.patch(vin, string(data))
	}
	patch(bev, puma)
	patch(truck, doors)
	want := map[string]map[string]string{
		bev: {"battery_energy_remaining": "25.1", "battery_capacity": "48.65", "battery_temperature": "6",
			"charging_power": "0", "battery_hv_voltage": "340.5", "battery_hv_current": "0.08", "heading": "99.1",
			"outside_temperature": "7", "battery_soc": "67.5", "ev_range": "162", "odometer": "4804", "lock": "unlocked"},
		truck: {"engine_coolant_temperature": "41", "engine_speed": "0", "door_tailgate": "closed", "door_inner_tailgate": "closed"},
	}
	for vin, fields := range want {
		for field, v := range fields {
			e.w.WaitValue(e.topic(vin, field), v, 10*time.Second)
		}
	}
	// Home Assistant gets an entity for each, with its class and unit.
	units := map[string][2]string{
		"battery_energy_remaining": {"energy_storage", "kWh"}, "battery_capacity": {"energy_storage", "kWh"},
		"battery_temperature": {"temperature", "°C"}, "charging_power": {"power", "W"},
		"battery_hv_voltage": {"voltage", "V"}, "battery_hv_current": {"current", "A"}, "heading": {"", "°"},
		"outside_temperature": {"temperature", "°C"},
	}
	cfg := e.w.WaitFor(discovery.VehicleTopic(discovery.Settings{DiscoveryPrefix: e.cfg.HADiscoveryPrefix, TopicPrefix: e.p}, bev), 10*time.Second, func(s string) bool {
		var p discovery.Payload
		return json.Unmarshal([]byte(s), &p) == nil && p.Components["battery_hv_current"].StateTopic != ""
	})
	var p discovery.Payload
	_ = json.Unmarshal([]byte(cfg), &p)
	for key, du := range units {
		c, ok := p.Components[key]
		if !ok || c.DeviceClass != du[0] || c.Unit != du[1] || c.StateTopic != e.topic(bev, key) {
			t.Errorf("%s: config %+v, want device class %q and unit %q", key, c, du[0], du[1])
		}
	}
}

// TestRefreshBringsMetricsInsideItsSuccessState: after a refresh, Ford
// sends the fresh figures inside the command's success state, not as a
// metrics delta; they must reach MQTT all the same, over the websocket and
// over REST. The values are those of the August 2026 capture (a fuel level
// of 103.91 % shows as 100).
func TestRefreshBringsMetricsInsideItsSuccessState(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{true, false} {
		e := newEnv(t, envOptions{signedIn: true, stream: stream, sim: fordsim.Options{CommandDelay: 100 * time.Millisecond}})
		e.w.WaitValue(e.topic(vin1, "fuel_level"), "63.2", 10*time.Second)
		if stream {
			e.waitStream(vin1)
		}
		req := `{"metrics":{"fuelLevel":{"oemCorrelationId":"2942","value":103.913376},"outsideTemperature":{"oemCorrelationId":"2942","value":23.75}}}`
		resp, err := httpPatch(e.simURL+"/_sim/vehicles/"+vin1+"?at=refresh", req)
		if err != nil || resp != 204 {
			t.Fatalf("pending patch: %d %v", resp, err)
		}
		e.w.Publish(e.topic(vin1, "command"), `{"command":"refresh","id":"rf"}`, false)
		e.result(vin1, "rf", "success", 15*time.Second)
		e.w.WaitValue(e.topic(vin1, "fuel_level"), "100", 10*time.Second)
		e.w.WaitValue(e.topic(vin1, "outside_temperature"), "23.8", 10*time.Second)
	}
}

func httpPatch(url, body string) (int, error) {
	req, err := http.NewRequest(http.MethodPatch, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := bridgetest.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
