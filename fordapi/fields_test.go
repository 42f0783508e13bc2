package fordapi_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// TestEveryFieldHasItsSpec: every field the parser gives for the
// project's real-shaped records is declared in Fields (so Home Assistant
// knows what it is), with a number's digits being the decimals it has.
func TestEveryFieldHasItsSpec(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"testdata/truck_record.json", "testdata/telemetry_ev.json", "testdata/bev_record.json"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		_, tel, err := fordapi.ParseTelemetry(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range tel.Fields {
			spec, _, ok := fordapi.SpecOf(f.Name)
			if !ok {
				t.Errorf("%s: field %s has no spec in fordapi.Fields", name, f.Name)
				continue
			}
			if f.Value.IsNumber() != (spec.Kind == fordapi.KindNumber) {
				t.Errorf("%s: %s = %v, but its spec's kind is %d", name, f.Name, f.Value, spec.Kind)
			}
			if f.Value.IsNumber() {
				s := f.Value.String()
				if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i-1 > spec.Digits {
					t.Errorf("%s: %s = %s has more than its %d digits", name, f.Name, s, spec.Digits)
				}
			}
		}
	}
}

// TestReadmeFieldTableFollowsTheSpec: the README's field table names every
// field of the spec (a family by its prefix), with a number's unit and the
// Ford metrics it is read from, and no field the spec lacks.
func TestReadmeFieldTableFollowsTheSpec(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "| field | unit / values |")
	if start < 0 {
		t.Fatal("the README has no field table")
	}
	table := readme[start:]
	table = table[:strings.Index(table, "\n\n")]
	rows := map[string]string{}
	for _, line := range strings.Split(table, "\n")[2:] {
		cells := strings.Split(line, "|")
		for _, name := range strings.Split(cells[1], ",") {
			name = strings.Trim(strings.TrimSpace(name), "`")
			if i := strings.Index(name, "<"); i >= 0 {
				name = name[:i]
			}
			rows[name] = line
		}
	}
	for _, spec := range fordapi.Fields {
		row, ok := rows[spec.Name]
		if !ok {
			t.Errorf("the README's field table lacks %s", spec.Name)
			continue
		}
		if spec.Kind == fordapi.KindNumber && !strings.Contains(strings.Split(row, "|")[2], spec.Unit) {
			t.Errorf("the README gives %s without its unit %s: %s", spec.Name, spec.Unit, row)
		}
		for _, metric := range append(spec.From, spec.States...) {
			if !strings.Contains(strings.Split(row, "|")[3], "`"+metric) {
				t.Errorf("the README does not say %s is read from Ford's %s: %s", spec.Name, metric, row)
			}
		}
	}
	for name := range rows {
		if _, _, ok := fordapi.SpecOf(name + map[bool]string{true: "x", false: ""}[strings.HasSuffix(name, "_")]); !ok && name != "updated_at" {
			t.Errorf("the README's field table names %s, which fordapi.Fields lacks", name)
		}
	}
}

// TestEveryFieldIsReadFromItsMetrics: a field's row says which of Ford's
// metrics it is read from, and a number or a word named there is read
// without more code: each simple row's metric, sent alone, gives its field.
func TestEveryFieldIsReadFromItsMetrics(t *testing.T) {
	t.Parallel()
	for _, spec := range fordapi.Fields {
		if len(spec.From) == 0 && len(spec.States) == 0 && spec.Elsewhere == "" {
			t.Errorf("%s: read from no Ford metric or state", spec.Name)
		}
		if len(spec.From) == 0 || spec.Family || spec.Kind == fordapi.KindLock || spec.From[0] == "customMetrics" || spec.From[0] == "configurations" || spec.Name == "charging_power" || spec.Name == "heading" || spec.Name == fordapi.FieldChargeFinishAt || spec.Name == "remote_start" {
			continue // metrics of other shapes, tested with their readers
		}
		var value any = 42.0
		want := "42"
		if spec.Kind != fordapi.KindNumber {
			value, want = "SOMEWORD", "someword"
			if spec.Kind == fordapi.KindOnOff {
				want = spec.On
			}
		}
		for _, metric := range spec.From {
			if spec.Kind == fordapi.KindOnOff {
				value = strings.ToUpper(spec.On)
				for ford, word := range spec.Ford { // a word Ford says for on
					if word == spec.On {
						value = ford
					}
				}
			}
			tel := fordapi.NewRecord(fordapi.Document{"metrics": map[string]any{metric: map[string]any{"value": value}}}).Telemetry()
			if got := tel.Get(spec.Name).String(); got != want {
				t.Errorf("%s from %s = %v: %q, want %q", spec.Name, metric, value, got, want)
			}
		}
	}
}

// TestAMetricTwoFieldsReadIsSkippedOnce: the remote start's countdown gives
// two fields; sent with a shape neither reader takes, it is named once.
func TestAMetricTwoFieldsReadIsSkippedOnce(t *testing.T) {
	t.Parallel()
	tel := fordapi.NewRecord(fordapi.Document{"metrics": map[string]any{"remoteStartCountdownTimer": map[string]any{"value": "soon"}}}).Telemetry()
	if len(tel.Skipped) != 1 || tel.Skipped[0] != "remoteStartCountdownTimer" {
		t.Errorf("skipped = %v, want the countdown once", tel.Skipped)
	}
	tel = fordapi.NewRecord(fordapi.Document{"metrics": map[string]any{"remoteStartCountdownTimer": map[string]any{"value": 300.0}}}).Telemetry()
	if tel.Get("remote_start").String() != "on" || tel.Get("remote_start_remaining").String() != "300" {
		t.Errorf("remote start = %q, remaining %q; want on, 300", tel.Get("remote_start"), tel.Get("remote_start_remaining"))
	}
}

// TestCapabilitiesByFordsNames: a car's capabilities are every flag Ford
// lists, by Ford's own name, so a new command's row names a new one
// without code here; zone lighting needs lighting zones and remote climate
// comes from the profile, as ha-fordpass reads them; a vehicle cache an
// earlier version wrote (fields RemoteLock, …) keeps its cars' commands.
func TestCapabilitiesByFordsNames(t *testing.T) {
	c := fordapi.CapabilitiesForTest(map[string]any{"remoteLock": "Display", "remoteStart": true, "guardMode": true, "zoneLighting": true, "remotePanicAlarm": false},
		map[string]any{"numberOfLightingZones": "0", "remoteHeatingCooling": true})
	for name, want := range map[string]bool{fordapi.CapRemoteLock: true, fordapi.CapRemoteStart: true, "guardMode": true,
		fordapi.CapZoneLighting: false, fordapi.CapPanicAlarm: false, fordapi.CapRemoteClimate: true} {
		if c.Has(name) != want {
			t.Errorf("%s: %v, want %v", name, c.Has(name), want)
		}
	}
	var old fordapi.Capabilities
	if err := json.Unmarshal([]byte(`{"RemoteLock":true,"RemoteStart":true,"PanicAlarm":false,"ZoneLighting":true}`), &old); err != nil {
		t.Fatal(err)
	}
	if !old.Has(fordapi.CapRemoteLock) || !old.Has(fordapi.CapRemoteStart) || old.Has(fordapi.CapPanicAlarm) || !old.Has(fordapi.CapZoneLighting) {
		t.Fatalf("an earlier cache: %v", old)
	}
}

// TestChargeFieldsForEnergyManagers: the plug and the charge as true or
// false, their IEC 61851 status and the finish time follow a charge from
// plug-in to unplug; Ford's other plug words are connected, and a word
// Ford's lists do not have is left out, never a third value.
func TestChargeFieldsForEnergyManagers(t *testing.T) {
	t.Parallel()
	metric := func(v any) map[string]any { return map[string]any{"updateTime": "2026-12-06T10:00:00Z", "value": v} }
	rec := fordapi.NewRecord(fordapi.Document{"metrics": map[string]any{
		"xevPlugChargerStatus": metric("DISCONNECTED"), "xevBatteryChargeDisplayStatus": metric("NOT_READY"), "xevBatteryTimeToFullCharge": metric(0.0)}})
	check := func(step string, want map[string]string) {
		t.Helper()
		tel := rec.Telemetry()
		for field, w := range want {
			if got, ok := tel.Field(field); !ok || got.String() != w {
				t.Errorf("%s: %s = %q (reported %v), want %q", step, field, got, ok, w)
			}
		}
	}
	check("unplugged", map[string]string{"plugged": "false", "charging": "false", "iec_status": "A", "charge_finish_at": "", "charge_plug": "disconnected"})
	rec.Apply(fordapi.Document{"metrics": map[string]any{"xevPlugChargerStatus": metric("CONNECTED")}})
	check("plugged in", map[string]string{"plugged": "true", "charging": "false", "iec_status": "B", "charge_finish_at": ""})
	rec.Apply(fordapi.Document{"metrics": map[string]any{"xevPlugChargerStatus": metric("CHARGINGAC"),
		"xevBatteryChargeDisplayStatus": metric("IN_PROGRESS"), "xevBatteryTimeToFullCharge": metric(95.0)}})
	check("charging", map[string]string{"plugged": "true", "charging": "true", "iec_status": "C", "charge_finish_at": "2026-12-06T11:35:00Z", "charge_plug": "connected"})
	rec.Apply(fordapi.Document{"metrics": map[string]any{"xevBatteryChargeDisplayStatus": metric("SOMETHING_NEW")}})
	if _, ok := rec.Telemetry().Field("charging"); ok {
		t.Error("a charge word Ford's lists lack shows as charging's value")
	}
	rec.Apply(fordapi.Document{"metrics": map[string]any{"xevPlugChargerStatus": metric("DISCONNECTED"), "xevBatteryChargeDisplayStatus": metric("STOPPED")}})
	check("unplugged again", map[string]string{"plugged": "false", "charging": "false", "iec_status": "A", "charge_finish_at": ""})
}
