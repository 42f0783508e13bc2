package fordapi_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// mergeDocument is the FordPass app's merge of a websocket delta into the
// whole document (key by key in metrics and states; a null removes; the
// metrics of a command state that succeeded merge like a delta), written
// out plainly on decoded JSON as the reference a Record must agree with.
func mergeDocument(doc, delta fordapi.Document) {
	set := func(m map[string]any, k string, v any) {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	for k, dv := range delta {
		dm, dIsMap := dv.(map[string]any)
		cur, cIsMap := doc[k].(map[string]any)
		if !dIsMap || !cIsMap || (k != "metrics" && k != "states") {
			set(doc, k, dv)
			continue
		}
		for sk, sv := range dm {
			set(cur, sk, sv)
		}
	}
	states, _ := delta["states"].(map[string]any)
	lift := func(raw any) {
		obj, _ := raw.(map[string]any)
		val, _ := obj["value"].(map[string]any)
		fresh, _ := val["metrics"].(map[string]any)
		if to, _ := val["toState"].(string); to != "success" || len(fresh) == 0 {
			return
		}
		metrics, ok := doc["metrics"].(map[string]any)
		if !ok {
			metrics = map[string]any{}
			doc["metrics"] = metrics
		}
		for k, v := range fresh {
			set(metrics, k, v)
		}
	}
	for k, v := range states {
		if nested, ok := v.(map[string]any); ok && k == "commands" {
			for _, nv := range nested {
				lift(nv)
			}
			continue
		}
		lift(v)
	}
}

// A Record that takes deltas one by one must show what a record built from
// scratch out of the merged document shows: a thousand random deltas made
// of real-shaped metrics, with nulls, malformed shapes, unknown metrics,
// whole sections replaced and command states carrying metrics.
func TestRecordAgreesWithTheMergedDocument(t *testing.T) {
	t.Parallel()
	var pool []string // metric names
	values := map[string][]any{}
	for _, name := range []string{"bev_record.json", "truck_record.json", "telemetry_ev.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		var doc fordapi.Document
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for k, v := range doc["metrics"].(map[string]any) {
			if _, seen := values[k]; !seen {
				pool = append(pool, k)
			}
			values[k] = append(values[k], v)
		}
	}
	slices.Sort(pool)
	pool = append(pool, "someNewMetric")
	values["someNewMetric"] = []any{map[string]any{"value": 3.0}, map[string]any{"value": "ON"}}
	malformed := []any{"a string", 5.0, []any{1.0, "x"}, map[string]any{"value": "not a number"}, map[string]any{"value": map[string]any{}}, true}

	// copyJSON keeps the reference document and the Record from sharing maps.
	copyJSON := func(v any) any {
		data, _ := json.Marshal(v)
		var out any
		_ = json.Unmarshal(data, &out)
		return out
	}
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		metric := func() (string, any) {
			k := pool[rng.IntN(len(pool))]
			switch rng.IntN(8) {
			case 0:
				return k, nil
			case 1:
				return k, malformed[rng.IntN(len(malformed))]
			}
			vs := values[k]
			return k, vs[rng.IntN(len(vs))]
		}
		doc := fordapi.Document{}
		rec := fordapi.NewRecord(nil)
		for step := range 25 {
			delta := fordapi.Document{}
			switch rng.IntN(12) {
			case 0:
				delta["metrics"] = nil // the whole section goes
			case 1:
				delta["updateTime"] = fmt.Sprintf("2026-10-0%dT06:00:00Z", 1+rng.IntN(9))
			case 2:
				delta["states"] = map[string]any{"statusRefreshCommand": map[string]any{"commandId": fmt.Sprint("c", step),
					"value": map[string]any{"toState": []string{"success", "FAILED", "REQUEST_QUEUED"}[rng.IntN(3)],
						"metrics": map[string]any{pool[rng.IntN(len(pool))]: values["odometer"][0]}}}}
			case 3:
				delta["states"] = map[string]any{"commands": map[string]any{"lockCommand": map[string]any{"commandId": "l1",
					"value": map[string]any{"toState": "success"}}}, "remoteStartCommand": nil}
			default:
				m := map[string]any{}
				for range 1 + rng.IntN(4) {
					k, v := metric()
					m[k] = v
				}
				delta["metrics"] = m
			}
			mergeDocument(doc, copyJSON(delta).(map[string]any))
			rec.Apply(copyJSON(delta).(map[string]any))
			got, want := rec.Telemetry(), fordapi.NewRecord(copyJSON(doc).(map[string]any)).Telemetry()
			if !sameTelemetry(got, want) {
				t.Fatalf("seed %d step %d, after %v:\nincremental %+v\nfrom scratch %+v", seed, step, delta, got, want)
			}
		}
	}
}

func sameTelemetry(a, b *fordapi.Telemetry) bool {
	return a.UpdatedAt.Equal(b.UpdatedAt) && slices.Equal(a.Fields, b.Fields) && reflect.DeepEqual(a.Location, b.Location) &&
		slices.Equal(a.Skipped, b.Skipped) && maps.Equal(a.Unknown, b.Unknown) && slices.Equal(a.Commands, b.Commands)
}

// A field two metrics give is listed once, from the later metric: the hood
// in doorStatus gives way to hoodStatus, ambientTemp to outsideTemperature.
// With copies: the Telemetry a car keeps is never changed under it.
func TestTelemetryFieldsOnceInOrder(t *testing.T) {
	t.Parallel()
	tel := fordapi.NewRecord(fordapi.Document{"metrics": map[string]any{
		"hoodStatus":         map[string]any{"value": "CLOSED"},
		"doorStatus":         []any{map[string]any{"vehicleDoor": "HOOD_DOOR", "value": "AJAR"}, map[string]any{"vehicleDoor": "TAILGATE", "value": "CLOSED"}},
		"outsideTemperature": map[string]any{"value": 7.0},
		"ambientTemp":        map[string]any{"value": 9.0},
		"odometer":           map[string]any{"value": 10.0},
	}}).Telemetry()
	var names []string
	for _, f := range tel.Fields {
		names = append(names, f.Name)
	}
	if want := []string{"door_hood", "door_tailgate", "odometer", "outside_temperature"}; !slices.Equal(names, want) {
		t.Fatalf("fields %v, want %v", names, want)
	}
	if tel.Get("door_hood").String() != "closed" || tel.Get("outside_temperature").Float() != 7 {
		t.Errorf("door_hood %s, outside_temperature %s: the later metric must win", tel.Get("door_hood"), tel.Get("outside_temperature"))
	}
	if _, ok := tel.Field("fuel_level"); ok || tel.Get("fuel_level").String() != "" {
		t.Error("an absent field was found")
	}
	locked := tel.With("lock", fordapi.Word("locked")).With("odometer", fordapi.Number(11))
	if locked.Get("lock").String() != "locked" || locked.Get("odometer").Float() != 11 || len(locked.Fields) != 5 || locked.Fields[2].Name != "lock" {
		t.Errorf("With gave %+v", locked.Fields)
	}
	if _, ok := tel.Field("lock"); ok || tel.Get("odometer").Float() != 10 {
		t.Error("With changed the original")
	}
}

// TestApplyChangedSaysWhatMoved: a delta that resends what the record has
// changes nothing a user sees; a new value, a new record time, a command
// state or a metric of an unexpected shape does.
func TestApplyChangedSaysWhatMoved(t *testing.T) {
	t.Parallel()
	odo := func(v any, at string) fordapi.Document {
		return fordapi.Document{"metrics": map[string]any{"odometer": map[string]any{"value": v, "updateTime": at}}}
	}
	rec := fordapi.NewRecord(odo(100.0, "2026-12-06T10:00:00Z"))
	for _, step := range []struct {
		name  string
		delta fordapi.Document
		want  bool
	}{
		{"the same value again", odo(100.0, "2026-12-06T10:00:00Z"), false},
		{"the same value, the metric's time later", odo(100.0, "2026-12-06T10:05:00Z"), false},
		{"a new value", odo(101.0, "2026-12-06T10:05:00Z"), true},
		{"a new record time", fordapi.Document{"updateTime": "2026-12-06T10:06:00Z"}, true},
		{"the same record time", fordapi.Document{"updateTime": "2026-12-06T10:06:00Z"}, false},
		{"a command's state", fordapi.Document{"states": map[string]any{"lockCommand": map[string]any{"commandId": "c1", "value": map[string]any{"toState": "success"}}}}, true},
		{"a metric of an unexpected shape", odo("soon", "2026-12-06T10:07:00Z"), true},
		{"a metric the parser does not know", fordapi.Document{"metrics": map[string]any{"warpDrive": map[string]any{"value": 1.0}}}, true},
	} {
		if got := rec.ApplyChanged(step.delta); got != step.want {
			t.Errorf("%s: changed %v, want %v", step.name, got, step.want)
		}
	}
}

// A Telemetry handed out never changes: the metrics the parser does not
// know, which the record shares with it, are copied before the record's
// next change to them.
func TestHandedOutUnknownNeverChanges(t *testing.T) {
	t.Parallel()
	metric := func(name string, v any) fordapi.Document {
		return fordapi.Document{"metrics": map[string]any{name: map[string]any{"value": v}}}
	}
	rec := fordapi.NewRecord(metric("warpDrive", 1.0))
	first := rec.Telemetry()
	rec.Apply(metric("fluxCapacitor", "on"))
	second := rec.Telemetry()
	rec.Apply(fordapi.Document{"metrics": map[string]any{"warpDrive": nil}})
	rec.Apply(metric("fluxCapacitor", map[string]any{"a": 1.0}))
	third := rec.Telemetry()
	for _, c := range []struct {
		name string
		got  map[string]string
		want map[string]string
	}{
		{"first", first.Unknown, map[string]string{"warpDrive": "number"}},
		{"second", second.Unknown, map[string]string{"warpDrive": "number", "fluxCapacitor": "string"}},
		{"third", third.Unknown, map[string]string{"fluxCapacitor": "object"}},
	} {
		if !maps.Equal(c.got, c.want) {
			t.Errorf("%s: Unknown %v, want %v", c.name, c.got, c.want)
		}
	}
}
