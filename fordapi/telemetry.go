package fordapi

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Value is one normalised telemetry value: a number or a lower-case word.
// It takes 24 bytes, not 32 with a flag of its own: a fleet holds two
// copies of every car's sixty-odd fields (its record, and what it last
// published), 1 MB less for the load harness's thousand cars.
type Value struct {
	bits uint64 // a number's bits XOR numMark; 0 for a word (the zero Value is no number)
	str  string
}

// numMark is the pattern of a NaN that no stored number has, Number
// storing every NaN as math.NaN(): a number's bits XOR numMark are never 0.
const numMark = 0x7ff4_0000_0000_0bad

// Number makes a numeric Value.
func Number(f float64) Value {
	if f != f {
		f = math.NaN()
	}
	return Value{bits: math.Float64bits(f) ^ numMark}
}

// Word makes an enum Value (lower-case word).
func Word(s string) Value { return Value{str: s} }

// IsNumber reports whether v is numeric.
func (v Value) IsNumber() bool { return v.bits != 0 }

// Float returns the number (0 for words).
func (v Value) Float() float64 {
	if v.bits == 0 {
		return 0
	}
	return math.Float64frombits(v.bits ^ numMark)
}

// String is the MQTT payload: a JSON number or the bare word.
func (v Value) String() string {
	if v.IsNumber() {
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	}
	return v.str
}

// MarshalJSON writes numbers as numbers and words as strings.
func (v Value) MarshalJSON() ([]byte, error) {
	if v.IsNumber() {
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
	// FromState, At (Ford's timestamp) and Message (a JSON text some
	// states carry, such as a software update's) as Ford wrote them.
	FromState, At, Message string
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
	UpdatedAt time.Time // Ford's own timestamp of the record
	// Fields are odometer, fuel_level, lock, door_driver, …, sorted by
	// name, each name once. A sorted slice rather than a map: a car keeps
	// its last Telemetry, and a map of sixty fields takes 6.5 KB where the
	// slice takes 2.9 KB.
	Fields   []Field
	Location *Location
	// Details are JSON documents a field's entity shows as its attributes,
	// by their topic under the car (FieldSpec.Details): the software
	// update's ("ota") and the departure schedules ("departure_schedule").
	// Never changed once handed out.
	Details map[string]string
	// Commands are the command states the record shows, one per command
	// type (lock, remoteStart, …), in type order. A slice, not a map: a
	// car keeps its last Telemetry, and a map of two states takes 1 KB.
	Commands []CommandEntry
	// Skipped names the metrics that were present but of an unexpected
	// shape; they are left out rather than failing the update.
	Skipped []string
	// Unknown maps the metrics this parser does not know to the JSON type
	// of their value ("number", "object", …; never the value itself): what
	// Ford added or renamed since this version.
	Unknown map[string]string
}

// CommandEntry is the state of one type of command.
type CommandEntry struct {
	Type  string
	State CommandState
}

// Command returns the state the record shows of the command of type typ.
func (t *Telemetry) Command(typ string) (CommandState, bool) { return commandIn(t.Commands, typ) }

func commandIn(list []CommandEntry, typ string) (CommandState, bool) {
	for _, c := range list {
		if c.Type == typ {
			return c.State, true
		}
	}
	return CommandState{}, false
}

// Field is one normalised field.
type Field struct {
	Name  string
	Value Value
}

// Field returns the named field's value, and whether the car reported it.
func (t *Telemetry) Field(name string) (Value, bool) {
	i := t.search(name)
	if i == len(t.Fields) || t.Fields[i].Name != name {
		return Value{}, false
	}
	return t.Fields[i].Value, true
}

// search is where name is or belongs in t.Fields. (Written out rather than
// slices.BinarySearchFunc and slices.Insert: their copies for Field weigh
// kilobytes of the binary.)
func (t *Telemetry) search(name string) int {
	lo, hi := 0, len(t.Fields)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t.Fields[mid].Name < name {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// Get returns the named field's value (the zero Value, which prints as "",
// when the car did not report it).
func (t *Telemetry) Get(name string) Value {
	v, _ := t.Field(name)
	return v
}

// With returns a copy of t with one field set (added in order if absent).
func (t *Telemetry) With(name string, v Value) *Telemetry { return t.with(name, v, true) }

// with sets a field, in a copy or (clone false, for a Telemetry not yet
// handed out) in t itself.
func (t *Telemetry) with(name string, v Value, clone bool) *Telemetry {
	c := t
	if clone {
		dup := *t
		dup.Fields = slices.Clone(t.Fields)
		c = &dup
	}
	i := c.search(name)
	if i < len(c.Fields) && c.Fields[i].Name == name {
		c.Fields[i].Value = v
		return c
	}
	c.Fields = append(c.Fields, Field{})
	copy(c.Fields[i+1:], c.Fields[i:])
	c.Fields[i] = Field{Name: name, Value: v}
	return c
}

// Document is a telemetry record, or a websocket delta, in Ford's own JSON
// shape as decoded by encoding/json.
type Document = map[string]any

// Record is a vehicle's telemetry between websocket deltas, kept compact: not
// Ford's document but, per metric, the fields it normalised to. A delta
// replaces the metrics it names, so its work is proportional to its size,
// and a fleet keeps a few kilobytes per car instead of the decoded JSON.
// A Record is not safe for concurrent use.
type Record struct {
	updated time.Time
	// fields are what each metric gave, in the order of readers, in one
	// array: readers[i]'s are fields[ends[i-1]:ends[i]]. A fleet keeps a
	// record per car for as long as it runs; one array and a list of ends
	// leave the heap less fragmented than a slice per metric.
	fields  []Field
	ends    []uint32
	order   []uint32  // fields' indices in name order (stable); nil: to be made again
	pending [][]Field // while NewRecord reads a whole document
	skipped uint64    // bit i: readers[i]'s metric has an unexpected shape
	unknown map[string]string
	states  map[string][]typedCommand // by key in states
	// What Telemetry last handed out of unknown and states (nil: to be
	// made again). Handed-out maps are never changed, so each update shares
	// them until unknown or states change, which is rare.
	unknownOut  map[string]string // shares unknown until it changes
	commandsOut []CommandEntry
	otaOut      *OTA   // what the command states say of the software update, made with commandsOut
	otaJSON     string // otaOut as JSON ("" when nil)
	zoneLights  string // what the power mode event says of zone lighting ("": nothing)
	// detailsOut is what Telemetry last handed out as Details, made again
	// only when what it is made of changes (otaOut, the schedules).
	detailsOut  map[string]string
	detailsFrom [2]string
	// changed: since ApplyChanged began, something Telemetry shows moved.
	changed bool
}

type typedCommand struct {
	typ   string
	state CommandState
}

// NewRecord builds a Record from a whole telemetry document (whose command
// states' metrics ParseTelemetry has already weighed against the record's).
func NewRecord(doc Document) *Record {
	r := &Record{pending: make([][]Field, len(readers))}
	r.apply(doc, false)
	n := 0
	for _, o := range r.pending {
		n += len(o)
	}
	r.fields, r.ends = make([]Field, 0, n), make([]uint32, len(readers))
	for i, o := range r.pending {
		r.fields = append(r.fields, o...)
		r.ends[i] = uint32(len(r.fields))
	}
	r.pending = nil
	return r
}

// setFields replaces what readers[i]'s metric gave.
func (r *Record) setFields(i int, out []Field) {
	if r.pending != nil {
		r.pending[i] = out
		return
	}
	start, end := 0, int(r.ends[i])
	if i > 0 {
		start = int(r.ends[i-1])
	}
	if end-start == len(out) { // the common case: the same fields, new values
		for k := range out {
			if cur := r.fields[start+k]; cur.Name != out[k].Name {
				r.order, r.changed = nil, true
				break
			} else if cur.Value != out[k].Value {
				r.changed = true
			}
		}
		copy(r.fields[start:end], out)
		return
	}
	r.order, r.changed = nil, true
	fields := make([]Field, 0, len(r.fields)-(end-start)+len(out))
	fields = append(append(append(fields, r.fields[:start]...), out...), r.fields[end:]...)
	for j := i; j < len(r.ends); j++ {
		r.ends[j] = uint32(int(r.ends[j]) + len(out) - (end - start))
	}
	r.fields = fields
}

// ParseTelemetry decodes a telemetry JSON record and normalises it.
func ParseTelemetry(data []byte) (*Record, *Telemetry, error) {
	doc, err := decodeRecord(data)
	if err != nil {
		return nil, nil, err
	}
	r := NewRecord(doc)
	return r, r.Telemetry(), nil
}

// decodeRecord decodes a whole telemetry record, its command states'
// metrics weighed against the record's own (liftCommandMetrics).
func decodeRecord(data []byte) (Document, error) {
	var doc Document
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if states, ok := doc["states"].(map[string]any); ok {
		liftCommandMetrics(doc, states)
	}
	return doc, nil
}

// liftCommandMetrics merges the metrics that a command state carries when it
// succeeded (states.<x>Command.value.metrics, as after statusRefresh) into a
// whole REST document's metrics, where they are newer than the record's own.
func liftCommandMetrics(doc Document, states map[string]any) {
	eachSuccessMetrics(states, func(fresh map[string]any) {
		metrics, ok := doc["metrics"].(map[string]any)
		if !ok {
			metrics = map[string]any{}
			doc["metrics"] = metrics
		}
		for k, v := range fresh {
			if !newer(v, metrics[k]) {
				continue
			}
			if v == nil {
				delete(metrics, k)
			} else {
				metrics[k] = v
			}
		}
	})
}

// eachSuccessMetrics calls f with the metrics of every command state that
// succeeded, in states and in states.commands.
func eachSuccessMetrics(states map[string]any, f func(map[string]any)) {
	visit := func(raw any) {
		obj, _ := raw.(map[string]any)
		val, _ := obj["value"].(map[string]any)
		fresh, _ := val["metrics"].(map[string]any)
		to, _ := val["toState"].(string)
		if len(fresh) > 0 && (CommandState{ToState: to}).Outcome() == "success" {
			f(fresh)
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

// ApplyChanged is Apply, and says whether anything Telemetry shows may have
// changed: a field's value, the record's time, a command state, what was
// skipped or unknown. A delta that changes nothing (Ford resending a value
// as it was) needs no Telemetry, so no new telemetry is made for it.
func (r *Record) ApplyChanged(delta Document) bool {
	r.changed = false
	r.apply(delta, true)
	return r.changed
}

// Apply merges a websocket "_data" delta the way the FordPass app does: key
// by key in metrics and states (states.commands as a whole); a null value
// removes the key, and metrics that is not an object removes them all.
// Only the metrics the delta names are normalised again. The metrics of a
// command state that succeeded are merged like any delta.
func (r *Record) Apply(delta Document) { r.apply(delta, true) }

func (r *Record) apply(delta Document, lift bool) {
	if r.ends == nil && r.pending == nil {
		r.ends = make([]uint32, len(readers))
	}
	if raw, ok := delta["updateTime"]; ok {
		was := r.updated
		r.updated, _ = parseTime(raw)
		r.changed = r.changed || !r.updated.Equal(was)
	}
	if raw, ok := delta["metrics"]; ok {
		metrics, isMap := raw.(map[string]any)
		if !isMap {
			r.clearMetrics()
		}
		for k, v := range metrics {
			r.setMetric(k, v)
		}
	}
	if raw, ok := delta["events"]; ok {
		was := r.zoneLights
		r.zoneLights = zoneLightsOf(raw, r.zoneLights)
		r.changed = r.changed || r.zoneLights != was
	}
	if raw, ok := delta["states"]; ok {
		r.commandsOut, r.changed = nil, true
		states, isMap := raw.(map[string]any)
		if !isMap {
			r.states = nil
		}
		for k, v := range states {
			cmds := commandStates(k, v)
			if len(cmds) == 0 {
				delete(r.states, k)
				continue
			}
			if r.states == nil {
				r.states = map[string][]typedCommand{}
			}
			r.states[k] = cmds
		}
		if lift {
			eachSuccessMetrics(states, func(fresh map[string]any) {
				for k, v := range fresh {
					r.setMetric(k, v)
				}
			})
		}
	}
}

func (r *Record) clearMetrics() {
	for i := range readers {
		r.setFields(i, nil)
	}
	r.skipped, r.unknown, r.unknownOut, r.changed = 0, nil, nil, true
}

// setMetric normalises metric k again (raw nil: removes it).
func (r *Record) setMetric(k string, raw any) {
	if is, ok := readerOf[k]; ok {
		before := r.skipped
		for _, i := range is {
			r.skipped &^= 1 << i
			if raw == nil {
				r.setFields(i, nil)
				continue
			}
			var w fieldWriter
			readers[i].read(&w, raw)
			r.setFields(i, w.out)
			if w.skipped {
				r.skipped |= 1 << i
			}
		}
		r.changed = r.changed || r.skipped != before
		return
	}
	if knownMetrics[k] {
		return
	}
	if raw == nil {
		if _, ok := r.unknown[k]; ok {
			r.ownUnknown()
			delete(r.unknown, k)
			r.changed = true
		}
		return
	}
	if typ := metricType(raw); r.unknown[k] != typ {
		r.ownUnknown()
		if r.unknown == nil {
			r.unknown = map[string]string{}
		}
		r.unknown[k] = typ
		r.changed = true
	}
}

// ownUnknown readies r.unknown for a change: while a Telemetry handed out
// shares it (unknownOut), it is copied first. Shared, a car holds the map
// once rather than twice.
func (r *Record) ownUnknown() {
	if r.unknownOut != nil {
		r.unknown, r.unknownOut = maps.Clone(r.unknown), nil
	}
}

// Telemetry is the record's state, normalised; the caller may keep it.
func (r *Record) Telemetry() *Telemetry {
	t := &Telemetry{UpdatedAt: r.updated, Fields: make([]Field, 0, len(r.fields)+1)}
	if r.order == nil {
		// Made again only when the names change, not on every update.
		// An insertion sort: stable, and small in code and in time for
		// the fifty-odd fields of a car.
		r.order = make([]uint32, len(r.fields))
		for i := range r.order {
			j := i
			for ; j > 0 && r.fields[r.order[j-1]].Name > r.fields[i].Name; j-- {
				r.order[j] = r.order[j-1]
			}
			r.order[j] = uint32(i)
		}
	}
	var volts, amps, lat, lon, finish, departures *Value
	for k, i := range r.order {
		f := &r.fields[i]
		if k+1 < len(r.order) && r.fields[r.order[k+1]].Name == f.Name {
			continue // a later metric (in readers) gives this field too
		}
		switch f.Name {
		case internalChargerVolts:
			volts = &f.Value
		case internalChargerAmps:
			amps = &f.Value
		case internalFinishAt:
			finish = &f.Value
		case internalDepartures:
			departures = &f.Value
		case internalLatitude:
			lat = &f.Value
		case internalLongitude:
			lon = &f.Value
		default:
			t.Fields = append(t.Fields, *f)
		}
	}
	if volts != nil && amps != nil {
		t = t.with(chargingPower.Name, Number(round(volts.Float()*amps.Float(), chargingPower.Digits)), false)
	}
	if lat != nil && lon != nil {
		t.Location = &Location{Latitude: lat.Float(), Longitude: lon.Float()}
	}
	t = t.withCharge(finish)
	for i := range readers {
		if r.skipped&(1<<i) != 0 {
			t.Skipped = append(t.Skipped, readers[i].metric)
		}
	}
	sort.Strings(t.Skipped)
	t.Skipped = slices.Compact(t.Skipped) // a metric two fields are read from
	if r.unknownOut == nil && len(r.unknown) > 0 {
		r.unknownOut = r.unknown // copied at its next change (ownUnknown)
	}
	if r.commandsOut == nil {
		// Each type once: a later key in states (in name order) wins.
		for _, key := range slices.Sorted(maps.Keys(r.states)) {
			for _, c := range r.states[key] {
				i := slices.IndexFunc(r.commandsOut, func(e CommandEntry) bool { return e.Type == c.typ })
				if i < 0 {
					r.commandsOut = append(r.commandsOut, CommandEntry{Type: c.typ})
					i = len(r.commandsOut) - 1
				}
				r.commandsOut[i].State = c.state
			}
		}
		slices.SortFunc(r.commandsOut, func(a, b CommandEntry) int { return strings.Compare(a.Type, b.Type) })
		r.commandsOut = slices.Clip(r.commandsOut)
		r.otaOut, r.otaJSON = otaOf(r.commandsOut), ""
		if r.otaOut != nil {
			data, _ := json.Marshal(r.otaOut)
			r.otaJSON = string(data)
		}
	}
	t.Unknown, t.Commands = r.unknownOut, r.commandsOut
	if r.zoneLights != "" {
		t = t.with(FieldZoneLights, Word(r.zoneLights), false)
	}
	ota, deps := r.otaJSON, ""
	if r.otaOut != nil {
		t = t.with(FieldOTAStatus, Word(r.otaOut.State), false)
	}
	if departures != nil {
		deps = departures.String()
	}
	if from := [2]string{ota, deps}; from != r.detailsFrom {
		r.detailsFrom, r.detailsOut = from, nil
		if ota != "" || deps != "" {
			r.detailsOut = make(map[string]string, 2)
		}
		if ota != "" {
			r.detailsOut[otaDetails] = ota
		}
		if deps != "" {
			r.detailsOut[departureDetails] = deps
		}
	}
	t.Details = r.detailsOut
	return t
}

// withCharge adds what plugged and charging make: the IEC 61851 status (A
// unplugged, B plugged, C charging) and, while the car charges, when the
// charge ends (finish; empty when it does not charge).
func (t *Telemetry) withCharge(finish *Value) *Telemetry {
	plugged, okP := t.Field(FieldPlugged)
	charging, okC := t.Field(FieldCharging)
	if okP {
		iec := "B"
		switch {
		case plugged.String() != "true":
			iec = "A"
		case okC && charging.String() == "true":
			iec = "C"
		}
		t = t.with(FieldIECStatus, Word(iec), false)
	}
	if finish != nil {
		at := Word("")
		if okC && charging.String() == "true" {
			at = *finish
		}
		t = t.with(FieldChargeFinishAt, at, false)
	}
	return t
}
