package bridge

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

const (
	vehicleCacheFile = "vehicles.json"
	instanceFile     = "instance"
)

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

func (b *Bridge) loadVehicleCache() {
	data, err := os.ReadFile(filepath.Join(b.cfg.StateDir, vehicleCacheFile))
	if err != nil {
		return
	}
	var list []fordapi.Vehicle
	if json.Unmarshal(data, &list) != nil {
		b.log.Warn("ignoring a damaged vehicle cache")
		return
	}
	b.fleet.Lock()
	b.fleet.cachedAll = list
	b.fleet.list = b.filter(list)
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
	cached := b.fleet.list
	b.fleet.Unlock()
	if len(cached) > 0 {
		b.reconcile(cached, nil, false)
	}
	bo := &backoff{min: b.opts.BackoffMin, max: b.opts.BackoffMax}
	for {
		if err := b.gate.wait(ctx, b.now); err != nil {
			return
		}
		b.fleet.Lock()
		due := b.fleet.listAt.IsZero() || b.now().Sub(b.fleet.listAt) >= b.opts.VehicleListTTL
		next := b.fleet.listAt.Add(b.opts.VehicleListTTL)
		b.fleet.Unlock()
		snapshot := b.snapshotDue.Swap(false)
		if due || snapshot {
			lctx := ctx
			if snapshot {
				lctx = fordapi.ForSnapshot(ctx)
			}
			list, err := b.ford.Vehicles(lctx)
			if ctx.Err() != nil {
				return
			}
			if d := b.report(err, bo); err != nil {
				if snapshot {
					b.snapshotDue.Store(true)
				}
				if sleep(ctx, d) != nil {
					return
				}
				continue
			}
			b.reconcile(b.filter(list), list, snapshot)
			next = b.now().Add(b.opts.VehicleListTTL)
		}
		select {
		case <-ctx.Done():
			return
		case <-b.listWake:
		case <-time.After(next.Sub(b.now())):
		}
	}
}

// reconcile starts workers for new vehicles and stops those that left the
// account or FORD_VINS; their device configs are cleared in Home Assistant.
// all is the unfiltered list from Ford (nil when reconciling from the
// cache).
// snapshot marks the first fetch of every bridged car as the first
// snapshot after a sign-in.
func (b *Bridge) reconcile(list, all []fordapi.Vehicle, snapshot bool) {
	keep := map[string]bool{}
	for _, info := range list {
		keep[info.VIN] = true
	}
	if all != nil {
		if len(list) == 0 {
			if len(all) == 0 {
				b.log.Warn("the FordPass account has no vehicles; if the FordPass app shows them, FORD_REGION may be wrong")
			} else {
				b.log.Warn("none of the account's vehicles is in FORD_VINS", zap.Int("on_account", len(all)))
			}
		}
		data, _ := json.Marshal(all)
		if err := fordapi.WriteFileAtomic(filepath.Join(b.cfg.StateDir, vehicleCacheFile), data); err != nil {
			b.log.Warn("cannot cache the vehicle list", zap.Error(err))
		}
	}
	b.fleet.Lock()
	b.fleet.list = list
	if all != nil {
		// Vehicles seen before (on the account or in the cache) that are not
		// bridged now: their Home Assistant devices must go.
		for _, v := range append(append([]fordapi.Vehicle(nil), b.fleet.cachedAll...), all...) {
			if !keep[v.VIN] {
				b.fleet.stale[v.VIN] = struct{}{}
			}
		}
		b.fleet.cachedAll, b.fleet.listAt = all, b.now()
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
