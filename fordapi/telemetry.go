package fordapi

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Value is one normalised telemetry value: a number or a lower-case word.
type Value struct {
	num   float64
	str   string
	isNum bool
}

// Number makes a numeric Value.
func Number(f float64) Value { return Value{num: f, isNum: true} }

// Word makes an enum Value (lower-case word).
func Word(s string) Value { return Value{str: s} }

// IsNumber reports whether v is numeric.
func (v Value) IsNumber() bool { return v.isNum }

// Float returns the number (0 for words).
func (v Value) Float() float64 { return v.num }

// String is the MQTT payload: a JSON number or the bare word.
func (v Value) String() string {
	if v.isNum {
		return strconv.FormatFloat(v.num, 'f', -1, 64)
	}
	return v.str
}

// MarshalJSON writes numbers as numbers and words as strings.
func (v Value) MarshalJSON() ([]byte, error) {
	if v.isNum {
		return []byte(v.String()), nil
	}
	return json.Marshal(v.str)
}

// Location is the car's last GPS fix.
type Location struct {
	Latitude    float64 `json:"latitude"`
	Longitude   float64 `json:"longitude"`
	GPSAccuracy float64 `json:"gps_accuracy"`
}

// CommandState is the progress of one command as the telemetry record shows
// it under states.<type>Command.
type CommandState struct {
	ID      string
	ToState string // as Ford wrote it
	Detail  string
}

// Outcome classifies ToState: "success", "failed" or "" (still pending).
func (s CommandState) Outcome() string {
	up := strings.ToUpper(s.ToState)
	switch {
	case up == "SUCCESS" || up == "COMMAND_SUCCEEDED_ON_DEVICE":
		return "success"
	case up == "COMMAND_FAILED_ON_DEVICE" || up == "EXPIRED" || up == "FAILED" || strings.Contains(up, "FAIL"):
		return "failed"
	}
	return ""
}

// Telemetry is a vehicle's state normalised to the field names of the MQTT
// contract. Fields the car did not report are absent.
type Telemetry struct {
	UpdatedAt time.Time        // Ford's own timestamp of the record
	Fields    map[string]Value // odometer, fuel_level, lock, door_driver, …
	Location  *Location
	Commands  map[string]CommandState // by command type (lock, remoteStart, …)
	// Skipped names the metrics that were present but of an unexpected
	// shape; they are left out rather than failing the update.
	Skipped []string
	// Unknown maps the metrics this parser does not know to the JSON type
	// of their value ("number", "object", …; never the value itself): what
	// Ford added or renamed since this version.
	Unknown map[string]string
}

// Document is a telemetry record in Ford's own JSON shape, as decoded by
// encoding/json. The stream merges deltas into it.
type Document = map[string]any

// ParseTelemetry decodes a telemetry JSON record and normalises it.
func ParseTelemetry(data []byte) (Document, *Telemetry, error) {
	var doc Document
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	if doc == nil {
		doc = Document{}
	}
	if states, ok := doc["states"].(map[string]any); ok {
		liftCommandMetrics(doc, states, true)
	}
	return doc, Normalize(doc), nil
}

// liftCommandMetrics merges the metrics that a command state carries when
// it succeeded (states.<x>Command.value.metrics, as after statusRefresh)
// into doc's metrics, like any telemetry delta. With newerOnly (a whole
// REST record) a metric replaces the record's own only when it is newer.
func liftCommandMetrics(doc Document, states map[string]any, newerOnly bool) {
	visit := func(raw any) {
		obj, _ := raw.(map[string]any)
		val, _ := obj["value"].(map[string]any)
		fresh, _ := val["metrics"].(map[string]any)
		to, _ := val["toState"].(string)
		if len(fresh) == 0 || (CommandState{ToState: to}).Outcome() != "success" {
			return
		}
		metrics, ok := doc["metrics"].(map[string]any)
		if !ok {
			metrics = map[string]any{}
			doc["metrics"] = metrics
		}
		for k, v := range fresh {
			if newerOnly && !newer(v, metrics[k]) {
				continue
			}
			setOrDelete(metrics, k, v)
		}
	}
	for k, v := range states {
		if nested, ok := v.(map[string]any); ok && k == "commands" {
			for _, nv := range nested {
				visit(nv)
			}
			continue
		}
		visit(v)
	}
}

// newer reports whether metric a is newer than b (or b is absent).
func newer(a, b any) bool {
	if b == nil {
		return true
	}
	stamp := func(m any) time.Time {
		obj, _ := m.(map[string]any)
		t, _ := parseTime(obj["updateTime"])
		return t
	}
	return stamp(a).After(stamp(b))
}

// MergeDelta applies a websocket "_data" delta to a document the way the
// FordPass app does: key by key, one level deeper for the grouped sections
// (metrics.customMetrics, metrics.configurations, events.customEvents). A
// null value removes the key.
func MergeDelta(doc, delta Document) {
	for k, dv := range delta {
		dm, dIsMap := dv.(map[string]any)
		cur, cIsMap := doc[k].(map[string]any)
		if !dIsMap || !cIsMap || (k != "metrics" && k != "states" && k != "events" && k != "messages") {
			setOrDelete(doc, k, dv)
			continue
		}
		for sk, sv := range dm {
			sm, sIsMap := sv.(map[string]any)
			inner, iIsMap := cur[sk].(map[string]any)
			if sIsMap && iIsMap && (sk == "customMetrics" || sk == "configurations" || sk == "customEvents") {
				for ik, iv := range sm {
					setOrDelete(inner, ik, iv)
				}
				continue
			}
			setOrDelete(cur, sk, sv)
		}
	}
	if states, ok := delta["states"].(map[string]any); ok {
		liftCommandMetrics(doc, states, false)
	}
}

func setOrDelete(m map[string]any, k string, v any) {
	if v == nil {
		delete(m, k)
		return
	}
	m[k] = v
}
