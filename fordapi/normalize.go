package fordapi

import (
	"cmp"
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

// Internal fields are kept in a Record but are not fields of the contract:
// the parts of the charging power and of the position.
const (
	internalChargerVolts = "_charger_volts"
	internalChargerAmps  = "_charger_amps"
	internalLatitude     = "_latitude"
	internalLongitude    = "_longitude"
	internalFinishAt     = "_finish_at"  // when the charge ends, if it runs
	internalDepartures   = "_departures" // the departure schedules, as JSON (Telemetry.Details)
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
			case f.List != nil:
				mk = f.List.reader
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
// under an internal name; Telemetry multiplies them into the field.
//
//go:noinline
func chargerPart(f *FieldSpec, metric string) func(*fieldWriter, any) {
	chargingPower = f
	hidden := internalChargerAmps
	if metric == f.From[0] {
		hidden = internalChargerVolts
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

// known reads a word Ford's map (FieldSpec.Ford) knows; any other is left
// out, so a true/false field never shows a third word.
func known(f *FieldSpec, _ string) func(*fieldWriter, any) {
	name, words := f.Name, f.Ford
	return func(w *fieldWriter, raw any) {
		obj, _ := raw.(map[string]any)
		s, _ := obj["value"].(string)
		if v, ok := words[strings.ToUpper(s)]; ok {
			w.set(name, Word(v))
		}
	}
}

// finishAt reads the time to full charge as the time it ends: the metric's
// own updateTime plus its minutes (so an update that leaves it alone
// leaves the time alone), kept internal until Telemetry knows whether the
// car charges.
func finishAt(_ *FieldSpec, _ string) func(*fieldWriter, any) {
	return func(w *fieldWriter, raw any) {
		obj, _ := raw.(map[string]any)
		at, ok := parseTime(obj["updateTime"])
		minutes, isNum := toFloat(obj["value"])
		if !ok || !isNum || minutes < 0 || minutes > 7*24*60 {
			return
		}
		w.set(internalFinishAt, Word(at.Add(time.Duration(minutes*float64(time.Minute))).UTC().Truncate(time.Second).Format(time.RFC3339)))
	}
}

// configuration reads one of the car's settings, a word under
// metrics.configurations (automaticSoftwareUpdateOptInSetting: {"value":
// "ON"}, as ha-fordpass fordpass_handler.py reads it); a record without the
// setting leaves the field out.
func configuration(name string) readMaker {
	return func(f *FieldSpec, metric string) func(*fieldWriter, any) {
		read := word(f, metric)
		return func(w *fieldWriter, raw any) {
			all, ok := raw.(map[string]any)
			if !ok {
				w.skipped = true
				return
			}
			if setting, ok := all[name]; ok {
				read(w, setting)
			}
		}
	}
}

// departureTimes reads whether the car's departure times are on, as
// ha-fordpass fordpass_handler.py (get_departure_times_state) does:
// configurations.xevDepartureSchedulesSetting is off when its
// departureScheduleFeatureStatus says OFF, else on when any schedule of any
// location is ON; a record without the setting leaves the field out. The
// schedules themselves go to Telemetry.Details (departure_schedule).
func departureTimes(f *FieldSpec, _ string) func(*fieldWriter, any) {
	name := f.Name
	return func(w *fieldWriter, raw any) {
		all, _ := raw.(map[string]any)
		setting, ok := all["xevDepartureSchedulesSetting"].(map[string]any)
		if !ok {
			return
		}
		value, _ := setting["value"].(map[string]any)
		feature, _ := value["departureScheduleFeatureStatus"].(string)
		list, anyOn := departureSchedules(value)
		if len(list) > 0 {
			data, _ := json.Marshal(map[string]any{"feature": strings.ToLower(Clip(cmp.Or(feature, "ON"), 10)), "schedules": list})
			w.set(internalDepartures, Word(string(data)))
		}
		w.set(name, Word(map[bool]string{true: "on", false: "off"}[anyOn && !strings.EqualFold(feature, "OFF")]))
	}
}

// departureSchedule is one of a car's departure times as the car reports
// it (configurations.xevDepartureSchedulesSetting: departureLocations[].
// departureSchedules[], read as ha-fordpass fordpass_handler.py does for
// its next-departure attribute).
type departureSchedule struct {
	Location any    `json:"location_id"`
	ID       any    `json:"schedule_id,omitempty"`
	Status   string `json:"status"`         // on or off
	Day      string `json:"day,omitempty"`  // MONDAY…SUNDAY
	Time     string `json:"time,omitempty"` // HH:MM
	TimeZone string `json:"time_zone,omitempty"`
}

// departureSchedules lists the setting's schedules (the first 50), and
// says whether any of them is ON.
func departureSchedules(value map[string]any) (out []departureSchedule, anyOn bool) {
	plain := func(v any) any {
		switch v := v.(type) {
		case string:
			return Clip(v, 40)
		case float64:
			return v
		}
		return nil
	}
	locations, _ := value["departureLocations"].([]any)
	for _, l := range locations {
		loc, _ := l.(map[string]any)
		schedules, _ := loc["departureSchedules"].([]any)
		for _, s := range schedules {
			sch, _ := s.(map[string]any)
			st, _ := sch["scheduleStatus"].(string)
			anyOn = anyOn || strings.EqualFold(st, "ON")
			if len(out) == 50 {
				continue
			}
			d := departureSchedule{Location: plain(loc["locationId"]), ID: plain(sch["scheduleId"]), Status: strings.ToLower(Clip(st, 10))}
			when, _ := sch["schedule"].(map[string]any)
			weekly, _ := when["weeklySchedule"].(map[string]any)
			day, _ := weekly["dayOfWeek"].(string)
			at, _ := weekly["timeOfDay"].(string)
			tz, _ := when["timeZone"].(string)
			d.Day, d.Time, d.TimeZone = Clip(strings.ToUpper(day), 10), Clip(at, 8), Clip(tz, 40)
			out = append(out, d)
		}
	}
	return out, anyOn
}

// customMetric reads one of the car's own signals (metrics.customMetrics),
// keyed "aui:signal:<id>:custom:<name>"; ha-fordpass fordpass_handler.py
// finds each by the name's end (the charge target: global-ac-target-soc;
// the AC current limit: global-ac-current-limit). A value outside lo..hi
// is left out.
func customMetric(name string, lo, hi float64) readMaker {
	suffix := "custom:" + name
	return func(f *FieldSpec, _ string) func(*fieldWriter, any) {
		field, digits := f.Name, f.Digits
		return func(w *fieldWriter, raw any) {
			all, ok := raw.(map[string]any)
			if !ok {
				w.skipped = true
				return
			}
			for key, e := range all {
				if !strings.HasSuffix(key, suffix) {
					continue
				}
				obj, _ := e.(map[string]any)
				if f, ok := toFloat(obj["value"]); ok && f >= lo && f <= hi {
					w.set(field, Number(round(f, digits)))
				}
			}
		}
	}
}

// reader reads one of the family's metrics (see List).
//
//go:noinline
func (l *List) reader(f *FieldSpec, metric string) func(*fieldWriter, any) {
	family := strings.TrimSuffix(f.Name, "_")
	if member, ok := l.Alone[metric]; ok {
		name := f.Name + member
		return func(w *fieldWriter, raw any) {
			obj, _ := raw.(map[string]any)
			if obj["value"] == nil {
				w.skipped = true
				return
			}
			if v, ok := l.Value(f, obj["value"]); ok {
				w.set(name, v)
			}
		}
	}
	if l.Part == "" {
		return func(w *fieldWriter, raw any) {
			all, ok := raw.(map[string]any)
			if !ok {
				w.skipped = true
				return
			}
			for key, e := range all {
				obj, _ := e.(map[string]any)
				if v, ok := l.Value(f, obj["value"]); ok {
					w.set(fieldName(family, key, "", func() string { return family + "_" + snake(key) }), v)
				}
			}
		}
	}
	return func(w *fieldWriter, raw any) {
		for _, e := range w.list(raw) {
			var name string
			if l.Sided {
				name = partField(e, family, l.Part)
			} else if part, _ := e[l.Part].(string); part != "" {
				name = fieldName(family, part, "", func() string { return family + "_" + snake(part) })
			}
			if v, ok := l.Value(f, e["value"]); ok && name != "" {
				w.set(name, v)
			}
		}
	}
}

// The values of list members.

// openUnlessClosed: Ford's CLOSED is the field's Off, any other word its
// On (AJAR is open); INVALID and UNKNOWN (mechanical latches) say nothing.
func openUnlessClosed(f *FieldSpec, v any) (Value, bool) {
	word, ok := v.(string)
	switch strings.ToUpper(word) {
	case "INVALID", "UNKNOWN":
		return Value{}, false
	case "CLOSED":
		return Word(f.Off), true
	}
	return Word(f.On), ok
}

// openUnlessShut: a window's opening as a range, {"doubleRange":
// {"lowerBound":0,"upperBound":0}} when shut.
func openUnlessShut(f *FieldSpec, v any) (Value, bool) {
	obj, _ := v.(map[string]any)
	dr, _ := obj["doubleRange"].(map[string]any)
	lo, okLo := toFloat(dr["lowerBound"])
	hi, okHi := toFloat(dr["upperBound"])
	if !okLo || !okHi {
		return Value{}, false
	}
	if lo != 0 || hi != 0 {
		return Word(f.On), true
	}
	return Word(f.Off), true
}

// listNumber is a number rounded to the field's digits.
func listNumber(f *FieldSpec, v any) (Value, bool) {
	n, ok := toFloat(v)
	return Number(round(n, f.Digits)), ok
}

// onWhenTrue: a lamp's true is the field's On.
func onWhenTrue(f *FieldSpec, v any) (Value, bool) {
	on, ok := v.(bool)
	if on {
		return Word(f.On), ok
	}
	return Word(f.Off), ok
}

// snake turns Ford's camelCase into snake_case (lowTirePressure →
// low_tire_pressure), and Ford's upper-case names into lower case
// (FRONT_LEFT → front_left).
func snake(s string) string {
	if strings.ToUpper(s) == s {
		return sanitizeName(s)
	}
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
	w.set(internalLatitude, Number(round(lat, 6)))
	w.set(internalLongitude, Number(round(lon, 6)))
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
	cs.FromState, _ = val["fromState"].(string)
	cs.At, _ = obj["timestamp"].(string)
	if msg, ok := obj["message"].(string); ok && len(msg) <= 4096 {
		cs.Message = msg
	}
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
