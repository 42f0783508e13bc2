package fordapi

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// A metricReader turns one of Ford's metrics (the value of metrics.<name>)
// into fields of the MQTT contract. It never fails: a metric of the wrong
// shape is marked skipped.
type metricReader struct {
	metric string
	read   func(w *fieldWriter, raw any)
}

// fieldWriter collects what one metric normalises to.
type fieldWriter struct {
	out     []Field
	skipped bool
}

func (w *fieldWriter) set(name string, v Value) { w.out = append(w.out, Field{Name: name, Value: v}) }

// Hidden fields are kept in a Record but are not fields of the contract:
// the parts of the charging power and of the position.
const (
	hiddenChargerVolts = "_charger_volts"
	hiddenChargerAmps  = "_charger_amps"
	hiddenLatitude     = "_latitude"
	hiddenLongitude    = "_longitude"
)

// A readMaker makes the reader of one of a field's metrics (FieldSpec.From).
// The makers are not inlined: inlined, each field would get its own copy
// of the closure's code.
type readMaker func(f *FieldSpec, metric string) func(*fieldWriter, any)

// readers are the metrics this parser reads, made from Fields, in order of
// precedence: where two metrics give the same field, the later one wins
// (outsideTemperature over ambientTemp, hoodStatus over a hood in
// doorStatus). A metric two fields are read from (the remote start's
// countdown) has a reader for each.
var readers []metricReader

// readerOf maps a metric name to its indices in readers.
var readerOf = map[string][]int{}

func init() {
	for i := range Fields {
		f := &Fields[i]
		for _, metric := range f.From {
			mk := f.read
			switch {
			case mk != nil:
			case f.Kind == KindNumber:
				mk = number
			default:
				mk = word
			}
			readers = append(readers, metricReader{metric, mk(f, metric)})
		}
	}
	readers = append(readers, metricReader{"position", position})
	if len(readers) > 64 {
		panic("fordapi: a Record marks skipped metrics in a uint64")
	}
	for i, r := range readers {
		readerOf[r.metric] = append(readerOf[r.metric], i)
	}
}

// number reads metric.value as a number rounded to the field's digits,
// clamped to 0-100 for a percentage (cars report a fuel level of 103.9).
//
//go:noinline
func number(f *FieldSpec, _ string) func(*fieldWriter, any) {
	name, digits, percent := f.Name, f.Digits, f.Unit == "%"
	return func(w *fieldWriter, raw any) {
		if v, ok := w.float(raw); ok {
			if percent {
				v = min(max(v, 0), 100)
			}
			w.set(name, Number(round(v, digits)))
		}
	}
}

// chargerPart keeps the charger's output voltage or current, unrounded,
// under a hidden name; Telemetry multiplies them into the field.
//
//go:noinline
func chargerPart(f *FieldSpec, metric string) func(*fieldWriter, any) {
	chargingPower = f
	hidden := hiddenChargerAmps
	if metric == f.From[0] {
		hidden = hiddenChargerVolts
	}
	return func(w *fieldWriter, raw any) {
		if v, ok := w.float(raw); ok {
			w.set(hidden, Number(v))
		}
	}
}

// chargingPower is the field the charger's voltage and current make.
var chargingPower *FieldSpec

// float reads metric.value as a number; a metric of another shape is
// skipped.
func (w *fieldWriter) float(raw any) (float64, bool) {
	obj, ok := raw.(map[string]any)
	if !ok {
		w.skipped = true
		return 0, false
	}
	f, ok := toFloat(obj["value"])
	if !ok {
		w.skipped = true
		return 0, false
	}
	return f, true
}

// word reads metric.value as a word, mapped through the field's Ford
// words, else lower-cased.
//
//go:noinline
func word(f *FieldSpec, _ string) func(*fieldWriter, any) {
	name, alias := f.Name, f.Ford
	return func(w *fieldWriter, raw any) {
		obj, _ := raw.(map[string]any)
		s, ok := obj["value"].(string)
		if !ok || s == "" {
			w.skipped = true
			return
		}
		up := strings.ToUpper(s)
		if a, ok := alias[up]; ok {
			s = a
		} else {
			s = strings.ToLower(s)
		}
		w.set(name, Word(s))
	}
}

// heading reads the compass heading: an object {heading, uncertainty,
// detectionType} in current records, a bare number in older ones.
//
//go:noinline
func heading(f *FieldSpec, _ string) func(*fieldWriter, any) {
	name, digits := f.Name, f.Digits
	return func(w *fieldWriter, raw any) {
		obj, _ := raw.(map[string]any)
		val := obj["value"]
		if inner, ok := val.(map[string]any); ok {
			val = inner["heading"]
		}
		f, ok := toFloat(val)
		if !ok || f < 0 || f > 360 {
			w.skipped = true
			return
		}
		w.set(name, Number(round(f, digits)))
	}
}

// indicators are the dashboard's warning lamps (metrics.indicators, each
// {value: bool, additionalInfo}): indicator_<name> is on or off.
//
//go:noinline
func indicators(f *FieldSpec, _ string) func(*fieldWriter, any) {
	family, onOff := strings.TrimSuffix(f.Name, "_"), map[bool]Value{true: Word(f.On), false: Word(f.Off)}
	return func(w *fieldWriter, raw any) {
		all, ok := raw.(map[string]any)
		if !ok {
			w.skipped = true
			return
		}
		for name, e := range all {
			obj, _ := e.(map[string]any)
			on, ok := obj["value"].(bool)
			if !ok {
				continue
			}
			w.set(fieldName(family, name, "", func() string { return family + "_" + snake(name) }), onOff[on])
		}
	}
}

// chargeTarget reads the car's own signals (metrics.customMetrics), keyed
// "aui:signal:<id>:custom:<name>" (ha-fordpass fordpass_handler.py reads
// them by the name's end). The charge target is the AC target SoC, which
// the charge_target command sets.
//
//go:noinline
func chargeTarget(f *FieldSpec, _ string) func(*fieldWriter, any) {
	name, digits := f.Name, f.Digits
	return func(w *fieldWriter, raw any) {
		all, ok := raw.(map[string]any)
		if !ok {
			w.skipped = true
			return
		}
		for key, e := range all {
			if !strings.HasSuffix(key, "custom:global-ac-target-soc") {
				continue
			}
			obj, _ := e.(map[string]any)
			if f, ok := toFloat(obj["value"]); ok && f >= 0 && f <= 100 {
				w.set(name, Number(round(f, digits)))
			}
		}
	}
}

// snake turns Ford's camelCase into snake_case: lowTirePressure →
// low_tire_pressure.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return sanitizeName(b.String())
}

// knownMetrics are the metric names this parser reads or deliberately
// leaves out; anything else is reported as Unknown.
var knownMetrics = map[string]bool{}

func init() {
	for _, r := range readers {
		knownMetrics[r.metric] = true
	}
	// Read by nobody, on purpose.
	for _, k := range strings.Fields(`acceleration acceleratorPedalPosition yawRate xevBatteryMaximumRange
		xevBatteryPerformanceStatus xevChargeStationCommunicationStatus xevChargeStationPowerType
		xevBatteryChargerEnergyOutput xevTractionMotorVoltage xevTractionMotorCurrent tripXevBatteryRangeRegenerated
		tripXevBatteryChargeRegenerated tripXevBatteryDistanceAccumulated tirePressureStatus tirePressureSystemStatus
		seatBeltStatus compassDirection panicAlarmStatus batteryLoadStatus engineOilTemp dieselExhaustFilterStatus
		dieselExhaustFluidLevel deepSleepInProgress firmwareUpgradeInProgress configurations
		brakePedalStatus parkingBrakeStatus torqueAtTransmission wheelTorqueStatus`) {
		knownMetrics[k] = true
	}
}

// metricType is the JSON type of an unknown metric's value ("number",
// "object", …), never the value itself.
func metricType(v any) string {
	if obj, ok := v.(map[string]any); ok {
		if val, ok := obj["value"]; ok {
			return jsonType(val)
		}
	}
	return jsonType(v)
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}

// remoteStart reads the remote start's countdown as running or not (its
// seconds are a field of their own, read as a number).
//
//go:noinline
func remoteStart(f *FieldSpec, _ string) func(*fieldWriter, any) {
	name, on, off := f.Name, Word(f.On), Word(f.Off)
	return func(w *fieldWriter, raw any) {
		if v, ok := w.float(raw); ok {
			if v > 0 {
				w.set(name, on)
			} else {
				w.set(name, off)
			}
		}
	}
}

// list reads a metric that is a list of objects.
func (w *fieldWriter) list(raw any) []map[string]any {
	arr, ok := raw.([]any)
	if !ok {
		w.skipped = true
		return nil
	}
	out := make([]map[string]any, 0, len(arr))
	for _, e := range arr {
		if obj, ok := e.(map[string]any); ok {
			out = append(out, obj)
		}
	}
	return out
}

// locks reads the doors' locks as the car's lock: the all-doors entry
// where there is one, else locked when every electric lock is.
//
//go:noinline
func locks(f *FieldSpec, _ string) func(*fieldWriter, any) {
	name := f.Name
	return func(w *fieldWriter, raw any) { readLocks(w, name, raw) }
}

func readLocks(w *fieldWriter, name string, raw any) {
	entries := w.list(raw)
	if len(entries) == 0 {
		return
	}
	isLocked := func(v string) bool { v = strings.ToUpper(v); return v == "LOCKED" || v == "DOUBLE_LOCKED" }
	for _, e := range entries {
		if s, _ := e["vehicleDoor"].(string); strings.EqualFold(s, "ALL_DOORS") {
			v, ok := e["value"].(string)
			if !ok {
				w.skipped = true
				return
			}
			w.setLock(name, isLocked(v))
			return
		}
	}
	counted, locked := 0, true
	for _, e := range entries {
		v, ok := e["value"].(string)
		if !ok || strings.EqualFold(v, "UNKNOWN") {
			continue
		}
		if tags, ok := e["tags"].(map[string]any); ok {
			if lt, _ := tags["DOOR_LATCH_TYPE"].(string); strings.EqualFold(lt, "MECHANICAL") {
				continue
			}
		}
		counted++
		locked = locked && isLocked(v)
	}
	if counted > 0 {
		w.setLock(name, locked)
	}
}

func (w *fieldWriter) setLock(name string, locked bool) {
	state := "unlocked"
	if locked {
		state = "locked"
	}
	w.set(name, Word(state))
}

// doors reads the doors (doorStatus) and the hood (hoodStatus) as open or
// closed.
//
//go:noinline
func doors(f *FieldSpec, metric string) func(*fieldWriter, any) {
	family := strings.TrimSuffix(f.Name, "_")
	if metric == "hoodStatus" {
		hood := f.Name + "hood"
		return func(w *fieldWriter, raw any) { readHood(w, hood, raw) }
	}
	return func(w *fieldWriter, raw any) { readDoors(w, family, raw) }
}

func readDoors(w *fieldWriter, family string, raw any) {
	for _, e := range w.list(raw) {
		name := partField(e, family, "vehicleDoor")
		v, ok := e["value"].(string)
		if name == "" || !ok {
			continue
		}
		switch strings.ToUpper(v) {
		case "INVALID", "UNKNOWN":
			continue
		case "CLOSED":
			v = "closed"
		default:
			v = "open"
		}
		w.set(name, Word(v))
	}
}

func readHood(w *fieldWriter, name string, raw any) {
	obj, _ := raw.(map[string]any)
	v, ok := obj["value"].(string)
	if !ok {
		w.skipped = true
		return
	}
	state := "open"
	if strings.EqualFold(v, "CLOSED") {
		state = "closed"
	}
	w.set(name, Word(state))
}

//go:noinline
func windows(f *FieldSpec, _ string) func(*fieldWriter, any) {
	family := strings.TrimSuffix(f.Name, "_")
	return func(w *fieldWriter, raw any) { readWindows(w, family, raw) }
}

func readWindows(w *fieldWriter, family string, raw any) {
	for _, e := range w.list(raw) {
		name := partField(e, family, "vehicleWindow")
		val, _ := e["value"].(map[string]any)
		dr, _ := val["doubleRange"].(map[string]any)
		lo, okLo := toFloat(dr["lowerBound"])
		hi, okHi := toFloat(dr["upperBound"])
		if name == "" || !okLo || !okHi {
			continue
		}
		state := "closed"
		if lo != 0 || hi != 0 {
			state = "open"
		}
		w.set(name, Word(state))
	}
}

//go:noinline
func tires(f *FieldSpec, _ string) func(*fieldWriter, any) {
	family, digits := strings.TrimSuffix(f.Name, "_"), f.Digits
	return func(w *fieldWriter, raw any) { readTires(w, family, digits, raw) }
}

func readTires(w *fieldWriter, family string, digits int, raw any) {
	for _, e := range w.list(raw) {
		wheel, _ := e["vehicleWheel"].(string)
		f, ok := toFloat(e["value"])
		if wheel == "" || !ok {
			continue
		}
		w.set(fieldName(family, wheel, "", func() string { return family + "_" + sanitizeName(wheel) }), Number(round(f, digits)))
	}
}

func position(w *fieldWriter, raw any) {
	obj, _ := raw.(map[string]any)
	val, _ := obj["value"].(map[string]any)
	loc, _ := val["location"].(map[string]any)
	lat, okLat := toFloat(loc["lat"])
	lon, okLon := toFloat(loc["lon"])
	if !okLat || !okLon || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		w.skipped = true
		return
	}
	w.set(hiddenLatitude, Number(round(lat, 6)))
	w.set(hiddenLongitude, Number(round(lon, 6)))
}

// commandStates reads one entry of the record's states: a command's
// progress, or (under "commands") several.
func commandStates(key string, raw any) []typedCommand {
	if key == "commands" {
		nested, _ := raw.(map[string]any)
		var out []typedCommand
		for nk, nv := range nested {
			out = append(out, commandStates(nk, nv)...)
		}
		return out
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil
	}
	id, _ := obj["commandId"].(string)
	val, _ := obj["value"].(map[string]any)
	to, _ := val["toState"].(string)
	if id == "" || to == "" {
		return nil
	}
	cs := CommandState{ID: id, ToState: to}
	if data, ok := val["data"].(map[string]any); ok {
		ce, _ := data["commandError"].(map[string]any)
		f, _ := ce["commandExecutionFailure"].(map[string]any)
		ctx, _ := f["oemErrorContext"].(string)
		code := f["oemErrorCode"]
		if ctx != "" || code != nil {
			cs.Detail = strings.TrimSpace(ctx + " " + toString(code))
		}
	}
	return []typedCommand{{typ: strings.TrimSuffix(key, "Command"), state: cs}}
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false
		}
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func parseTime(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok || s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func round(f float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(f*p) / p
}
