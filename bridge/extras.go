package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordconnect"
)

// Reads besides telemetry: per car, now and then (Options.ExtrasEvery),
// each one call in the telemetry share, made only after the cars' first
// telemetry and when the budget's pace has a call free, and kept in
// STATE_DIR (extras.json) so a restart shows them at once and reads Ford
// again only when they are that old. Each shows Ford's answer as JSON at
// P/VIN/<details> (its entity's attributes) and a field made from it.

// extraSpec is one such read, in one row.
type extraSpec struct {
	field string // the field it makes: a row of fordapi's field table, whose Details is its JSON's topic
	// fordConnect: read through FordConnect (FORD_BACKEND fordconnect or
	// both, for a consented car); else through FordPass.
	fordConnect bool
	applies     func(fordapi.Vehicle) bool // nil: every car
	read        func(ctx context.Context, f *fleet, vin string) (extraRead, error)
}

// extraReader is a backend with FordConnect's other reads (FordConnect
// alone, or both).
type extraReader interface {
	Extra(ctx context.Context, vin, name string) (json.RawMessage, error)
}

// extraRead is what a read shows, and what a command needs of it.
type extraRead struct {
	Shown json.RawMessage `json:"shown"` // a JSON object: P/VIN/<details>
	Value string          `json:"value"` // the field's payload
	Ford  json.RawMessage `json:"ford,omitempty"`
}

// extraState is a read as kept: when, and what it showed, or why Ford has
// nothing of it for the car (a 403 or 404 of FordConnect; read again after
// ExtrasEvery, never shown).
type extraState struct {
	extraRead
	ReadAt time.Time `json:"read_at"`
	NotFor string    `json:"not_for,omitempty"`
}

var extraSpecs = []extraSpec{
	{field: fordapi.FieldChargeLocations, applies: isEV, read: readChargeLocations},
	{field: "health_alerts", fordConnect: true, read: fordConnectExtra("health_alerts", countAlerts)},
	{field: "departure_schedules_read", fordConnect: true, applies: isEV, read: fordConnectExtra("departure_schedules", nil)},
	{field: "charge_schedules_read", fordConnect: true, applies: isEV, read: fordConnectExtra("charge_schedules", nil)},
}

// extraTopic is the topic under the car of a spec's JSON.
func (s extraSpec) topic() string {
	spec, _, _ := fordapi.SpecOf(s.field)
	return spec.Details
}

// extrasFile keeps every car's reads.
const extrasFile = "extras.json"

// readChargeLocations reads the car's saved charging locations: their
// count, and each one's name, charge target and mode.
func readChargeLocations(ctx context.Context, f *fleet, vin string) (extraRead, error) {
	var list []fordapi.ChargeLocation
	err := f.ford.FordPass(func(c *fordapi.Client) error {
		var err error
		list, err = c.ChargeLocations(ctx, vin)
		return err
	})
	if err != nil {
		return extraRead{}, err
	}
	return chargeLocationsRead(list), nil
}

func chargeLocationsRead(list []fordapi.ChargeLocation) extraRead {
	shown, _ := json.Marshal(map[string]any{"locations": list})
	raw := make([]json.RawMessage, len(list))
	for i, l := range list {
		raw[i] = l.Ford
	}
	ford, _ := json.Marshal(raw)
	return extraRead{Shown: shown, Value: strconv.Itoa(len(list)), Ford: ford}
}

// chargeLocations are the car's locations as last read (nil: none read).
func (v *vehicle) chargeLocations() []fordapi.ChargeLocation {
	v.pubMu.Lock()
	st, ok := v.extras[fordapi.FieldChargeLocations]
	v.pubMu.Unlock()
	if !ok || st.NotFor != "" {
		return nil
	}
	var shown struct {
		Locations []fordapi.ChargeLocation `json:"locations"`
	}
	var raw []json.RawMessage
	if json.Unmarshal(st.Shown, &shown) != nil || json.Unmarshal(st.Ford, &raw) != nil || len(raw) != len(shown.Locations) {
		return nil
	}
	for i := range shown.Locations {
		shown.Locations[i].Ford = raw[i]
	}
	return shown.Locations
}

// maxExtraJSON bounds what one read shows; a larger answer is shown as
// too large.
const maxExtraJSON = 32 << 10

// fordConnectExtra reads one of fordconnect.Client.Extra. Ford's answer is
// shown as it is, as ioBroker.ford does, an array wrapped as {"items":…}
// (Home Assistant's attributes are an object) and cut to the car's own
// entries where they name a car (vin or vehicleId, ioBroker's
// resolveVin). The field is count's number made from the answer, or,
// without count, the time it was read.
func fordConnectExtra(name string, count func(json.RawMessage) string) func(context.Context, *fleet, string) (extraRead, error) {
	return func(ctx context.Context, f *fleet, vin string) (extraRead, error) {
		x, ok := f.ford.(extraReader)
		if !ok {
			return extraRead{}, &fordconnect.NotForCarError{Endpoint: "fcon_" + name, Status: 404}
		}
		body, err := x.Extra(ctx, vin, name)
		if err != nil {
			return extraRead{}, err
		}
		shown := ownEntries(body, vin)
		if len(shown) > maxExtraJSON {
			shown = json.RawMessage(`{"error":"Ford's answer is over 32 KB and is not shown"}`)
		}
		r := extraRead{Shown: shown, Value: f.now().UTC().Format(time.RFC3339)}
		if count != nil {
			r.Value = count(body)
		}
		return r, nil
	}
}

// ownEntries is an answer as an object: an array becomes {"items":…},
// without the entries that name another car.
func ownEntries(body json.RawMessage, vin string) json.RawMessage {
	var list []json.RawMessage
	if json.Unmarshal(body, &list) != nil {
		return body
	}
	mine := make([]json.RawMessage, 0, len(list))
	for _, item := range list {
		var who struct {
			VIN       string `json:"vin"`
			VehicleID string `json:"vehicleId"`
		}
		_ = json.Unmarshal(item, &who)
		if (who.VIN == "" || who.VIN == vin) && (who.VehicleID == "" || who.VehicleID == vin) {
			mine = append(mine, item)
		}
	}
	out, _ := json.Marshal(map[string]any{"items": mine})
	return out
}

// countAlerts counts the active alerts as ha-fordconnect-query's reader
// (commented out, __init__.py) would find them: VehicleAlertList[].
// ActiveAlerts[]; "" (unknown) when the answer has no such list.
func countAlerts(body json.RawMessage) string {
	var a struct {
		List []struct {
			Active []json.RawMessage `json:"ActiveAlerts"`
		} `json:"VehicleAlertList"`
	}
	if json.Unmarshal(body, &a) != nil || a.List == nil {
		return ""
	}
	n := 0
	for _, e := range a.List {
		n += len(e.Active)
	}
	return strconv.Itoa(n)
}

// readTurn waits for a turn to make a read besides the cars' state: once
// every car has its first state (or ten ExtrasDelays after the first ask,
// so a dark car holds nothing up for long), then ExtrasDelay later, then
// one turn per ExtrasGap, in the order asked. A fleet's start then asks
// Ford once per car, and its climate profiles and locations follow at a
// polite pace rather than in a burst.
func (f *fleet) readTurn(ctx context.Context) error {
	f.mu.Lock()
	if f.turnsAsked.IsZero() {
		f.turnsAsked = f.now()
	}
	asked := f.turnsAsked
	f.mu.Unlock()
	for !f.carsRead() && f.now().Sub(asked) < 10*f.opts.ExtrasDelay {
		if err := sleep(ctx, min(time.Second, f.opts.ExtrasDelay)); err != nil {
			return err
		}
	}
	f.mu.Lock()
	if f.turnsFrom.IsZero() {
		f.turnsFrom = f.now().Add(f.opts.ExtrasDelay)
	}
	at := f.turnsFrom
	if next := f.lastTurn.Add(f.opts.ExtrasGap); next.After(at) {
		at = next
	}
	f.lastTurn = at
	f.mu.Unlock()
	return sleep(ctx, at.Sub(f.now()))
}

// extrasLoop makes the account's reads besides telemetry when they are
// due.
func (f *fleet) extrasLoop(ctx context.Context) {
	defer f.saveExtrasIfDue(true) // what was read before the shutdown
	for {
		// Looked at again at least every ExtrasDelay: a car that joins
		// later (a new sign-in, a longer list) has its reads then, not
		// ExtrasEvery later.
		next := f.now().Add(min(f.opts.ExtrasEvery, max(f.opts.ExtrasDelay, time.Second)))
		if !f.carsRead() {
			next = f.now().Add(time.Second)
		} else {
			for _, v := range f.cars() {
				if v.needsClimateRead() {
					if f.readTurn(ctx) != nil || f.auth.gate.wait(ctx, f.now) != nil {
						return
					}
					v.readClimate(ctx)
				}
				for _, spec := range extraSpecs {
					due, ok := f.extraDue(v, spec)
					if !ok {
						continue
					}
					if due.After(f.now()) {
						next = minTime(next, due)
						continue
					}
					if f.readTurn(ctx) != nil || f.auth.gate.wait(ctx, f.now) != nil {
						return
					}
					// FordPass's budget paces FordPass's reads; FordConnect's
					// client keeps FordConnect's own pace.
					if at := f.ford.Budget().NextAllowed(fordapi.ClassTelemetry); !spec.fordConnect && at.After(f.now()) {
						next = minTime(next, at)
						continue
					}
					if retry := f.readExtra(ctx, v, spec); !retry.IsZero() {
						next = minTime(next, retry)
					}
					f.saveExtrasIfDue(false)
					if ctx.Err() != nil {
						return
					}
				}
			}
		}
		f.saveExtrasIfDue(true) // the pass is over
		if sleep(ctx, next.Sub(f.now())) != nil {
			return
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// extraDue says when the car's read of spec is due, and whether the car
// has it at all (its backend, its kind of car).
func (f *fleet) extraDue(v *vehicle, spec extraSpec) (time.Time, bool) {
	_, fordConnect := f.ford.(extraReader)
	switch {
	case spec.fordConnect && !fordConnect,
		!spec.fordConnect && f.cfg.Backend == config.BackendFordConnect,
		spec.applies != nil && !spec.applies(v.info()):
		return time.Time{}, false
	}
	v.pubMu.Lock()
	st, ok := v.extras[spec.field]
	v.pubMu.Unlock()
	if !ok {
		return time.Time{}, true
	}
	return st.ReadAt.Add(f.opts.ExtrasEvery), true
}

// readExtra makes one read and shows it; retry is when to try again
// sooner than ExtrasEvery (zero: not sooner).
func (f *fleet) readExtra(ctx context.Context, v *vehicle, spec extraSpec) (retry time.Time) {
	r, err := spec.read(ctx, f, v.vin)
	var nf *fordconnect.NotForCarError
	var be *fordapi.BudgetError
	var rl *fordapi.RateLimitError
	switch {
	case ctx.Err() != nil:
		return time.Time{}
	case err == nil:
		v.setExtra(spec, extraState{extraRead: r, ReadAt: f.now().UTC()})
	case errors.As(err, &nf):
		f.log.Info("FordConnect has none of this for the car; asked again later", zap.String("vin", fordapi.ShortVIN(v.vin)),
			zap.String("read", spec.field), zap.String("why", nf.Error()))
		v.setExtra(spec, extraState{ReadAt: f.now().UTC(), NotFor: nf.Error()})
	case errors.Is(err, fordapi.ErrReauthRequired):
		f.auth.report(err, &backoff{}) // the gate holds the next read until a sign-in
		return f.now()
	case errors.As(err, &be):
		return be.RetryAt
	case errors.As(err, &rl):
		// Ford's pace: the cars' state goes first; this waits.
		return rl.RetryAt
	default:
		// Not the sign-in's fault: what is shown is kept, and read again
		// next time.
		f.log.Warn("a read besides telemetry failed; what is shown is kept", zap.String("vin", fordapi.ShortVIN(v.vin)),
			zap.String("read", spec.field), zap.Error(err))
		v.pubMu.Lock()
		st := v.extras[spec.field]
		v.pubMu.Unlock()
		st.ReadAt = f.now().UTC()
		v.setExtra(spec, st)
	}
	f.extrasDirty.Store(true)
	return time.Time{}
}

// extrasSaveEvery bounds how often the loop writes extras.json while it
// reads: a fleet's first pass makes a read per car a second, and writing
// the whole file after each would write it a thousand times.
const extrasSaveEvery = 30 * time.Second

// saveExtrasIfDue writes extras.json when reads changed it and it was
// written extrasSaveEvery ago (now: whenever they changed it).
func (f *fleet) saveExtrasIfDue(now bool) {
	f.extrasSave.Lock()
	defer f.extrasSave.Unlock()
	if f.extrasDirty.Load() && (now || f.now().Sub(f.extrasSavedAt) >= extrasSaveEvery) {
		f.saveExtrasLocked()
	}
}

// saveExtras writes every car's reads to extras.json.
func (f *fleet) saveExtras() {
	f.extrasSave.Lock()
	defer f.extrasSave.Unlock()
	f.saveExtrasLocked()
}

func (f *fleet) saveExtrasLocked() {
	f.extrasDirty.Store(false)
	f.extrasSavedAt = f.now()
	all := map[string]map[string]extraState{}
	for _, v := range f.cars() {
		v.pubMu.Lock()
		if len(v.extras) > 0 {
			m := make(map[string]extraState, len(v.extras))
			for k, st := range v.extras {
				m[k] = st
			}
			all[v.vin] = m
		}
		v.pubMu.Unlock()
	}
	data, _ := json.Marshal(all)
	if err := fordapi.WriteFileAtomic(filepath.Join(f.cfg.StateDir, extrasFile), data); err != nil {
		f.log.Warn("cannot keep the reads besides telemetry in STATE_DIR; a restart makes them again", zap.Error(err))
	}
}

// loadExtras are the reads kept in STATE_DIR, by car (nil: none).
func (f *fleet) loadExtras() map[string]map[string]extraState {
	data, err := os.ReadFile(filepath.Join(f.cfg.StateDir, extrasFile))
	if err != nil {
		return nil
	}
	var all map[string]map[string]extraState
	if json.Unmarshal(data, &all) != nil {
		f.log.Warn("extras.json in STATE_DIR is damaged; the reads besides telemetry are made again")
		return nil
	}
	return all
}

// setExtra keeps and publishes a read of the car: its JSON and its field
// (cleared when Ford has none for the car).
func (v *vehicle) setExtra(spec extraSpec, st extraState) {
	h := v.host
	v.pubMu.Lock()
	old, had := v.extras[spec.field]
	if v.extras == nil {
		v.extras = map[string]extraState{}
	}
	v.extras[spec.field] = st
	shown := func(s extraState) bool { return s.NotFor == "" && s.Shown != nil }
	entity := shown(st) != (had && shown(old))
	if shown(st) && (!had || string(old.Shown) != string(st.Shown) || old.Value != st.Value || !shown(old)) {
		h.publishRetained(h.fieldTopic(v.vin, spec.topic()), string(st.Shown))
		h.publishRetained(h.fieldTopic(v.vin, spec.field), st.Value)
	} else if !shown(st) && had && shown(old) {
		h.publishRetained(h.fieldTopic(v.vin, spec.topic()), "")
		h.publishRetained(h.fieldTopic(v.vin, spec.field), "")
	}
	v.pubMu.Unlock()
	if entity && v.set.discovery {
		h.vehicleChanged(v) // the entity joins or leaves the device
	}
}

// extraFields are the fields the car's reads besides telemetry show.
func (v *vehicle) extraFields() []string {
	v.pubMu.Lock()
	defer v.pubMu.Unlock()
	var out []string
	for _, spec := range extraSpecs {
		if st, ok := v.extras[spec.field]; ok && st.NotFor == "" && st.Shown != nil {
			out = append(out, spec.field)
		}
	}
	return out
}

// eachExtra calls f with the topics of the car's reads and their payloads
// (pubMu held).
func (v *vehicle) eachExtraLocked(f func(topic, payload string)) {
	for _, spec := range extraSpecs {
		if st, ok := v.extras[spec.field]; ok && st.NotFor == "" && st.Shown != nil {
			f(v.host.fieldTopic(v.vin, spec.topic()), string(st.Shown))
			f(v.host.fieldTopic(v.vin, spec.field), st.Value)
		}
	}
}
