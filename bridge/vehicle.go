package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/discovery"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/both"
)

// vehicle is one bridged car: its telemetry loop, its last state and its
// command queue (one command at a time per car).
type vehicle struct {
	host   carHost
	set    carSettings
	vin    string
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{} // kick: try the stream now
	queue  commandQueue
	// snapshot is set when the next telemetry fetch is the first after a
	// sign-in: it is served from the sign-in share of the budget.
	snapshot atomic.Bool
	pubMu    sync.Mutex // serializes publishing, so the last state read is the last one sent
	discMu   sync.Mutex // serializes the car's discovery config, read and sent
	// What was last published (guarded by pubMu): the telemetry itself,
	// which is never changed once made, and the lock override shown then.
	// An update is diffed against it without formatting a single value,
	// and a car's state is held once, not copied per field.
	sent     *fordapi.Telemetry
	sentShow string
	climate  string // P/VIN/climate as last published ("" before a climate change)
	source   string // P/VIN/source as last published ("" with one backend)
	// The car's messages as last published: P/VIN/messages and their
	// count (-1 before the account's message centre was read).
	msgJSON  string
	msgCount int
	// extras are the car's reads besides telemetry (extras.go), by field.
	extras map[string]extraState

	mu          sync.Mutex
	meta        fordapi.Vehicle
	tel         *fordapi.Telemetry
	updated     time.Time // when the bridge last got data
	waiters     map[chan *fordapi.Telemetry]struct{}
	lockShow    string // locking / unlocking / jammed, shown instead of the car's lock state
	jamLock     string // lock value when jammed was set; a change clears jammed
	lastRefresh time.Time
	streaming   bool
	// missing: since when each field (and "location") the car reported
	// has been missing from Ford's answers; keepMissing keeps its value
	// for set.fieldGrace.
	missing map[string]time.Time

	hasMessages  atomic.Bool  // the account's message centre was read: the car shows its messages
	climateAsked atomic.Bool  // Ford was asked for the car's climate profile (readClimate)
	shownAvail   atomic.Value // the availability last published (a string), for the state JSON

	availMu sync.Mutex // held while the car's availability is decided and published
	dark    darkState
}

func newVehicle(host carHost, set carSettings, info fordapi.Vehicle) *vehicle {
	return &vehicle{host: host, set: set, vin: info.VIN, meta: info, done: make(chan struct{}), wake: make(chan struct{}, 1),
		waiters: map[chan *fordapi.Telemetry]struct{}{}, msgCount: -1}
}

// kick makes the car try its stream now (after a sign-in).
func (v *vehicle) kick() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

func (v *vehicle) info() fordapi.Vehicle {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.meta
}

func (v *vehicle) setInfo(info fordapi.Vehicle) {
	v.mu.Lock()
	v.meta = info
	v.mu.Unlock()
}

func (v *vehicle) lastUpdate() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.updated
}

func (v *vehicle) stop() {
	v.mu.Lock()
	cancel := v.cancel
	v.mu.Unlock()
	if cancel != nil {
		cancel()
		<-v.done
	}
}

// displacedRetry is how soon the car that streams takes its socket back
// after another car's socket closed it (one socket per token).
const displacedRetry = 2 * time.Second

// run is the vehicle's telemetry loop: the stream, whose first frame is the
// car's record; when the stream fails, polls until it can be opened again.
func (v *vehicle) run(parent context.Context) {
	h := v.host
	defer h.carStopped()
	ctx, cancel := context.WithCancel(parent)
	v.mu.Lock()
	v.cancel = cancel
	v.mu.Unlock()
	defer close(v.done)
	defer cancel()

	v.showKeptClimate()
	st := &runState{bo: backoff{min: v.set.backoffMin, max: v.set.backoffMax},
		streamBo: backoff{min: v.set.streamRetry, max: 30 * v.set.streamRetry}}
	for {
		if err := h.waitForFord(ctx); err != nil {
			return
		}
		if v.set.stream && h.mayStream(v.vin) && !h.clock().Before(st.nextStream) {
			if v.streamTurn(ctx, st) {
				return
			}
			continue
		}
		if !h.clock().Before(st.nextPoll) && v.pollTurn(ctx, st) {
			return
		}
		if v.sleep(ctx, st) {
			return
		}
	}
}

// runState is what a car's run carries from one turn to the next. The
// turns are methods of their own so that, while the car's goroutine waits
// on its socket, its stack holds the stream turn's frame and not the
// whole loop's: a fleet holds a thousand of these goroutines, and one
// whose stack stays under a quarter of 16 KB while it waits can be shrunk
// back to 8 KB after the socket's opening grew it.
type runState struct {
	bo, streamBo         backoff
	nextPoll, nextStream time.Time
	failedOver           bool // the stream is down for FordPass's own reason and the other backend was asked
	renewed              bool // a socket Ford closed for its token was reopened at once
}

// streamTurn streams the car until its socket closes; it reports whether
// the car stops (ctx ended).
func (v *vehicle) streamTurn(ctx context.Context, st *runState) (stop bool) {
	h := v.host
	// The socket's first frame is the car's whole record, so nothing that
	// changed before it opened is missed; every update it brings pushes the
	// next poll back.
	v.setStreaming(true)
	sctx := ctx
	if v.snapshot.Swap(false) {
		sctx = fordapi.ForSnapshot(ctx)
	}
	if v.failing() {
		sctx = fordapi.ForRetry(sctx)
	}
	err := h.fordAPI().Stream(sctx, v.vin, v.set.streamOpts, func(tel *fordapi.Telemetry) {
		st.streamBo.reset()
		st.failedOver, st.renewed = false, false
		select {
		case <-v.wake: // a kick for a stream that runs: moot
		default:
		}
		v.reached()
		v.publish(tel)
		st.nextPoll = h.clock().Add(h.pollInterval(v.vin))
		h.report(nil, &st.bo)
	})
	v.setStreaming(false)
	if ctx.Err() != nil {
		return true
	}
	v.streamClosed(err, st)
	return false
}

// streamClosed decides when a car whose socket closed with err tries its
// socket again.
func (v *vehicle) streamClosed(err error, st *runState) {
	h := v.host
	v.unreached(err)
	// A socket that closed is no news about the account: polling goes on
	// and says whether Ford is reachable. Only a dead token, a rate limit
	// or the budget change the state from here. With two backends, a
	// stream FordPass cannot give is the other backend's turn: the car is
	// asked now, and the backend says its own state.
	wait := time.Duration(0)
	switch {
	case errors.As(err, new(both.FordPassDownError)):
		if !st.failedOver {
			st.nextPoll, st.failedOver = h.clock(), true
		}
	case err != nil && !fordapi.IsTransient(err):
		wait = h.report(err, &st.bo)
	case errors.Is(err, fordapi.ErrStreamDisplaced) && h.mayStream(v.vin):
		// Ford allows one socket per token and another car's opened (a
		// poll that reads a socket): the car in use takes it back soon,
		// without a backoff.
		wait = displacedRetry
	case errors.Is(err, fordapi.ErrStreamUnauthorized) && !st.renewed:
		// Ford closed the socket because its token expired: reopening
		// renews it (once, for every car), and says at once whether the
		// sign-in still holds.
		st.renewed, wait = true, time.Nanosecond
	}
	if wait == 0 {
		wait = st.streamBo.next()
	}
	if v.failing() {
		wait = min(wait, v.set.darkRetry)
	}
	st.nextStream = h.clock().Add(wait)
	// Not logger().With: a child logger holds an encoder buffer of its own
	// for as long as the car runs (2 KB a car in a fleet).
	h.logger().Info("telemetry stream closed; polling until it reopens", zap.String("vin", fordapi.ShortVIN(v.vin)), zap.Error(err), zap.Time("reopen_at", st.nextStream))
}

// pollTurn reads the car's record once; it reports whether the car stops
// (ctx ended).
func (v *vehicle) pollTurn(ctx context.Context, st *runState) (stop bool) {
	h := v.host
	fctx := ctx
	if v.snapshot.Swap(false) {
		fctx = fordapi.ForSnapshot(ctx)
	}
	if v.failing() && !v.set.stream {
		fctx = fordapi.ForRetry(fctx)
	}
	tel, err := h.fordAPI().Telemetry(fctx, v.vin)
	if ctx.Err() != nil {
		return true
	}
	if err != nil {
		v.unreached(err)
	} else {
		v.reached()
	}
	wait := h.report(err, &st.bo)
	if err == nil {
		v.publish(tel)
		st.nextPoll = h.clock().Add(h.pollInterval(v.vin))
		if ign, _ := tel.Field(fordapi.FieldIgnition); ign.String() == "on" && v.set.stream && !h.mayStream(v.vin) {
			h.used(v.vin) // being driven: it streams, with one socket per token
		}
		return false
	}
	if errors.Is(err, fordapi.ErrVehicleNotAuthorized) {
		h.logger().Warn("Ford refuses this vehicle's data for this account; check the vehicle in the FordPass app", zap.String("vin", fordapi.ShortVIN(v.vin)), zap.Error(err))
	} else if !errors.Is(err, fordapi.ErrReauthRequired) {
		h.logger().Debug("telemetry fetch failed", zap.String("vin", fordapi.ShortVIN(v.vin)), zap.Error(err), zap.Duration("retry_in", wait))
	}
	if v.failing() && !v.set.stream {
		// The stream's retry is the probe where there is one (its first
		// frame is the whole record): polls keep their own backoff, so an
		// outage costs one try per DarkRetry, not two.
		wait = min(wait, v.set.darkRetry)
	}
	st.nextPoll = h.clock().Add(wait)
	return false
}

// sleep waits for the car's next poll or socket, or a kick; it reports
// whether the car stops (ctx ended).
func (v *vehicle) sleep(ctx context.Context, st *runState) (stop bool) {
	h := v.host
	wake := st.nextPoll
	if v.set.stream && h.mayStream(v.vin) && st.nextStream.Before(wake) {
		wake = st.nextStream
	}
	t := time.NewTimer(max(wake.Sub(h.clock()), 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true
	case <-v.wake:
		st.nextStream = h.clock()
		st.streamBo.reset()
	case <-t.C:
	}
	return false
}

func (v *vehicle) setStreaming(on bool) {
	v.mu.Lock()
	v.streaming = on
	if !on {
		// A command waiting on the stream polls from now on.
		for ch := range v.waiters {
			close(ch)
			delete(v.waiters, ch)
		}
	}
	v.mu.Unlock()
	v.host.streamingChanged(v.vin, on)
}

// publish sends the changed fields of a telemetry update and wakes
// commands waiting for it.
func (v *vehicle) publish(tel *fordapi.Telemetry) {
	h := v.host
	h.noteDrift(v.vin, tel)
	v.mu.Lock()
	tel = v.keepMissing(tel, h.clock())
	newFields := v.tel == nil || !sameNames(v.tel.Fields, tel.Fields) || (v.tel.Location == nil) != (tel.Location == nil) ||
		v.tel.UpdatedAt.IsZero() != tel.UpdatedAt.IsZero()
	v.tel = tel
	v.updated = h.clock()
	if v.lockShow == "jammed" && tel.Get(fordapi.FieldLock).String() != v.jamLock {
		v.lockShow = ""
	}
	for ch := range v.waiters {
		select {
		case ch <- tel:
		default:
		}
	}
	v.mu.Unlock()
	v.publishFields()
	if newFields {
		h.shapeChanged(v.vin, shapeOf(tel))
		if v.set.discovery {
			h.vehicleChanged(v) // this car's config only: a fleet must not rebuild every car's
		}
	}
}

// keepMissing gives tel the fields (and location) the car had before and
// this answer lacks, with their last values, until they have been missing
// for set.fieldGrace: one answer without a field (Ford dropped the
// odometer from FordConnect's answers for days, ha-fordconnect-query #48)
// must not blank what Home Assistant shows. A field gone longer leaves.
// The common case, nothing missing, allocates nothing; v.mu held.
func (v *vehicle) keepMissing(tel *fordapi.Telemetry, now time.Time) *fordapi.Telemetry {
	prev := v.tel
	if prev == nil {
		return tel
	}
	kept := func(name string) bool {
		since, ok := v.missing[name]
		if !ok {
			if v.missing == nil {
				v.missing = map[string]time.Time{}
			}
			v.missing[name], since = now, now
		}
		if now.Sub(since) < v.set.fieldGrace {
			return true
		}
		delete(v.missing, name) // it leaves now, and is not missed again
		return false
	}
	var out *fordapi.Telemetry
	j := 0
	for _, f := range prev.Fields {
		for j < len(tel.Fields) && tel.Fields[j].Name < f.Name {
			j++
		}
		if j < len(tel.Fields) && tel.Fields[j].Name == f.Name {
			continue
		}
		if !kept(f.Name) {
			continue
		}
		if out == nil {
			c := *tel
			out = &c
		}
		out = out.With(f.Name, f.Value)
	}
	if tel.Location == nil && prev.Location != nil && kept("location") {
		if out == nil {
			c := *tel
			out = &c
		}
		out.Location = prev.Location
	}
	if len(v.missing) > 0 {
		// What this answer has again is no longer missing.
		for name := range v.missing {
			if _, ok := tel.Field(name); ok || name == "location" && tel.Location != nil {
				delete(v.missing, name)
			}
		}
	}
	if out == nil {
		return tel
	}
	return out
}

// sameNames says whether two telemetries have the same fields (their
// discovery config would be the same): a door reported instead of another
// changes the config as much as one more door.
func sameNames(a, b []fordapi.Field) bool {
	return slices.EqualFunc(a, b, func(x, y fordapi.Field) bool { return x.Name == y.Name })
}

// publishFields publishes every changed field and, when anything changed,
// the state JSON. Unchanged values never reach the broker. A car's
// topics are not in the bridge's retained cache: what was last sent is
// v.sent, and eachRetained republishes it after a reconnect.
func (v *vehicle) publishFields() {
	h := v.host
	v.pubMu.Lock()
	defer v.pubMu.Unlock()
	v.mu.Lock()
	tel := v.tel
	show := v.lockShow
	v.mu.Unlock()
	if tel == nil {
		return
	}
	prev, prevShow := v.sent, v.sentShow
	if prev == nil {
		prev = &fordapi.Telemetry{}
	}
	v.sent, v.sentShow = tel, show
	changed := false
	j := 0 // prev.Fields is in name order too: one walk over both
	for _, f := range tel.Fields {
		name, val := f.Name, f.Value
		for j < len(prev.Fields) && prev.Fields[j].Name < name {
			// A field the car no longer reports: its retained topic is
			// cleared (its component leaves the device config too).
			h.publishRetained(h.fieldTopic(v.vin, prev.Fields[j].Name), "")
			changed = true
			j++
		}
		last, ok := fordapi.Value{}, false
		if j < len(prev.Fields) && prev.Fields[j].Name == name {
			last, ok = prev.Fields[j].Value, true
			j++
		}
		if name == fordapi.FieldLock && (show != "" || prevShow != "") {
			// An override goes out when it starts or changes, and the
			// car's own value when it ends.
			if payload := lockPayload(val, show); prevShow == "" || payload != prevShow {
				h.publishRetained(h.fieldTopic(v.vin, name), payload)
				changed = true
			}
			continue
		}
		if ok && last == val {
			continue // the common case, decided without formatting anything
		}
		h.publishRetained(h.fieldTopic(v.vin, name), val.String())
		changed = true
	}
	for ; j < len(prev.Fields); j++ { // after the last field: no longer reported
		h.publishRetained(h.fieldTopic(v.vin, prev.Fields[j].Name), "")
		changed = true
	}
	if prev.Location != nil && tel.Location == nil {
		h.publishRetained(h.fieldTopic(v.vin, "location"), "")
		changed = true
	}
	if tel.Location != nil && (prev.Location == nil || *prev.Location != *tel.Location) {
		loc, _ := json.Marshal(tel.Location)
		h.publishRetained(h.fieldTopic(v.vin, "location"), string(loc))
		changed = true
	}
	if !tel.UpdatedAt.IsZero() && !tel.UpdatedAt.Equal(prev.UpdatedAt) {
		h.publishRetained(h.fieldTopic(v.vin, "updated_at"), tel.UpdatedAt.Format(time.RFC3339))
		changed = true
	}
	for topic, doc := range tel.Details {
		if prev.Details[topic] != doc {
			h.publishRetained(h.fieldTopic(v.vin, topic), doc)
		}
	}
	for topic := range prev.Details {
		if _, ok := tel.Details[topic]; !ok {
			h.publishRetained(h.fieldTopic(v.vin, topic), "")
		}
	}
	if changed {
		h.publishRetained(h.fieldTopic(v.vin, "state"), string(v.stateLocked()))
	}
	if src, ok := h.fordAPI().(interface{ Source(vin string) string }); ok {
		// With two backends: which one the car's state now comes from.
		if s := src.Source(v.vin); s != "" && s != v.source {
			v.source = s
			h.publishRetained(h.fieldTopic(v.vin, sourceTopic), s)
		}
	}
}

// sourceTopic is the car's topic naming the backend its state comes from
// (P/VIN/source), with two backends.
const sourceTopic = "source"

// lockPayload is the lock topic's value: the command's override, if any.
func lockPayload(val fordapi.Value, show string) string {
	if show != "" {
		return show
	}
	return val.String()
}

// stateLocked is the state topic's JSON of what was last published, with
// the car's availability; pubMu held.
func (v *vehicle) stateLocked() []byte {
	avail, _ := v.shownAvail.Load().(string)
	return stateJSON(v.sent, v.sentShow, v.msgCount, avail)
}

// republishState publishes the state JSON again (the car's availability
// changed), once the car has published its state.
func (v *vehicle) republishState() {
	v.pubMu.Lock()
	defer v.pubMu.Unlock()
	if v.sent != nil {
		v.host.publishRetained(v.host.fieldTopic(v.vin, "state"), string(v.stateLocked()))
	}
}

// stateJSON is the state topic's JSON, keys in order, written directly: a map
// through encoding/json costs several times more on every update. msgs is
// the car's message count (-1: not known, left out); avail its
// availability ("" before it is known, left out).
func stateJSON(tel *fordapi.Telemetry, show string, msgs int, avail string) []byte {
	buf := make([]byte, 0, 64+24*len(tel.Fields))
	buf = append(buf, '{')
	for i, f := range tel.Fields { // in name order
		if i > 0 {
			buf = append(buf, ',')
		}
		name, val := f.Name, f.Value
		buf = strconv.AppendQuote(buf, name)
		buf = append(buf, ':')
		switch {
		case name == fordapi.FieldLock && show != "":
			buf = strconv.AppendQuote(buf, show)
		case val.IsNumber():
			buf = strconv.AppendFloat(buf, val.Float(), 'f', -1, 64)
		default:
			buf = strconv.AppendQuote(buf, val.String())
		}
	}
	if tel.Location != nil {
		loc, _ := json.Marshal(tel.Location)
		buf = append(buf, `,"location":`...)
		buf = append(buf, loc...)
	}
	if !tel.UpdatedAt.IsZero() {
		buf = append(buf, `,"updated_at":`...)
		buf = strconv.AppendQuote(buf, tel.UpdatedAt.Format(time.RFC3339))
	}
	if msgs >= 0 {
		buf = append(buf, `,"`+messagesField+`":`...)
		buf = strconv.AppendInt(buf, int64(msgs), 10)
	}
	if avail != "" {
		buf = append(buf, `,"availability":`...)
		buf = strconv.AppendQuote(buf, avail)
	}
	return append(buf, '}')
}

// setClimate publishes the car's climate profile (P/VIN/climate) and
// keeps it for the next start.
func (v *vehicle) setClimate(state string) {
	v.pubMu.Lock()
	defer v.pubMu.Unlock()
	v.climate = state
	v.host.publishRetained(v.host.fieldTopic(v.vin, climateTopic), state)
	v.host.keepClimate(v.vin, state)
}

// eachRetained calls f with every retained topic of the car and what was
// last published on it (to republish after a reconnect, or clear).
func (v *vehicle) eachRetained(f func(topic, payload string)) {
	v.pubMu.Lock()
	defer v.pubMu.Unlock()
	if v.climate != "" {
		f(v.host.fieldTopic(v.vin, climateTopic), v.climate)
	}
	if v.source != "" {
		f(v.host.fieldTopic(v.vin, sourceTopic), v.source)
	}
	if v.msgCount >= 0 {
		f(v.host.fieldTopic(v.vin, messagesTopic), v.msgJSON)
		f(v.host.fieldTopic(v.vin, messagesField), strconv.Itoa(v.msgCount))
	}
	v.eachExtraLocked(f)
	tel, show := v.sent, v.sentShow
	if tel == nil {
		return
	}
	h := v.host
	for _, field := range tel.Fields {
		payload := field.Value.String()
		if field.Name == fordapi.FieldLock {
			payload = lockPayload(field.Value, show)
		}
		f(h.fieldTopic(v.vin, field.Name), payload)
	}
	if tel.Location != nil {
		loc, _ := json.Marshal(tel.Location)
		f(h.fieldTopic(v.vin, "location"), string(loc))
	}
	if !tel.UpdatedAt.IsZero() {
		f(h.fieldTopic(v.vin, "updated_at"), tel.UpdatedAt.Format(time.RFC3339))
	}
	for topic, doc := range tel.Details {
		f(h.fieldTopic(v.vin, topic), doc)
	}
	f(h.fieldTopic(v.vin, "state"), string(v.stateLocked()))
}

// setLockShow overrides the lock topic while a command runs.
func (v *vehicle) setLockShow(show string) {
	v.mu.Lock()
	v.lockShow = show
	if show == "jammed" && v.tel != nil {
		v.jamLock = v.tel.Get(fordapi.FieldLock).String()
	}
	v.mu.Unlock()
	v.publishFields()
}

// watch registers for telemetry updates while a command waits.
func (v *vehicle) watch() (<-chan *fordapi.Telemetry, func()) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.streaming {
		return nil, func() {}
	}
	ch := make(chan *fordapi.Telemetry, 8)
	v.waiters[ch] = struct{}{}
	return ch, func() {
		v.mu.Lock()
		delete(v.waiters, ch)
		v.mu.Unlock()
	}
}

// field is a field's value as the car reports it now.
func (v *vehicle) field(name string) (fordapi.Value, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tel == nil {
		return fordapi.Value{}, false
	}
	return v.tel.Field(name)
}

// fieldNames are the fields the car reports now: before its first
// telemetry, only those read elsewhere (the messages, the reads besides
// telemetry kept from before a restart, which their commands need).
func (v *vehicle) fieldNames() []string {
	extra := v.extraFields() // before mu: pubMu comes first
	v.mu.Lock()
	defer v.mu.Unlock()
	var names []string
	if v.tel != nil {
		names = make([]string, len(v.tel.Fields), len(v.tel.Fields)+1+len(extra))
		for i, f := range v.tel.Fields {
			names[i] = f.Name
		}
	}
	if v.hasMessages.Load() {
		names = append(names, messagesField)
	}
	return append(names, extra...)
}

// applyOutcome shows a command's effect at once (the stream or the next
// poll confirms it); effect may be nil.
func (v *vehicle) applyOutcome(effect func(*fordapi.Telemetry, map[string]any) *fordapi.Telemetry, props map[string]any) {
	v.mu.Lock()
	if v.tel == nil || effect == nil {
		v.mu.Unlock()
		return
	}
	v.tel = effect(v.tel, props)
	v.mu.Unlock()
	v.publishFields()
}

// discoveryInfo describes the vehicle for Home Assistant: from its
// telemetry, or before that from the shape it had before (a restart); ok is
// false while neither is known, so no device is published without its
// fields.
func (v *vehicle) discoveryInfo() (info discovery.VehicleInfo, ok bool) {
	extra := v.extraFields() // before mu: pubMu comes first
	v.mu.Lock()
	defer v.mu.Unlock()
	info = discovery.VehicleInfo{VIN: v.vin, Name: v.meta.DisplayName(), Model: v.meta.Model, Year: v.meta.Year, EV: v.meta.EV}
	sh, ok := v.host.carShape(v.vin)
	if v.tel != nil {
		sh, ok = shapeOf(v.tel), true
	}
	if !ok {
		return info, false
	}
	info.Fields, info.HasLocation, info.HasUpdatedAt = sh.Fields, sh.Location, sh.UpdatedAt
	if v.hasMessages.Load() {
		info.Fields = append(slices.Clip(info.Fields), messagesField)
	}
	info.Fields = append(slices.Clip(info.Fields), extra...)
	info.Fields = slices.DeleteFunc(slices.Clone(info.Fields), func(f string) bool {
		spec, _, ok := fordapi.SpecOf(f)
		return ok && spec.Without != "" && v.meta.Can.Has(spec.Without)
	})
	_, info.HasSource = v.host.fordAPI().(*both.Backend)
	// The commands this car can run and the user allows: the lock entity
	// for the ones that show on the lock, a button for the others.
	for _, c := range commandSpecs {
		if !c.runsOn(v.meta) || !c.offered(info.Fields) || !v.set.allowed(c.name) {
			continue
		}
		switch c.showing {
		case "locking":
			info.Lock, info.LockPress[0] = true, c.name
		case "unlocking":
			info.Lock, info.LockPress[1] = true, c.name
		}
		if c.sets != "" {
			if info.Settable == nil {
				info.Settable = map[string]string{}
			}
			info.Settable[c.sets] = c.name
		}
		if c.button.Key != "" {
			b := c.button
			if b.Press == "" {
				b.Press = c.name
			}
			info.Buttons = append(info.Buttons, b)
			info.Buttons = append(info.Buttons, c.more...)
		}
		if c.controls != nil {
			info.Controls = append(info.Controls, c.controls(v.meta)...)
		}
	}
	return info, true
}
