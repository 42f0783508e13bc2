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

// readers are the metrics this parser reads, in order of precedence: where
// two metrics give the same field, the later one wins (outsideTemperature
// over ambientTemp, hoodStatus over a hood in doorStatus).
var readers = []metricReader{
	{"odometer", number("odometer")},
	{"fuelLevel", percent("fuel_level")},
	{"fuelRange", number("fuel_range")},
	{"xevBatteryStateOfCharge", percent("battery_soc")},
	{"xevBatteryRange", number("ev_range")},
	{"xevBatteryTimeToFullCharge", number("time_to_full_charge")},
	{"xevPlugChargerStatus", word("charge_plug", plugWords)},
	{"xevBatteryChargeDisplayStatus", word("charging_status", nil)},
	{"xevBatteryEnergyRemaining", number("battery_energy_remaining")},
	{"xevBatteryCapacity", number("battery_capacity")},
	{"xevBatteryTemperature", number("battery_temperature")},
	{"xevBatteryVoltage", number("battery_hv_voltage")},
	{"xevBatteryIoCurrent", number("battery_hv_current")},
	// charging_power is what the charger delivers: its output voltage
	// times its output current, in watts, where the car reports both.
	{"xevBatteryChargerVoltageOutput", rawNumber(hiddenChargerVolts)},
	{"xevBatteryChargerCurrentOutput", rawNumber(hiddenChargerAmps)},
	{"batteryStateOfCharge", percent("battery_12v_soc")},
	{"batteryVoltage", number("battery_12v_voltage")},
	{"ambientTemp", number("outside_temperature")},
	{"outsideTemperature", number("outside_temperature")},
	{"engineCoolantTemp", number("engine_coolant_temperature")},
	{"engineSpeed", number("engine_speed")},
	{"oilLifeRemaining", percent("oil_life")},
	{"heading", heading},
	{"speed", number("speed")},
	{"gearLeverPosition", word("gear", nil)},
	{"ignitionStatus", word("ignition", ignitionWords)},
	{"alarmStatus", word("alarm", alarmWords)},
	{"remoteStartCountdownTimer", remoteStart},
	{"doorLockStatus", locks},
	{"doorStatus", doors},
	{"hoodStatus", hood},
	{"windowStatus", windows},
	{"tirePressure", tires},
	{"position", position},
	{"indicators", indicators},
	{"customMetrics", customMetrics},
}

// readerOf maps a metric name to its index in readers.
var readerOf = map[string]int{}

func init() {
	if len(readers) > 64 {
		panic("fordapi: a Record marks skipped metrics in a uint64")
	}
	for i, r := range readers {
		readerOf[r.metric] = i
	}
}

// number reads metric.value as a number rounded to the field's digits
// (Fields). The makers of readers are not inlined: inlined, each entry of
// the table would get its own copy of the closure's code (5 KB of the
// binary).
//
//go:noinline
func number(field string) func(*fieldWriter, any) {
	digits := digitsOf(field)
	return func(w *fieldWriter, raw any) {
		if f, ok := w.float(raw); ok {
			w.set(field, Number(round(f, digits)))
		}
	}
}

// percent is number, clamped to 0-100: cars report a fuel level of 103.9.
//
//go:noinline
func percent(field string) func(*fieldWriter, any) {
	digits := digitsOf(field)
	return func(w *fieldWriter, raw any) {
		if f, ok := w.float(raw); ok {
			w.set(field, Number(round(min(max(f, 0), 100), digits)))
		}
	}
}

// rawNumber keeps metric.value unrounded under a hidden name.
//
//go:noinline
func rawNumber(hidden string) func(*fieldWriter, any) {
	return func(w *fieldWriter, raw any) {
		if f, ok := w.float(raw); ok {
			w.set(hidden, Number(f))
		}
	}
}

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

// word reads metric.value as a lower-case word, mapped through alias.
//
//go:noinline
func word(field string, alias map[string]string) func(*fieldWriter, any) {
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
		w.set(field, Word(s))
	}
}

// The digits of the fields read below, from Fields.
var (
	headingDigits   = digitsOf("heading")
	remainingDigits = digitsOf("remote_start_remaining")
	tireDigits      = digitsOf("tire_pressure_")
)

var (
	ignitionWords = map[string]string{"ON": "on", "RUN": "on", "START": "on", "OFF": "off"}
	alarmWords    = map[string]string{
		"ARMED": "armed", "SET": "armed", "DISARMED": "disarmed", "NOT_SET": "disarmed", "NOTSET": "disarmed",
		"UNARMED": "disarmed", "TRIGGERED": "triggered", "ACTIVE": "triggered", "ALARM": "triggered",
	}
	plugWords = map[string]string{"CONNECTED": "connected", "DISCONNECTED": "disconnected"}
	onOff     = map[bool]Value{true: Word("on"), false: Word("off")}
)

// heading reads the compass heading: an object {heading, uncertainty,
// detectionType} in current records, a bare number in older ones.
func heading(w *fieldWriter, raw any) {
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
	w.set("heading", Number(round(f, headingDigits)))
}

// indicators are the dashboard's warning lamps (metrics.indicators, each
// {value: bool, additionalInfo}): indicator_<name> is on or off.
func indicators(w *fieldWriter, raw any) {
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
		w.set(fieldName("indicator", name, "", func() string { return "indicator_" + snake(name) }), onOff[on])
	}
}

// customMetrics are the car's own signals, keyed
// "aui:signal:<id>:custom:<name>" (ha-fordpass fordpass_handler.py reads
// them by the name's end). The charge target is the AC target SoC, which
// the charge_target command sets.
func customMetrics(w *fieldWriter, raw any) {
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
			w.set("charge_target", Number(round(f, 0)))
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
	for _, k := range strings.Fields(`acceleration acceleratorPedalPosition yawRate xevBatteryActualStateOfCharge xevBatteryMaximumRange
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

func remoteStart(w *fieldWriter, raw any) {
	obj, _ := raw.(map[string]any)
	f, ok := toFloat(obj["value"])
	if !ok {
		w.skipped = true
		return
	}
	w.set("remote_start", onOff[f > 0])
	w.set("remote_start_remaining", Number(round(f, remainingDigits)))
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

func locks(w *fieldWriter, raw any) {
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
			w.setLock(isLocked(v))
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
		w.setLock(locked)
	}
}

func (w *fieldWriter) setLock(locked bool) {
	state := "unlocked"
	if locked {
		state = "locked"
	}
	w.set("lock", Word(state))
}

func doors(w *fieldWriter, raw any) {
	for _, e := range w.list(raw) {
		name := partField(e, "door", "vehicleDoor")
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

func hood(w *fieldWriter, raw any) {
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
	w.set("door_hood", Word(state))
}

func windows(w *fieldWriter, raw any) {
	for _, e := range w.list(raw) {
		name := partField(e, "window", "vehicleWindow")
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

func tires(w *fieldWriter, raw any) {
	for _, e := range w.list(raw) {
		wheel, _ := e["vehicleWheel"].(string)
		f, ok := toFloat(e["value"])
		if wheel == "" || !ok {
			continue
		}
		w.set(fieldName("tire_pressure", wheel, "", func() string { return "tire_pressure_" + sanitizeName(wheel) }), Number(round(f, tireDigits)))
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
