package bridge

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
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

// loadVehicleCache takes the account's cars from STATE_DIR: they are
// bridged at once, and Ford's list is asked for when the cache is older
// than the list's lifetime.
func (b *Bridge) loadVehicleCache() {
	a, err := readAccount(b.cfg.StateDir)
	if err != nil {
		b.log.Warn("ignoring the vehicle cache; the list is asked of Ford", zap.Error(err))
		return
	}
	b.fleet.Lock()
	b.fleet.account = a
	b.fleet.list = b.filter(a.Vehicles)
	if !a.FetchedAt.IsZero() && !a.FetchedAt.After(b.now()) {
		b.fleet.nextList = a.FetchedAt.Add(b.opts.VehicleListTTL)
	}
	b.fleet.Unlock()
}

func (b *Bridge) filter(list []fordapi.Vehicle) []fordapi.Vehicle {
	if len(b.cfg.VINs) == 0 {
		return list
	}
	out := make([]fordapi.Vehicle, 0, len(list))
	for _, v := range list {
		if slices.Contains(b.cfg.VINs, v.VIN) {
			out = append(out, v)
		}
	}
	return out
}

// accountLoop keeps the vehicle list and the vehicle workers in step.
func (b *Bridge) accountLoop(ctx context.Context) {
	defer b.workers.Done()
	b.fleet.Lock()
	cached, known := b.fleet.list, b.fleet.account.vins()
	b.fleet.Unlock()
	if len(known) > 0 {
		b.reconcile(cached, known, false)
	}
	bo := &backoff{min: b.opts.BackoffMin, max: b.opts.BackoffMax}
	for {
		if err := b.auth.gate.wait(ctx, b.now); err != nil {
			return
		}
		b.fleet.Lock()
		next := b.fleet.nextList
		b.fleet.Unlock()
		snapshot := b.snapshotDue.Swap(false)
		if !b.now().Before(next) || snapshot {
			lctx := ctx
			if snapshot {
				lctx = fordapi.ForSnapshot(ctx)
			}
			list, err := b.ford.Vehicles(lctx)
			if ctx.Err() != nil {
				return
			}
			if d := b.auth.report(err, bo); err != nil {
				if snapshot {
					b.snapshotDue.Store(true)
				}
				if !errors.Is(err, fordapi.ErrReauthRequired) {
					b.log.Warn("cannot get the vehicle list; the cars known are kept", zap.Error(err), zap.Duration("retry_in", d))
				}
				if sleep(ctx, d) != nil {
					return
				}
				continue
			}
			next = b.listAnswered(list, snapshot)
		}
		select {
		case <-ctx.Done():
			return
		case <-b.listWake:
		case <-time.After(next.Sub(b.now())):
		}
	}
}

// listAnswered takes Ford's vehicle list: the account is updated and saved
// (an empty list keeps every car, see account.answered), and the workers
// follow. It returns when to ask again.
func (b *Bridge) listAnswered(all []fordapi.Vehicle, snapshot bool) time.Time {
	now := b.now()
	b.fleet.Lock()
	before := b.fleet.account
	b.fleet.Unlock()
	a, removed := before.answered(all, now)
	next := now.Add(b.opts.VehicleListTTL)
	switch {
	case len(all) == 0 && len(before.Vehicles) > 0:
		next = now.Add(b.opts.EmptyListRetry)
		b.m.vehicleListEmpty()
		b.log.Warn("Ford answered the vehicle list with no vehicles; this is Ford's answer, not a setting: the cars known are kept and streamed, and the list is asked for again within the hour",
			zap.Int("kept", len(before.Vehicles)), zap.Int("empty_answers", a.EmptyAnswers))
	case len(all) == 0:
		next = now.Add(b.opts.EmptyListRetry)
		b.m.vehicleListEmpty()
		b.log.Warn("the FordPass account has no vehicles; if the FordPass app shows them, FORD_REGION may be wrong; asking again within the hour")
	}
	for vin, since := range a.MissingSince {
		if before.MissingSince[vin].IsZero() {
			b.log.Warn("a car is missing from Ford's vehicle list; it is kept, and removed only if it is still missing after 7 days (or when FORD_VINS leaves it out)",
				zap.String("vin", fordapi.ShortVIN(vin)), zap.Time("remove_after", since.Add(missingGrace)))
		}
	}
	for _, vin := range removed {
		b.log.Info("a car has been missing from Ford's vehicle list for 7 days; removing it", zap.String("vin", fordapi.ShortVIN(vin)))
	}
	if err := a.write(b.cfg.StateDir); err != nil {
		b.log.Warn("cannot cache the vehicle list", zap.Error(err))
	}
	list := b.filter(a.Vehicles)
	if len(list) == 0 && len(a.Vehicles) > 0 {
		b.log.Warn("none of the account's vehicles is in FORD_VINS", zap.Int("on_account", len(a.Vehicles)))
	}
	b.fleet.Lock()
	b.fleet.account, b.fleet.nextList = a, next
	b.fleet.Unlock()
	b.reconcile(list, append(before.vins(), removed...), snapshot)
	return next
}

// reconcile starts workers for the cars in list and stops the others; the
// cars of known (the account's, as seen before) that are not in list have
// their device configs and retained topics cleared. snapshot marks the
// first fetch of every bridged car as the first snapshot after a sign-in.
func (b *Bridge) reconcile(list []fordapi.Vehicle, known []string, snapshot bool) {
	keep := map[string]bool{}
	for _, info := range list {
		keep[info.VIN] = true
	}
	b.fleet.Lock()
	b.fleet.list = list
	for _, vin := range known {
		if !keep[vin] {
			b.fleet.stale[vin] = struct{}{}
		}
	}
	var started []*vehicle
	for _, info := range list {
		delete(b.fleet.stale, info.VIN)
		if v, ok := b.fleet.vehicles[info.VIN]; ok {
			v.setInfo(info)
			if snapshot {
				v.snapshot.Store(true)
			}
			continue
		}
		v := newVehicle(b, info)
		v.snapshot.Store(snapshot)
		b.fleet.vehicles[info.VIN] = v
		started = append(started, v)
	}
	var removed []*vehicle
	for vin, v := range b.fleet.vehicles {
		if !keep[vin] {
			removed = append(removed, v)
			delete(b.fleet.vehicles, vin)
			b.fleet.stale[vin] = struct{}{}
		}
	}
	b.fleet.Unlock()
	for _, v := range removed {
		b.log.Info("vehicle left the account or FORD_VINS; removing it", zap.String("vin", fordapi.ShortVIN(v.vin)))
		v.stop()
		v.eachRetained(func(topic, _ string) { b.publishRetained(topic, "") })
		v.eachAvailability(func(topic, _ string) { b.publishRetained(topic, "") })
		b.shapes.forget(v.vin)
	}
	for _, v := range started {
		b.log.Info("bridging vehicle", zap.String("vin", fordapi.ShortVIN(v.vin)), zap.String("name", v.info().DisplayName()))
		b.workers.Add(1)
		go v.run(b.workCtx)
	}
	b.publishInfo(false)
	if b.cfg.HADiscovery {
		b.publishDiscovery(false)
	}
}

func (b *Bridge) vehicle(vin string) *vehicle {
	b.fleet.Lock()
	defer b.fleet.Unlock()
	return b.fleet.vehicles[vin]
}

// cars lists the bridged cars.
func (b *Bridge) cars() []*vehicle {
	b.fleet.Lock()
	defer b.fleet.Unlock()
	vs := make([]*vehicle, 0, len(b.fleet.vehicles))
	for _, v := range b.fleet.vehicles {
		vs = append(vs, v)
	}
	return vs
}

// pollInterval is FORD_POLL_INTERVAL stretched so that polling every
// vehicle of the account fits the share of the daily budget that is not
// kept for commands.
func (b *Bridge) pollInterval() time.Duration {
	b.fleet.Lock()
	n := len(b.fleet.vehicles)
	b.fleet.Unlock()
	return max(b.cfg.PollInterval, b.ford.Budget().PollEvery(n))
}
