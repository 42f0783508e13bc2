package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/both"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// A car is "offline" on P/VIN/availability when the bridge has had no
// working channel to Ford for it for Options.DarkAfter (its socket down and
// its polls failing, or Ford not to be called at all), and at once when the
// call budget pauses its telemetry. Home Assistant shows its entities
// unavailable then, and doctor and /healthz name it: the auth state alone
// can say "ok" while one car is dark.

// darkState is a car's link to Ford; vehicle.availMu guards it.
type darkState struct {
	shown        string    // what P/VIN/availability last said ("" before anything)
	failingSince time.Time // the first failed try since Ford last answered for the car
	reason       string    // why, in words
	until        time.Time // when the budget allows the next call, when it paused the car
	// silent: Ford itself did not answer the last try (not the budget),
	// so the car's tries come at least every Options.DarkRetry.
	silent bool
}

// reached records that Ford answered for the car: it is online.
func (v *vehicle) reached() {
	v.availMu.Lock()
	defer v.availMu.Unlock()
	v.dark.failingSince, v.dark.reason, v.dark.until, v.dark.silent = time.Time{}, "", time.Time{}, false
	v.showLocked(mqttapi.Online)
}

// unreached records a failed try to reach Ford for the car: a socket that
// closed or could not open, a poll that failed or was refused. A refusal by
// the call budget takes the car offline at once.
func (v *vehicle) unreached(err error) {
	now := v.host.clock()
	v.availMu.Lock()
	defer v.availMu.Unlock()
	if v.dark.failingSince.IsZero() {
		v.dark.failingSince = now
	}
	if !errors.As(err, new(both.FordPassDownError)) || v.dark.reason == "" {
		// A stream FordPass cannot give keeps the reason the other
		// backend's try gave (a missing consent, say).
		v.dark.reason = darkReason(err)
	}
	var be *fordapi.BudgetError
	v.dark.silent = !errors.As(err, &be) // the budget's pause is no silence of Ford's
	if errors.As(err, &be) {
		// The budget holds the car's channel until then: no need to wait
		// DarkAfter to know it is dark.
		v.dark.until = be.RetryAt
		v.showLocked(mqttapi.Offline)
	}
}

// failing says whether Ford did not answer the car's last try (the
// budget's pause aside): its retries then come at least every
// Options.DarkRetry, outside the hourly pace, so it is back within that
// of Ford answering again.
func (v *vehicle) failing() bool {
	v.availMu.Lock()
	defer v.availMu.Unlock()
	return v.dark.silent
}

// checkDark takes the car offline once it has had no channel to Ford for
// darkAfter; gate says why Ford may not be called at all ("" when it may).
func (v *vehicle) checkDark(now time.Time, darkAfter time.Duration, gate string) {
	v.mu.Lock()
	streaming := v.streaming
	v.mu.Unlock()
	v.availMu.Lock()
	defer v.availMu.Unlock()
	// An open socket is a working channel whatever the account's state
	// (a 429 on another call does not close it); it closes by itself when
	// it stalls.
	if gate != "" && !streaming {
		if v.dark.failingSince.IsZero() {
			v.dark.failingSince = now
		}
		v.dark.reason = gate
	}
	if !v.dark.failingSince.IsZero() && now.Sub(v.dark.failingSince) >= darkAfter {
		v.showLocked(mqttapi.Offline)
	}
}

// stopped makes the car's state JSON say offline as the bridge stops: its
// availability there is what Home Assistant shows (the bridge's and the
// car's together), while P/VIN/availability keeps saying whether Ford
// answers for the car.
func (v *vehicle) stopped() {
	v.availMu.Lock()
	defer v.availMu.Unlock()
	v.shownAvail.Store(mqttapi.Offline)
	v.republishState()
}

// showLocked publishes the car's availability when it changed: the reason
// first, so a reader of the availability finds it; availMu held.
func (v *vehicle) showLocked(state string) {
	if v.dark.shown == state {
		return
	}
	v.dark.shown = state
	v.shownAvail.Store(state)
	t := v.host.topics()
	if state == mqttapi.Online {
		v.host.publishRetained(t.VehicleDark(v.vin), "")
	} else {
		v.host.publishRetained(t.VehicleDark(v.vin), v.detailLocked())
	}
	v.host.publishRetained(t.VehicleAvailability(v.vin), state)
	// The state JSON says it too: a reader of one topic (evcc, a flow)
	// knows whether the values are live.
	v.republishState()
}

// detailLocked is P/VIN/availability/detail's payload: why the car is
// offline, empty while it is online; availMu held.
func (v *vehicle) detailLocked() string {
	if v.dark.shown != mqttapi.Offline {
		return ""
	}
	d := mqttapi.Dark{Reason: v.dark.reason, Since: v.dark.failingSince.UTC().Truncate(time.Second)}
	if !v.dark.until.IsZero() {
		u := v.dark.until.UTC().Truncate(time.Second)
		d.Until = &u
	}
	data, _ := json.Marshal(d)
	return string(data)
}

// eachAvailability calls f with the car's availability topics and what was
// last published on them (to republish after a reconnect, or clear).
func (v *vehicle) eachAvailability(f func(topic, payload string)) {
	v.availMu.Lock()
	defer v.availMu.Unlock()
	if v.dark.shown == "" {
		return
	}
	t := v.host.topics()
	f(t.VehicleDark(v.vin), v.detailLocked())
	f(t.VehicleAvailability(v.vin), v.dark.shown)
}

// whenFormat is how a reason says when: a day's lockout ends tomorrow.
const whenFormat = "Jan 2 15:04 MST"

// darkReason says in words why a try to reach Ford for a car failed.
func darkReason(err error) string {
	var be *fordapi.BudgetError
	var rl *fordapi.RateLimitError
	switch {
	case errors.As(err, &be) && be.Class == fordapi.ClassToken:
		return fmt.Sprintf("the car's stream needs an Autonomic token, and the bridge's pace of token exchanges is spent: the next is allowed at %s",
			be.RetryAt.Local().Format(whenFormat))
	case errors.As(err, &be):
		return fmt.Sprintf("telemetry is paused by the call budget (FORD_DAILY_CALL_BUDGET, the %s share): the next call is allowed at %s",
			be.Class, be.RetryAt.Local().Format(whenFormat))
	case errors.As(err, &rl):
		return fmt.Sprintf("Ford rate-limits the account until %s", rl.RetryAt.Local().Format(whenFormat))
	case errors.As(err, new(both.CarError)):
		return err.Error()
	case errors.Is(err, fordapi.ErrReauthRequired):
		return "the bridge is not signed in to FordPass: sign in again"
	}
	return "Ford cannot be reached for this car: " + err.Error()
}

// infoLoop keeps what the bridge says of itself up to date: every car's
// availability (checked for darkness every tenth of Options.DarkAfter),
// P/bridge/info when it changed (the dark cars; the call count each
// minute), and the telemetry age of each car in /metrics.
func (b *Bridge) infoLoop(ctx context.Context) {
	defer b.workers.Done()
	every := max(b.opts.DarkAfter/10, 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var lastMinute time.Time
	var lastDark []string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := b.now()
		var cars []*vehicle
		for _, a := range b.accounts {
			gate := ""
			if info := a.auth.gate.get(); info.State != StateOK {
				gate = "the bridge cannot call Ford (" + info.State + "): " + info.Reason
			}
			for _, v := range a.fleet.cars() {
				v.checkDark(now, b.opts.DarkAfter, gate)
				cars = append(cars, v)
			}
		}
		b.pub.checkEchoes(now)
		dark := b.darkCars()
		minute := time.Since(lastMinute) >= time.Minute
		if minute || !slices.Equal(dark, lastDark) {
			b.publishInfo(false) // sent only when it changed
			lastDark = dark
		}
		if minute {
			lastMinute = time.Now()
			for _, v := range cars {
				b.m.telemetryAge(v.vin, v.lastUpdate())
			}
		}
	}
}

// darkCars lists the cars that are offline now, sorted.
func (f *fleet) darkCars() []string {
	var dark []string
	for _, v := range f.cars() {
		v.availMu.Lock()
		if v.dark.shown == mqttapi.Offline {
			dark = append(dark, v.vin)
		}
		v.availMu.Unlock()
	}
	slices.Sort(dark)
	return dark
}
