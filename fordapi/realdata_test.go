package fordapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// Tests on real Ford answers. The captures live in ../shared/fixtures/fordpass
// (with their sources in SOURCES.md) and are never copied into this
// repository; where that folder is absent the tests on it are skipped, and
// the project's own records in testdata/, written from the same facts,
// always run.

// realFixtures finds the shared captures beside the repository.
func realFixtures(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{"../../shared/fixtures/fordpass", "../shared/fixtures/fordpass"} {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir
		}
	}
	t.Skip("../shared/fixtures/fordpass is not beside this checkout (CI has it): the tests on real Ford captures are skipped")
	return ""
}

// want is what a record must publish: each field's MQTT payload.
type want struct {
	fields   map[string]string
	location *fordapi.Location
	absent   []string          // fields that must not appear
	commands map[string]string // command type → toState
}

// realCaptures is every capture file, with what the bridge must publish from
// it. Arrays of doorLockStatus entries are wrapped as {"metrics":{…}}.
var realCaptures = map[string]want{
	"telemetry_puma-gen-e_fordconnect-query_2026-03-11.json": {
		fields: map[string]string{
			"odometer": "4804", "speed": "0", "heading": "99.1", "battery_soc": "67.5", "battery_actual_soc": "57.9", "ev_range": "162",
			"battery_capacity": "48.65", "battery_energy_remaining": "25.1", "battery_temperature": "6",
			"battery_hv_voltage": "340.5", "battery_hv_current": "0.08", "outside_temperature": "7",
			"charge_plug": "disconnected", "charging_status": "not_ready", "charging_power": "0", "ignition": "off",
			"lock": "unlocked", "tire_pressure_front_left": "253", "tire_pressure_front_right": "255",
			"tire_pressure_rear_left": "250", "tire_pressure_rear_right": "248",
		},
		location: &fordapi.Location{Latitude: 47.81, Longitude: 16.22},
		absent:   []string{"fuel_level", "engine_speed"},
	},
	"derived/hf251_success_metrics_2026-08-24.json": {
		fields: map[string]string{"fuel_level": "100", "outside_temperature": "23.8"},
	},
	"derived/hf271_doorStatus_2026-09-10.json": {
		fields: map[string]string{"door_driver": "closed", "door_passenger": "closed", "door_rear_left": "closed",
			"door_rear_right": "closed", "door_tailgate": "closed", "door_inner_tailgate": "closed",
			"engine_coolant_temperature": "41", "engine_speed": "0"},
	},
	"derived/hf271_states_2026-09-10.json": {
		commands: map[string]string{"updateDepartureTimes": "COMMAND_SUCCEEDED_ON_DEVICE", "deviceWakeup": "REQUEST_DELIVERY_IN_PROGRESS",
			"deviceDiagnostic": "success"},
	},
	"derived/it333_head_2023-10-12.json": {
		fields: map[string]string{"alarm": "disarmed", "battery_12v_soc": "92", "battery_12v_voltage": "12.5"},
	},
	"derived/it333_tail_2023-10-12.json": {
		fields: map[string]string{"outside_temperature": "19.8"},
	},
	"derived/it410_doorStatus_2023-10-27.json": {
		fields: map[string]string{"door_driver": "open", "door_passenger": "closed", "door_inner_tailgate": "closed"},
	},
	"derived/it544_doorLockStatus_2025-04-03.json": {fields: map[string]string{"lock": "locked"}},
	"doorLockStatus_4door-generic_2025-06-30.json": {fields: map[string]string{"lock": "locked"}},
	"doorLockStatus_mach-e_2025-06-09.json":        {fields: map[string]string{"lock": "locked"}},
	"doorLockStatus_f150_2025-06-13.json":          {fields: map[string]string{"lock": "locked"}},
	// Error bodies: TestRealErrorBodies.
	"error_cat-refresh_400_errorCode-460_2025-06-09.json":      {},
	"error_command_404_lock-version-not-found_2026-09-05.json": {},
}

func parseCapture(t *testing.T, path string) *fordapi.Telemetry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if trimmed := strings.TrimSpace(string(data)); strings.HasPrefix(trimmed, "[") {
		data = []byte(`{"metrics":{"doorLockStatus":` + trimmed + `}}`)
	}
	_, tel, err := fordapi.ParseTelemetry(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tel
}

func checkWant(t *testing.T, name string, tel *fordapi.Telemetry, w want) {
	t.Helper()
	for field, v := range w.fields {
		got, ok := tel.Field(field)
		if !ok {
			t.Errorf("%s: %s missing (got %v)", name, field, tel.Fields)
			continue
		}
		if got.String() != v {
			t.Errorf("%s: %s = %s, want %s", name, field, got, v)
		}
	}
	for _, field := range w.absent {
		if v, ok := tel.Field(field); ok {
			t.Errorf("%s: %s = %s, but the car did not report it", name, field, v)
		}
	}
	if w.location != nil && (tel.Location == nil || *tel.Location != *w.location) {
		t.Errorf("%s: location %+v, want %+v", name, tel.Location, w.location)
	}
	for typ, to := range w.commands {
		if cs, _ := tel.Command(typ); cs.ToState != to {
			t.Errorf("%s: command %s is %q, want %q", name, typ, cs.ToState, to)
		}
	}
	if len(tel.Skipped) > 0 {
		t.Errorf("%s: metrics skipped as malformed: %v", name, tel.Skipped)
	}
	if len(tel.Unknown) > 0 {
		t.Errorf("%s: metrics unknown to the parser: %v", name, tel.Unknown)
	}
}

// TestRealCaptures runs every capture through the parser and checks, field
// by field, what reaches MQTT. A capture added to the folder without an
// entry here fails the test, so none is silently ignored.
func TestRealCaptures(t *testing.T) {
	t.Parallel()
	dir := realFixtures(t)
	var files []string
	for _, pattern := range []string{"*.json", "derived/*.json"} {
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range m {
			rel, _ := filepath.Rel(dir, f)
			files = append(files, filepath.ToSlash(rel))
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("no captures in %s", dir)
	}
	for _, name := range files {
		w, ok := realCaptures[name]
		if !ok {
			t.Errorf("%s has no expectations in realCaptures: add what it must publish", name)
			continue
		}
		if strings.HasPrefix(name, "error_") {
			continue
		}
		checkWant(t, name, parseCapture(t, filepath.Join(dir, name)), w)
	}
}

// TestRealErrorBodies: Ford's dead-token answer asks for a sign-in; the
// 404 for an unknown command version is a plain failure with Ford's words.
func TestRealErrorBodies(t *testing.T) {
	t.Parallel()
	dir := realFixtures(t)
	dead, _ := os.ReadFile(filepath.Join(dir, "error_cat-refresh_400_errorCode-460_2025-06-09.json"))
	notFound, _ := os.ReadFile(filepath.Join(dir, "error_command_404_lock-version-not-found_2026-09-05.json"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/cat-with-refresh-token"):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(dead)
		case strings.HasSuffix(r.URL.Path, "/oidc/token"):
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "auto-1", "expires_in": 300})
		case strings.HasSuffix(r.URL.Path, "/commands"):
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write(notFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	newClient := func(access time.Duration) *fordapi.Client {
		stateDir := t.TempDir()
		region, _ := fordapi.LookupRegion("usa")
		tok := testToken(time.Now().Add(access))
		if err := fordapi.NewTokenStore(stateDir, region.Key).Save(tok, time.Now()); err != nil {
			t.Fatal(err)
		}
		c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: srv.URL, StateDir: stateDir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Budget().Close() })
		return c
	}
	err := newClient(-time.Minute).RefreshNow(context.Background())
	if !errors.Is(err, fordapi.ErrReauthRequired) || !strings.Contains(err.Error(), "Invalid or Expired Token") {
		t.Fatalf("dead refresh token: got %v", err)
	}
	_, err = newClient(time.Hour).SendCommand(context.Background(), "WF02XXERK1SM00000", fordapi.CmdLock, "", nil)
	var se *fordapi.StatusError
	if !errors.As(err, &se) || se.Status != 404 || !strings.Contains(se.Message, "Command lock with version 1.0.1 not found") {
		t.Fatalf("unknown command version: got %v", err)
	}
	if errors.Is(err, fordapi.ErrOutcomeUnknown) || errors.Is(err, fordapi.ErrReauthRequired) {
		t.Fatalf("a 404 is a decided failure, not %v", err)
	}
}

// The project's own records, written from the same facts as the captures
// (field names, nesting, value types): they always run.
func TestOwnRecordsInRealShapes(t *testing.T) {
	t.Parallel()
	cases := map[string]want{
		"bev_record.json": {
			fields: map[string]string{
				"battery_soc": "100", "battery_capacity": "88", "battery_energy_remaining": "61.34",
				"battery_temperature": "24.5", "battery_hv_voltage": "398.3", "battery_hv_current": "-27.64",
				"charging_power": "7214", "heading": "271.4", "outside_temperature": "14.3", // outsideTemperature wins over ambientTemp
				"charge_plug": "connected", "charging_status": "in_progress", "time_to_full_charge": "95", "lock": "locked",
			},
			location: &fordapi.Location{Latitude: 51.5, Longitude: -0.12},
			absent:   []string{"fuel_level", "engine_coolant_temperature"},
		},
		"truck_record.json": {
			fields: map[string]string{
				"fuel_level": "0", "fuel_range": "12", "battery_12v_soc": "81", "battery_12v_voltage": "12.46",
				"engine_coolant_temperature": "88", "engine_speed": "712", "oil_life": "7",
				"outside_temperature": "-3.5", // ambientTemp where outsideTemperature is absent
				"heading":             "12",   // the older bare number
				"lock":                "unlocked",
				"door_tailgate":       "open", "door_driver": "closed",
				"indicator_malfunction_indicator": "on", "indicator_low_engine_oil_pressure": "off",
				"indicator_low_washer_fluid": "off", "indicator_tire_pressure_monitor_system_warning": "on",
				// The refresh's success state is newer for the odometer and older for the fuel level.
				"odometer": "48211.9",
			},
			absent:   []string{"battery_soc", "charging_power", "battery_capacity"},
			commands: map[string]string{"statusRefresh": "success"},
		},
	}
	for name, w := range cases {
		tel := parseCapture(t, filepath.Join("testdata", name))
		unknown := tel.Unknown
		tel.Unknown = nil
		checkWant(t, name, tel, w)
		switch name {
		case "bev_record.json":
			if len(unknown) != 1 || unknown["cabinHumidity"] != "number" {
				t.Errorf("%s: unknown metrics %v, want cabinHumidity (number)", name, unknown)
			}
		case "truck_record.json":
			if len(unknown) != 1 || unknown["trailerLightCheck"] != "object" {
				t.Errorf("%s: unknown metrics %v, want trailerLightCheck (object)", name, unknown)
			}
		}
	}
}

// TestRefreshSuccessStateCarriesMetrics: a command state that turns to
// success with metrics inside merges them like any delta (here the values
// of the August 2026 capture: a fuel level of 103.91 % shows as 100).
func TestRefreshSuccessStateCarriesMetrics(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "truck_record.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, _, err := fordapi.ParseTelemetry(data)
	if err != nil {
		t.Fatal(err)
	}
	frameData, err := os.ReadFile(filepath.Join("testdata", "ws_refresh_success.json"))
	if err != nil {
		t.Fatal(err)
	}
	frame, err := fordapi.ParseFrame(frameData)
	if err != nil {
		t.Fatal(err)
	}
	doc.Apply(frame.Data)
	tel := doc.Telemetry()
	if got := tel.Get("fuel_level").String(); got != "100" {
		t.Errorf("fuel_level %s after the refresh, want 100", got)
	}
	if got := tel.Get("outside_temperature").String(); got != "23.8" {
		t.Errorf("outside_temperature %s after the refresh, want 23.8", got)
	}
	// A state that did not succeed carries nothing.
	failed := fordapi.Document{"states": map[string]any{"statusRefreshCommand": map[string]any{"commandId": "x",
		"value": map[string]any{"toState": "COMMAND_FAILED_ON_DEVICE", "metrics": map[string]any{"fuelLevel": map[string]any{"value": 5.0}}}}}}
	doc.Apply(failed)
	if got := doc.Telemetry().Get("fuel_level").String(); got != "100" {
		t.Errorf("a failed state changed fuel_level to %s", got)
	}
}
