package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// Both is the Ford of FORD_BACKEND=both: FordPass for the stream, the
// commands and the vehicle list, FordConnect Query for the cars' state
// whenever FordPass cannot give it (a sign-in needed, a rate limit or a
// lockout, Ford down). A FordPass failure is never the account's state
// while FordConnect still reads the car: it is the FordPass backend's own
// state (P/auth/fordpass/state), and the bridge goes on through
// FordConnect.
func Both(fordPass, fordConnect Ford) Ford {
	return &dual{fp: fordPass, fc: fordConnect, states: map[string]BackendInfo{}, source: map[string]string{}}
}

// Backend names, as in FORD_BACKEND and the P/auth/<backend>/ topics.
const (
	fordPassName    = BackendFordPass
	fordConnectName = BackendFordConnect
)

type dual struct {
	fp, fc Ford

	mu       sync.Mutex
	states   map[string]BackendInfo // each backend's state from its last call
	source   map[string]string      // VIN → the backend of its last telemetry
	onChange func()                 // told when a backend's state changes
}

// note records a backend's outcome; it tells onChange when the state moved.
func (d *dual) note(name string, err error) {
	st := BackendInfo{Name: name, State: StateOK, Reason: "working"}
	var rl *fordapi.RateLimitError
	var be *fordapi.BudgetError
	switch {
	case err == nil:
	case errors.Is(err, fordapi.ErrReauthRequired):
		st.State, st.Reason = StateReauthRequired, err.Error()
	case errors.As(err, &rl), errors.As(err, &be) && !be.Paced:
		st.State, st.Reason = StateRateLimited, err.Error()
	case errors.As(err, &be):
		return // the normal pace: no news
	default:
		st.State, st.Reason = StateUnavailable, err.Error()
	}
	d.mu.Lock()
	old, seen := d.states[name]
	d.states[name] = st
	f := d.onChange
	d.mu.Unlock()
	if (!seen || old.State != st.State) && f != nil {
		f()
	}
}

func (d *dual) state(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, ok := d.states[name]; ok {
		return st.State
	}
	return ""
}

// fpUsable says whether FordPass may be asked: not while it waits for a
// sign-in (its client would refuse anyway, without a call).
func (d *dual) fpUsable() bool { return d.state(fordPassName) != StateReauthRequired }

// Backends are both backends' states, with a login link for one that needs
// a sign-in.
func (d *dual) Backends() []BackendInfo {
	out := make([]BackendInfo, 0, 2)
	for _, b := range []struct {
		name string
		f    Ford
	}{{fordPassName, d.fp}, {fordConnectName, d.fc}} {
		d.mu.Lock()
		st, seen := d.states[b.name]
		d.mu.Unlock()
		if status := b.f.Status(); !status.SignedIn {
			st = BackendInfo{Name: b.name, State: StateReauthRequired, Reason: status.Reason}
		} else if !seen {
			st = BackendInfo{Name: b.name, State: StateOK, Reason: "signed in"}
		}
		if st.State == StateReauthRequired || b.name == fordConnectName {
			// FordConnect's link is always offered: a consent adds a car.
			// Both clients keep their link until it is used.
			st.LoginURL, _ = b.f.LoginURL()
		}
		out = append(out, st)
	}
	return out
}

// OnChange sets what is told when a backend's state moves.
func (d *dual) OnChange(f func()) {
	d.mu.Lock()
	d.onChange = f
	d.mu.Unlock()
}

// Source is the backend the car's last telemetry came from.
func (d *dual) Source(vin string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.source[vin]
}

func (d *dual) setSource(vin, name string) {
	d.mu.Lock()
	d.source[vin] = name
	d.mu.Unlock()
}

// LoginURL is the link of the backend that needs a sign-in, FordPass
// first; FordPass's when neither does.
func (d *dual) LoginURL() (string, error) {
	if !d.fp.Status().SignedIn || d.state(fordPassName) == StateReauthRequired {
		return d.fp.LoginURL()
	}
	if !d.fc.Status().SignedIn {
		return d.fc.LoginURL()
	}
	return d.fp.LoginURL()
}

// SignIn takes either backend's landing address: FordPass's is a
// fordapp:// (or lincolnapp://) address or a bare code, FordConnect's an
// http(s) address with a code and a state.
func (d *dual) SignIn(ctx context.Context, pasted string) error {
	if isFordConnectLanding(pasted) {
		err := d.fc.SignIn(ctx, pasted)
		if err == nil {
			d.note(fordConnectName, nil)
		}
		return err
	}
	err := d.fp.SignIn(ctx, pasted)
	if err == nil {
		d.note(fordPassName, nil)
	}
	return err
}

func isFordConnectLanding(pasted string) bool {
	u, err := url.Parse(strings.TrimSpace(pasted))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Query().Get("state") != ""
}

// Status is signed in while either backend is.
func (d *dual) Status() fordapi.AuthStatus {
	fp, fc := d.fp.Status(), d.fc.Status()
	st := fp
	if !fp.SignedIn {
		st = fc
		if !fc.SignedIn {
			st.Reason = "FordPass: " + fp.Reason + "; FordConnect: " + fc.Reason
		}
	}
	if fp.Unsaved != "" || fc.Unsaved != "" {
		st.Unsaved = strings.Trim(fp.Unsaved+"; "+fc.Unsaved, "; ")
	}
	return st
}

// SaveToken saves both backends' tokens.
func (d *dual) SaveToken() error {
	return errors.Join(d.fp.SaveToken(), d.fc.SaveToken())
}

// Vehicles is FordPass's list with the cars only FordConnect reads added
// (they take no commands); FordConnect's alone while FordPass fails.
func (d *dual) Vehicles(ctx context.Context) ([]fordapi.Vehicle, error) {
	var list []fordapi.Vehicle
	var fpErr error
	if d.fpUsable() {
		list, fpErr = d.fp.Vehicles(ctx)
		d.note(fordPassName, fpErr)
	} else {
		fpErr = fmt.Errorf("FordPass: %w", &fordapi.ReauthError{Reason: "waiting for a new sign-in"})
	}
	extra, _ := d.fc.Vehicles(ctx) // no call: the consented cars
	if fpErr != nil && len(extra) == 0 {
		return nil, fpErr
	}
	for _, v := range extra {
		if !containsVIN(list, v.VIN) {
			v.Can = fordapi.Capabilities{}
			list = append(list, v)
		}
	}
	return list, nil
}

func containsVIN(list []fordapi.Vehicle, vin string) bool {
	for _, v := range list {
		if v.VIN == vin {
			return true
		}
	}
	return false
}

// Telemetry reads the car through FordPass, else through FordConnect.
func (d *dual) Telemetry(ctx context.Context, vin string) (*fordapi.Telemetry, error) {
	var fpErr error
	if d.fpUsable() {
		tel, err := d.fp.Telemetry(ctx, vin)
		d.note(fordPassName, err)
		if err == nil {
			d.setSource(vin, fordPassName)
			return tel, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		fpErr = err
	}
	tel, err := d.fc.Telemetry(ctx, vin)
	d.note(fordConnectName, err)
	if err == nil {
		d.setSource(vin, fordConnectName)
		return tel, nil
	}
	if fpErr != nil && errors.Is(err, fordapi.ErrReauthRequired) && !errors.Is(fpErr, fordapi.ErrReauthRequired) {
		// FordConnect cannot read this car at all: FordPass's fault is the
		// one that says what is going on.
		return nil, fpErr
	}
	return nil, err
}

// errFordPassDown is what the car's loop sees of a FordPass stream that
// cannot run: a transient fault, so the car is polled (through
// FordConnect) instead of the account being held.
type errFordPassDown struct{ cause error }

func (e errFordPassDown) Error() string {
	return "FordPass cannot stream now (" + e.cause.Error() + "); the car is read through FordConnect meanwhile"
}

// Stream is FordPass's stream; its failures are FordPass's own state.
func (d *dual) Stream(ctx context.Context, vin string, opts fordapi.StreamOptions, onUpdate func(*fordapi.Telemetry)) error {
	if !d.fpUsable() {
		return errFordPassDown{errors.New("it needs a new sign-in")}
	}
	err := d.fp.Stream(ctx, vin, opts, func(t *fordapi.Telemetry) {
		d.note(fordPassName, nil)
		d.setSource(vin, fordPassName)
		onUpdate(t)
	})
	if err == nil || ctx.Err() != nil || fordapi.IsTransient(err) {
		return err
	}
	d.note(fordPassName, err)
	return errFordPassDown{err}
}

// Commands go through FordPass; a FordPass failure stays FordPass's.

func (d *dual) SendVersionedCommand(ctx context.Context, vin, cmdType, version string, props map[string]any) (string, error) {
	id, err := d.fp.SendVersionedCommand(ctx, vin, cmdType, version, props)
	return id, d.commandErr(err)
}

func (d *dual) WaitCommand(ctx context.Context, vin, cmdType, id string, updates <-chan *fordapi.Telemetry, polled func(*fordapi.Telemetry)) (fordapi.CommandState, error) {
	st, err := d.fp.WaitCommand(ctx, vin, cmdType, id, updates, polled)
	return st, d.commandErr(err)
}

func (d *dual) SetClimate(ctx context.Context, vin string, changes map[string]string) ([]fordapi.ClimatePreference, error) {
	prefs, err := d.fp.SetClimate(ctx, vin, changes)
	return prefs, d.commandErr(err)
}

func (d *dual) SetZoneLights(ctx context.Context, vin, zone string) error {
	return d.commandErr(d.fp.SetZoneLights(ctx, vin, zone))
}

// commandErr keeps a FordPass sign-in or rate limit met by a command from
// holding the account: it becomes FordPass's state, and the command's
// error says so.
func (d *dual) commandErr(err error) error {
	if errors.Is(err, fordapi.ErrReauthRequired) || errors.Is(err, fordapi.ErrRateLimited) {
		d.note(fordPassName, err)
		return fmt.Errorf("FordPass: %s", err.Error())
	}
	return err
}

// Budget is FordPass's: commands and the stream spend it.
func (d *dual) Budget() *fordapi.Budget { return d.fp.Budget() }

// commandsBlocked says why FordPass cannot take commands now ("" if it
// can).
func (d *dual) commandsBlocked() string {
	for _, b := range d.Backends() {
		if b.Name == fordPassName && b.State == StateReauthRequired {
			return "commands go through FordPass, which needs a new sign-in (" + b.Reason + "); the car's state keeps coming from FordConnect meanwhile"
		}
	}
	return ""
}
