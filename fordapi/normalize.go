package fordapi

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Normalize extracts the contract's fields from a telemetry document. It never
// fails: a metric of the wrong type is skipped and named in Skipped.
func Normalize(doc Document) *Telemetry {
	t := &Telemetry{Fields: make(map[string]Value, 32)}
	n := normalizer{t: t}
	if ts, ok := parseTime(doc["updateTime"]); ok {
		t.UpdatedAt = ts
	}
	metrics, _ := doc["metrics"].(map[string]any)
	n.metrics(metrics)
	n.unknown(metrics)
	if states, ok := doc["states"].(map[string]any); ok {
		n.states(states)
	}
	sort.Strings(t.Skipped)
	return t
}

type normalizer struct{ t *Telemetry }

func (n normalizer) skip(name string) { n.t.Skipped = append(n.t.Skipped, name) }

// number stores metrics[key].value as field, rounded to digits decimals,
// and reports whether the car reported it.
func (n normalizer) number(metrics map[string]any, key, field string, digits int) bool {
	f, ok := n.float(metrics, key)
	if !ok {
		return false
	}
	n.t.Fields[field] = Number(round(f, digits))
	return true
}

// percent is number, clamped to 0-100: cars report a fuel level of 103.9.
func (n normalizer) percent(metrics map[string]any, key, field string, digits int) {
	f, ok := n.float(metrics, key)
	if !ok {
		return
	}
	n.t.Fields[field] = Number(round(min(max(f, 0), 100), digits))
}

// float reads metrics[key].value as a number; a metric of another shape is
// skipped.
func (n normalizer) float(metrics map[string]any, key string) (float64, bool) {
	m, ok := metrics[key]
	if !ok {
		return 0, false
	}
	obj, ok := m.(map[string]any)
	if !ok {
		n.skip(key)
		return 0, false
	}
	f, ok := toFloat(obj["value"])
	if !ok {
		n.skip(key)
		return 0, false
	}
	return f, true
}

// word stores metrics[key].value as a lower-case word, mapped through alias.
func (n normalizer) word(metrics map[string]any, key, field string, alias map[string]string) {
	m, ok := metrics[key]
	if !ok {
		return
	}
	obj, ok := m.(map[string]any)
	if !ok {
		n.skip(key)
		return
	}
	s, ok := obj["value"].(string)
	if !ok || s == "" {
		n.skip(key)
		return
	}
	up := strings.ToUpper(s)
	if a, ok := alias[up]; ok {
		s = a
	} else {
		s = strings.ToLower(s)
	}
	n.t.Fields[field] = Word(s)
}

var (
	ignitionWords = map[string]string{"ON": "on", "RUN": "on", "START": "on", "OFF": "off"}
	alarmWords    = map[string]string{
		"ARMED": "armed", "SET": "armed", "DISARMED": "disarmed", "NOT_SET": "disarmed", "NOTSET": "disarmed",
		"UNARMED": "disarmed", "TRIGGERED": "triggered", "ACTIVE": "triggered", "ALARM": "triggered",
	}
	plugWords = map[string]string{"CONNECTED": "connected", "DISCONNECTED": "disconnected"}
)

func (n normalizer) metrics(m map[string]any) {
	if m == nil {
		return
	}
	n.number(m, "odometer", "odometer", 1)
	n.percent(m, "fuelLevel", "fuel_level", 1)
	n.number(m, "fuelRange", "fuel_range", 1)
	n.percent(m, "xevBatteryStateOfCharge", "battery_soc", 1)
	n.number(m, "xevBatteryRange", "ev_range", 1)
	n.number(m, "xevBatteryTimeToFullCharge", "time_to_full_charge", 0)
	n.word(m, "xevPlugChargerStatus", "charge_plug", plugWords)
	n.word(m, "xevBatteryChargeDisplayStatus", "charging_status", nil)
	n.number(m, "xevBatteryEnergyRemaining", "battery_energy_remaining", 2)
	n.number(m, "xevBatteryCapacity", "battery_capacity", 2)
	n.number(m, "xevBatteryTemperature", "battery_temperature", 1)
	n.number(m, "xevBatteryVoltage", "battery_hv_voltage", 1)
	n.number(m, "xevBatteryIoCurrent", "battery_hv_current", 2)
	n.chargingPower(m)
	n.percent(m, "batteryStateOfCharge", "battery_12v_soc", 0)
	n.number(m, "batteryVoltage", "battery_12v_voltage", 2)
	if !n.number(m, "outsideTemperature", "outside_temperature", 1) {
		n.number(m, "ambientTemp", "outside_temperature", 1)
	}
	n.number(m, "engineCoolantTemp", "engine_coolant_temperature", 1)
	n.number(m, "engineSpeed", "engine_speed", 0)
	n.percent(m, "oilLifeRemaining", "oil_life", 0)
	n.heading(m)
	n.number(m, "speed", "speed", 1)
	n.word(m, "gearLeverPosition", "gear", nil)
	n.word(m, "ignitionStatus", "ignition", ignitionWords)
	n.word(m, "alarmStatus", "alarm", alarmWords)
	n.remoteStart(m)
	n.locks(m)
	n.doors(m)
	n.windows(m)
	n.tires(m)
	n.position(m)
	n.indicators(m)
}

// chargingPower is what the charger delivers: its output voltage times its
// output current, in watts; only where the car reports both.
func (n normalizer) chargingPower(m map[string]any) {
	v, okV := n.float(m, "xevBatteryChargerVoltageOutput")
	a, okA := n.float(m, "xevBatteryChargerCurrentOutput")
	if !okV || !okA {
		return
	}
	n.t.Fields["charging_power"] = Number(round(v*a, 0))
}

// heading reads the compass heading: an object {heading, uncertainty,
// detectionType} in current records, a bare number in older ones.
func (n normalizer) heading(m map[string]any) {
	raw, ok := m["heading"]
	if !ok {
		return
	}
	obj, _ := raw.(map[string]any)
	val := obj["value"]
	if inner, ok := val.(map[string]any); ok {
		val = inner["heading"]
	}
	f, ok := toFloat(val)
	if !ok || f < 0 || f > 360 {
		n.skip("heading")
		return
	}
	n.t.Fields["heading"] = Number(round(f, 1))
}

// indicators are the dashboard's warning lamps (metrics.indicators, each
// {value: bool, additionalInfo}): indicator_<name> is on or off.
func (n normalizer) indicators(m map[string]any) {
	raw, ok := m["indicators"]
	if !ok {
		return
	}
	all, ok := raw.(map[string]any)
	if !ok {
		n.skip("indicators")
		return
	}
	for name, e := range all {
		obj, _ := e.(map[string]any)
		on, ok := obj["value"].(bool)
		if !ok {
			continue
		}
		field := "indicator_" + snake(name)
		n.t.Fields[field] = Word(map[bool]string{true: "on", false: "off"}[on])
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
	for _, k := range strings.Fields(`odometer fuelLevel fuelRange xevBatteryStateOfCharge xevBatteryRange
		xevBatteryTimeToFullCharge xevPlugChargerStatus xevBatteryChargeDisplayStatus xevBatteryEnergyRemaining
		xevBatteryCapacity xevBatteryTemperature xevBatteryVoltage xevBatteryIoCurrent xevBatteryChargerVoltageOutput
		xevBatteryChargerCurrentOutput batteryStateOfCharge batteryVoltage outsideTemperature ambientTemp
		engineCoolantTemp engineSpeed oilLifeRemaining heading speed gearLeverPosition ignitionStatus alarmStatus
		remoteStartCountdownTimer doorLockStatus doorStatus hoodStatus windowStatus tirePressure position indicators
		acceleration acceleratorPedalPosition yawRate xevBatteryActualStateOfCharge xevBatteryMaximumRange
		xevBatteryPerformanceStatus xevChargeStationCommunicationStatus xevChargeStationPowerType
		xevBatteryChargerEnergyOutput xevTractionMotorVoltage xevTractionMotorCurrent tripXevBatteryRangeRegenerated
		tripXevBatteryChargeRegenerated tripXevBatteryDistanceAccumulated tirePressureStatus tirePressureSystemStatus
		seatBeltStatus compassDirection panicAlarmStatus batteryLoadStatus engineOilTemp dieselExhaustFilterStatus
		dieselExhaustFluidLevel deepSleepInProgress firmwareUpgradeInProgress customMetrics configurations
		brakePedalStatus parkingBrakeStatus torqueAtTransmission wheelTorqueStatus`) {
		knownMetrics[k] = true
	}
}

// unknown records the metrics no part of the parser knows, with the JSON
// type of their value.
func (n normalizer) unknown(m map[string]any) {
	for k, v := range m {
		if knownMetrics[k] {
			continue
		}
		if n.t.Unknown == nil {
			n.t.Unknown = map[string]string{}
		}
		if obj, ok := v.(map[string]any); ok {
			if val, ok := obj["value"]; ok {
				n.t.Unknown[k] = jsonType(val)
				continue
			}
		}
		n.t.Unknown[k] = jsonType(v)
	}
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

func (n normalizer) remoteStart(m map[string]any) {
	raw, ok := m["remoteStartCountdownTimer"]
	if !ok {
		return
	}
	obj, _ := raw.(map[string]any)
	f, ok := toFloat(obj["value"])
	if !ok {
		n.skip("remoteStartCountdownTimer")
		return
	}
	state := "off"
	if f > 0 {
		state = "on"
	}
	n.t.Fields["remote_start"] = Word(state)
	n.t.Fields["remote_start_remaining"] = Number(round(f, 0))
}

// list returns metrics[key] as a list of objects.
func (n normalizer) list(m map[string]any, key string) ([]map[string]any, bool) {
	raw, ok := m[key]
	if !ok {
		return nil, false
	}
	arr, ok := raw.([]any)
	if !ok {
		n.skip(key)
		return nil, false
	}
	out := make([]map[string]any, 0, len(arr))
	for _, e := range arr {
		if obj, ok := e.(map[string]any); ok {
			out = append(out, obj)
		}
	}
	return out, true
}

func (n normalizer) locks(m map[string]any) {
	entries, ok := n.list(m, "doorLockStatus")
	if !ok || len(entries) == 0 {
		return
	}
	isLocked := func(v string) bool { v = strings.ToUpper(v); return v == "LOCKED" || v == "DOUBLE_LOCKED" }
	for _, e := range entries {
		if s, _ := e["vehicleDoor"].(string); strings.EqualFold(s, "ALL_DOORS") {
			v, ok := e["value"].(string)
			if !ok {
				n.skip("doorLockStatus")
				return
			}
			n.setLock(isLocked(v), e)
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
		n.setLock(locked, entries[0])
	}
}

func (n normalizer) setLock(locked bool, e map[string]any) {
	state := "unlocked"
	if locked {
		state = "locked"
	}
	n.t.Fields["lock"] = Word(state)
}

// partName names a door or window from Ford's position fields.
func partName(e map[string]any, key string) string {
	part, _ := e[key].(string)
	side, _ := e["vehicleSide"].(string)
	part, side = strings.ToUpper(part), strings.ToUpper(side)
	switch part {
	case "UNSPECIFIED_FRONT", "FRONT":
		if side == "DRIVER" || side == "PASSENGER" {
			return strings.ToLower(side)
		}
		return "front"
	case "UNSPECIFIED_REAR", "REAR":
		if side == "DRIVER" || side == "PASSENGER" {
			return "rear_" + strings.ToLower(side)
		}
		return "rear"
	case "HOOD_DOOR":
		return "hood"
	case "":
		return ""
	}
	return sanitizeName(part)
}

// sanitizeName makes a topic-safe lower-case name.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return strings.Trim(b.String(), "_")
}

func (n normalizer) doors(m map[string]any) {
	if entries, ok := n.list(m, "doorStatus"); ok {
		for _, e := range entries {
			name := partName(e, "vehicleDoor")
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
			n.t.Fields["door_"+name] = Word(v)
		}
	}
	if raw, ok := m["hoodStatus"]; ok {
		obj, _ := raw.(map[string]any)
		v, ok := obj["value"].(string)
		if !ok {
			n.skip("hoodStatus")
			return
		}
		state := "open"
		if strings.EqualFold(v, "CLOSED") {
			state = "closed"
		}
		n.t.Fields["door_hood"] = Word(state)
	}
}

func (n normalizer) windows(m map[string]any) {
	entries, ok := n.list(m, "windowStatus")
	if !ok {
		return
	}
	for _, e := range entries {
		name := partName(e, "vehicleWindow")
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
		n.t.Fields["window_"+name] = Word(state)
	}
}

func (n normalizer) tires(m map[string]any) {
	entries, ok := n.list(m, "tirePressure")
	if !ok {
		return
	}
	for _, e := range entries {
		wheel, _ := e["vehicleWheel"].(string)
		f, ok := toFloat(e["value"])
		if wheel == "" || !ok {
			continue
		}
		field := "tire_pressure_" + sanitizeName(wheel)
		n.t.Fields[field] = Number(round(f, 1))
	}
}

func (n normalizer) position(m map[string]any) {
	raw, ok := m["position"]
	if !ok {
		return
	}
	obj, _ := raw.(map[string]any)
	val, _ := obj["value"].(map[string]any)
	loc, _ := val["location"].(map[string]any)
	lat, okLat := toFloat(loc["lat"])
	lon, okLon := toFloat(loc["lon"])
	if !okLat || !okLon || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		n.skip("position")
		return
	}
	n.t.Location = &Location{Latitude: round(lat, 6), Longitude: round(lon, 6)}
}

func (n normalizer) states(states map[string]any) {
	add := func(key string, raw any) {
		obj, ok := raw.(map[string]any)
		if !ok {
			return
		}
		id, _ := obj["commandId"].(string)
		val, _ := obj["value"].(map[string]any)
		to, _ := val["toState"].(string)
		if id == "" || to == "" {
			return
		}
		if n.t.Commands == nil {
			n.t.Commands = make(map[string]CommandState, 4)
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
		n.t.Commands[strings.TrimSuffix(key, "Command")] = cs
	}
	for k, v := range states {
		if k == "commands" {
			if nested, ok := v.(map[string]any); ok {
				for nk, nv := range nested {
					add(nk, nv)
				}
			}
			continue
		}
		add(k, v)
	}
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
