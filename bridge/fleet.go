package bridge

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/both"
)

const instanceFile = "instance"

// InstanceID returns the id of the installation whose state is in dir,
// creating it the first time.
func InstanceID(dir string) (string, error) {
	path := filepath.Join(dir, instanceFile)
	if data, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(data))) >= 8 {
		return strings.TrimSpace(string(data)), nil
	}
	buf := make([]byte, 6)
	if _, err := cryptorand.Read(buf); err != nil {
		return "", err
	}
	id := hex.EncodeToString(buf)
	if err := fordapi.WriteFileAtomic(path, []byte(id+"\n")); err != nil {
		return "", err
	}
	return id, nil
}

// fleet is the bridged cars and what the bridge knows of the account: it
// keeps Ford's vehicle list and runs a worker for each car on it.
type fleet struct {
	*core
	ford    fordapi.Backend
	auth    *authSide
	pub     *publisher
	shapes  *shapes
	workers *sync.WaitGroup
	host    carHost     // what each car runs with
	set     carSettings // and its settings
	// changed runs after the bridged cars changed (P/bridge/info and the
	// discovery configs follow).
	changed func()
	// takenBy names another account that bridges a car ("" if none): a
	// car on two accounts belongs to the first that took it.
	takenBy func(vin string) string
	wake    chan struct{} // a new sign-in: ask for the list now
	// snapshotDue: the next vehicle list and each car's next telemetry are
	// the first snapshot after a sign-in.
	snapshotDue atomic.Bool

	mu       sync.Mutex
	vehicles map[string]*vehicle // running workers by VIN
	list     []fordapi.Vehicle   // the bridged cars (the account's, filtered by FORD_VINS)
	account  Account             // the account's cars as last seen, kept in STATE_DIR
	nextList time.Time           // when to ask Ford for the list again
	stale    map[string]struct{} // VINs whose device config must be cleared
	// active is the car that streams while Ford allows one socket per
	// token: the car last used ("" or a car gone: the first bridged car).
	active string
	// messages are the account's message centre as last read (messages.go).
	messages     []fordapi.Message
	messagesRead bool
	messagesAt   time.Time // when they were read
	// kept are the reads besides telemetry kept in STATE_DIR, by car
	// (extras.go), read once at the start.
	kept map[string]map[string]extraState
	// extras.json: written one at a time (extrasSave, which also guards
	// extrasSavedAt), and whether reads changed it since.
	extrasSave    sync.Mutex
	extrasSavedAt time.Time
	extrasDirty   atomic.Bool
	// The turns of the reads besides the cars' state (readTurn): since
	// when a turn was first asked for, from when turns are given, and the
	// last one given.
	turnsAsked, turnsFrom, lastTurn time.Time
}

// oneSocket says whether Ford allows one telemetry socket per token now
// (fordapi.SocketBinder): one car streams, the others are polled.
func (f *fleet) oneSocket() bool {
	b, ok := f.ford.(fordapi.SocketBinder)
	return ok && b.OneSocket()
}

// mayStream says whether the car may hold a socket: every car may, unless
// Ford allows one socket per token; then the active car alone.
func (f *fleet) mayStream(vin string) bool {
	if !f.oneSocket() {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.activeLocked() == vin
}

// activeLocked is the car that streams with one socket per token; f.mu
// held.
func (f *fleet) activeLocked() string {
	if _, ok := f.vehicles[f.active]; ok {
		return f.active
	}
	for _, v := range f.list {
		if _, ok := f.vehicles[v.VIN]; ok {
			return v.VIN
		}
	}
	return ""
}

// used makes the car the one that streams while Ford allows one socket
// per token: a command was sent to it, or a poll found it running. Its
// socket opens now, and closes the other car's.
func (f *fleet) used(vin string) {
	f.mu.Lock()
	prev := f.activeLocked()
	f.active = vin
	v := f.vehicles[vin]
	f.mu.Unlock()
	if prev != vin && v != nil && f.oneSocket() {
		f.log.Info("one socket per sign-in: this car streams now, the others are read on the poll interval",
			zap.String("vin", fordapi.ShortVIN(vin)), zap.String("before", fordapi.ShortVIN(prev)))
		v.kick()
	}
}

// signedIn makes the next vehicle list and each car's next telemetry the
// first after a sign-in, and asks for the list now.
func (f *fleet) signedIn() {
	f.snapshotDue.Store(true)
	select {
	case f.wake <- struct{}{}:
	default:
	}
	// A car whose stream waits for its next try opens it now: the sign-in
	// may be what it was waiting for.
	for _, v := range f.cars() {
		v.kick()
	}
}

// bridgedVINs are the VINs of the bridged cars, in the list's order.
func (f *fleet) bridgedVINs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	vins := make([]string, 0, len(f.list))
	for _, v := range f.list {
		vins = append(vins, v.VIN)
	}
	return vins
}

// staleVINs are the cars whose device configs must be cleared.
func (f *fleet) staleVINs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Collect(maps.Keys(f.stale))
}

// loadVehicleCache takes the account's cars from STATE_DIR: they are
// bridged at once, and Ford's list is asked for when the cache is older
// than the list's lifetime.
func (f *fleet) loadVehicleCache() {
	a, err := ReadAccount(f.cfg.StateDir)
	if err != nil {
		f.log.Warn("ignoring the vehicle cache; the list is asked of Ford", zap.Error(err))
		return
	}
	list := f.filter(a.Vehicles) // not under f.mu: it asks the other accounts
	f.mu.Lock()
	f.account = a
	f.list = list
	if !a.FetchedAt.IsZero() && !a.FetchedAt.After(f.now()) {
		f.nextList = a.FetchedAt.Add(f.opts.VehicleListTTL)
	}
	f.mu.Unlock()
}

// filter keeps the cars of FORD_VINS (FORD_VINS_<NAME>; all when empty)
// that no other account bridges.
func (f *fleet) filter(list []fordapi.Vehicle) []fordapi.Vehicle {
	out := make([]fordapi.Vehicle, 0, len(list))
	for _, v := range list {
		if len(f.cfg.VINs) > 0 && !slices.Contains(f.cfg.VINs, v.VIN) {
			continue
		}
		if other := f.takenBy(v.VIN); other != "" {
			f.log.Warn("a car on this account is bridged by another account already; name it in one account's FORD_VINS_<NAME> to choose",
				zap.String("vin", fordapi.ShortVIN(v.VIN)), zap.String("bridged_by", other))
			continue
		}
		out = append(out, v)
	}
	return out
}

// accountLoop keeps the vehicle list and the vehicle workers in step.
func (f *fleet) accountLoop(ctx context.Context) {
	f.mu.Lock()
	cached, known := f.list, f.account.vins()
	f.mu.Unlock()
	if len(known) > 0 {
		f.reconcile(ctx, cached, known, false)
	}
	bo := &backoff{min: f.opts.BackoffMin, max: f.opts.BackoffMax}
	for {
		if err := f.auth.gate.wait(ctx, f.now); err != nil {
			return
		}
		f.mu.Lock()
		next := f.nextList
		f.mu.Unlock()
		snapshot := f.snapshotDue.Swap(false)
		if !f.now().Before(next) || snapshot {
			lctx := ctx
			if snapshot {
				lctx = fordapi.ForSnapshot(ctx)
			}
			list, err := f.ford.Vehicles(lctx)
			if ctx.Err() != nil {
				return
			}
			if d := f.auth.report(err, bo); err != nil {
				if snapshot {
					f.snapshotDue.Store(true)
				}
				if !errors.Is(err, fordapi.ErrReauthRequired) {
					f.log.Warn("cannot get the vehicle list; the cars known are kept", zap.Error(err), zap.Duration("retry_in", d))
				}
				if sleep(ctx, d) != nil {
					return
				}
				continue
			}
			next = f.listAnswered(ctx, list, snapshot)
		}
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-time.After(next.Sub(f.now())):
		}
	}
}

// listAnswered takes Ford's vehicle list: the account is updated and saved
// (an empty list keeps every car, see account.answered), and the workers
// follow. It returns when to ask again.
func (f *fleet) listAnswered(ctx context.Context, all []fordapi.Vehicle, snapshot bool) time.Time {
	now := f.now()
	f.mu.Lock()
	before := f.account
	f.mu.Unlock()
	a, removed := before.answered(all, now)
	next := now.Add(f.opts.VehicleListTTL)
	switch {
	case len(all) == 0 && len(before.Vehicles) > 0:
		next = now.Add(f.opts.EmptyListRetry)
		f.m.vehicleListEmpty()
		f.log.Warn("Ford answered the vehicle list with no vehicles; this is Ford's answer, not a setting: the cars known are kept and streamed, and the list is asked for again within the hour",
			zap.Int("kept", len(before.Vehicles)), zap.Int("empty_answers", a.EmptyAnswers))
	case len(all) == 0:
		next = now.Add(f.opts.EmptyListRetry)
		f.m.vehicleListEmpty()
		f.log.Warn("the FordPass account has no vehicles; if the FordPass app shows them, FORD_REGION may be wrong; asking again within the hour")
	}
	for vin, since := range a.MissingSince {
		if before.MissingSince[vin].IsZero() {
			f.log.Warn("a car is missing from Ford's vehicle list; it is kept, and removed only if it is still missing after 7 days (or when FORD_VINS leaves it out)",
				zap.String("vin", fordapi.ShortVIN(vin)), zap.Time("remove_after", since.Add(MissingGrace)))
		}
	}
	for _, vin := range removed {
		f.log.Info("a car has been missing from Ford's vehicle list for 7 days; removing it", zap.String("vin", fordapi.ShortVIN(vin)))
	}
	if err := a.Write(f.cfg.StateDir); err != nil {
		f.log.Warn("cannot cache the vehicle list", zap.Error(err))
	}
	list := f.filter(a.Vehicles)
	if len(list) == 0 && len(a.Vehicles) > 0 {
		f.log.Warn("none of the account's vehicles is in FORD_VINS", zap.Int("on_account", len(a.Vehicles)))
	}
	f.mu.Lock()
	f.account, f.nextList = a, next
	f.mu.Unlock()
	f.reconcile(ctx, list, append(before.vins(), removed...), snapshot)
	return next
}

// reconcile starts workers for the cars in list and stops the others; the
// cars of known (the account's, as seen before) that are not in list have
// their device configs and retained topics cleared. snapshot marks the
// first fetch of every bridged car as the first snapshot after a sign-in.
func (f *fleet) reconcile(ctx context.Context, list []fordapi.Vehicle, known []string, snapshot bool) {
	keep := map[string]bool{}
	for _, info := range list {
		keep[info.VIN] = true
	}
	f.mu.Lock()
	f.list = list
	for _, vin := range known {
		if !keep[vin] {
			f.stale[vin] = struct{}{}
		}
	}
	var started []*vehicle
	for _, info := range list {
		delete(f.stale, info.VIN)
		if v, ok := f.vehicles[info.VIN]; ok {
			v.setInfo(info)
			if snapshot {
				v.snapshot.Store(true)
			}
			continue
		}
		v := newVehicle(f.host, f.set, info)
		v.snapshot.Store(snapshot)
		f.vehicles[info.VIN] = v
		started = append(started, v)
	}
	var removed []*vehicle
	for vin, v := range f.vehicles {
		if !keep[vin] {
			removed = append(removed, v)
			delete(f.vehicles, vin)
			f.stale[vin] = struct{}{}
		}
	}
	f.mu.Unlock()
	for _, v := range removed {
		f.log.Info("vehicle left the account or FORD_VINS; removing it", zap.String("vin", fordapi.ShortVIN(v.vin)))
		v.stop()
		v.eachRetained(func(topic, _ string) { f.pub.publishRetained(topic, "") })
		v.eachAvailability(func(topic, _ string) { f.pub.publishRetained(topic, "") })
		f.shapes.forget(v.vin)
	}
	f.mu.Lock()
	msgs, read := f.messages, f.messagesRead
	f.mu.Unlock()
	for _, v := range started {
		f.log.Info("bridging vehicle", zap.String("vin", fordapi.ShortVIN(v.vin)), zap.String("name", v.info().DisplayName()))
		if read {
			v.setMessages(msgs)
		}
		for _, spec := range extraSpecs {
			if st, ok := f.kept[v.vin][spec.field]; ok {
				v.setExtra(spec, st) // a restart shows what was read before
			}
		}
		delete(f.kept, v.vin) // the car holds them now (only this goroutine reads kept)
		f.workers.Add(1)
		go v.run(ctx)
	}
	f.changed()
}

func (f *fleet) vehicle(vin string) *vehicle {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vehicles[vin]
}

// cars lists the bridged cars.
func (f *fleet) cars() []*vehicle {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs := make([]*vehicle, 0, len(f.vehicles))
	for _, v := range f.vehicles {
		vs = append(vs, v)
	}
	return vs
}

// pollInterval is how long after a read the car vin is polled again:
// FORD_POLL_INTERVAL stretched so that polling every vehicle of the
// account fits the share of the daily budget that is not kept for
// commands. FordConnect's client paces its own requests, so a car read
// through FordConnect (FORD_BACKEND=fordconnect, or both while FordPass
// cannot give it) is polled at FORD_POLL_INTERVAL as it is: FordPass's
// budget is not spent on it.
func (f *fleet) pollInterval(vin string) time.Duration {
	if f.cfg.Backend == config.BackendFordConnect {
		return f.cfg.PollInterval
	}
	if d, ok := f.ford.(*both.Backend); ok && d.ReadsThroughFordConnect(vin) {
		return f.cfg.PollInterval
	}
	f.mu.Lock()
	n := len(f.vehicles)
	f.mu.Unlock()
	if f.oneSocket() && n > 1 {
		// The cars that do not stream are polled, and a poll that reads a
		// socket closes the streaming car's, which reopens: two calls.
		return max(f.cfg.PollInterval, f.ford.Budget().PollEvery(2*(n-1)))
	}
	return max(f.cfg.PollInterval, f.ford.Budget().PollEvery(n))
}
