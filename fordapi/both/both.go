// Package both is the Ford backend of FORD_BACKEND=both: FordPass and
// FordConnect Query together, behind the one fordapi.Backend the bridge
// calls.
package both

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordconnect"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// New is the backend of FORD_BACKEND=both: FordPass for the stream, the
// commands and the vehicle list, FordConnect Query for the state of each
// consented car whenever FordPass cannot give it (a sign-in needed, a rate
// limit or a lockout, its telemetry share paused, Ford down). A FordPass
// failure is never the account's state while FordConnect still reads the
// cars: it is the FordPass backend's own state (P/auth/fordpass/state).
// Consent is per car: a car without one is never asked of FordConnect,
// and goes offline naming its missing consent while FordPass is down.
func New(fordPass fordapi.Backend, fordConnect FordConnect) *Backend {
	return &Backend{fp: fordPass, fc: fordConnect, states: map[string]mqttapi.BackendInfo{}, source: map[string]string{}}
}

// FordConnect is the FordConnect Query client as this backend needs
// it: consents are per car, and a refused one is tried again by itself.
type FordConnect interface {
	fordapi.Backend
	Consented(vin string) bool
	Consents() []fordconnect.Consent
	RetryRefused(ctx context.Context) (tried, healed bool)
	Extra(ctx context.Context, vin, name string) (json.RawMessage, error)
}

// Extra reads one of FordConnect's endpoints besides telemetry for a
// consented car; a car without a consent has none (a 403, as Ford would
// answer), and FordConnect is not asked.
func (d *Backend) Extra(ctx context.Context, vin, name string) (json.RawMessage, error) {
	if !d.fc.Consented(vin) {
		return nil, &fordconnect.NotForCarError{Endpoint: "fcon_" + name, Status: http.StatusForbidden}
	}
	return d.fc.Extra(ctx, vin, name)
}

// Backend names, as in FORD_BACKEND and the P/auth/<backend>/ topics.
const (
	fordPassName    = mqttapi.BackendFordPass
	fordConnectName = mqttapi.BackendFordConnect
)

// Backend is FordPass and FordConnect as one fordapi.Backend, with what
// the bridge says of each.
type Backend struct {
	fp fordapi.Backend
	fc FordConnect

	mu       sync.Mutex
	states   map[string]mqttapi.BackendInfo // each backend's state from its last call
	source   map[string]string              // VIN → the backend of its last telemetry
	fpCars   map[string]fordapi.Vehicle     // FordPass's last vehicle list, by VIN
	onChange func()                         // told when a backend's state changes
}

// note records a backend's outcome; it tells onChange when the state moved.
// A sign-in FordConnect needs is not noted: it is per car (Consents).
func (d *Backend) note(name string, err error) {
	st := mqttapi.BackendInfo{Name: name, State: mqttapi.StateOK, Reason: "working"}
	var rl *fordapi.RateLimitError
	var be *fordapi.BudgetError
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return // the caller gave up: no news of Ford
	case errors.Is(err, fordapi.ErrReauthRequired) && name == fordConnectName:
		d.changed() // a car's consent was refused: Backends says so from Consents
		return
	case errors.Is(err, fordapi.ErrReauthRequired):
		st.State, st.Reason = mqttapi.StateReauthRequired, err.Error()
	case errors.As(err, &rl), errors.As(err, &be) && (!be.Paced || be.Class == fordapi.ClassToken):
		st.State, st.Reason = mqttapi.StateRateLimited, err.Error()
	case errors.As(err, &be):
		return // the normal pace: no news
	default:
		st.State, st.Reason = mqttapi.StateUnavailable, err.Error()
	}
	d.mu.Lock()
	old, seen := d.states[name]
	d.states[name] = st
	d.mu.Unlock()
	if !seen || old.State != st.State {
		d.changed()
	}
}

func (d *Backend) state(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, ok := d.states[name]; ok {
		return st.State
	}
	return ""
}

// fpUsable says whether FordPass may be asked: not while it waits for a
// sign-in (its client would refuse anyway, without a call).
func (d *Backend) fpUsable() bool {
	return d.state(fordPassName) != mqttapi.StateReauthRequired && d.fp.Status().SignedIn
}

// fpDown says whether FordPass cannot give the cars' state now: it needs a
// sign-in, it is rate limited or unreachable, or its telemetry share of the
// budget is paused. Its cars' state then comes from FordConnect where
// they are consented, at FordConnect's pace.
func (d *Backend) fpDown() bool {
	if st := d.state(fordPassName); (st != "" && st != mqttapi.StateOK) || !d.fp.Status().SignedIn {
		return true
	}
	return d.fp.Budget().Paused(fordapi.ClassTelemetry)
}

// ReadsThroughFordConnect says whether vin's state comes from FordConnect
// now, so its polls follow FordConnect's pace rather than FordPass's
// budget.
func (d *Backend) ReadsThroughFordConnect(vin string) bool {
	return d.Source(vin) == fordConnectName && d.fpDown()
}

// Backends are both backends' states, with a login link for one that needs
// a sign-in (FordConnect's always: a consent adds a car). cars are the
// bridged cars, which FordConnect's says are consented and which not.
func (d *Backend) Backends(cars []string) []mqttapi.BackendInfo {
	d.mu.Lock()
	fp, fpSeen := d.states[fordPassName]
	fc, fcSeen := d.states[fordConnectName]
	d.mu.Unlock()
	if st := d.fp.Status(); !st.SignedIn {
		fp = mqttapi.BackendInfo{Name: fordPassName, State: mqttapi.StateReauthRequired, Reason: st.Reason}
	} else if !fpSeen {
		fp = mqttapi.BackendInfo{Name: fordPassName, State: mqttapi.StateOK, Reason: "signed in"}
	}
	if fp.State == mqttapi.StateReauthRequired {
		fp.LoginURL, _ = d.fp.LoginURL()
	}
	if !fcSeen {
		fc = mqttapi.BackendInfo{Name: fordConnectName, State: mqttapi.StateOK, Reason: "working"}
	}
	consents := d.fc.Consents()
	byVIN := map[string]fordconnect.Consent{}
	for _, c := range consents {
		byVIN[c.VIN] = c
	}
	var refused string // the first refused consent's reason, in its own words
	var missing []string
	for _, vin := range cars {
		c, ok := byVIN[vin]
		fc.Cars = append(fc.Cars, mqttapi.BackendCar{VIN: vin, Consented: ok && c.Refused == "", Refused: c.Refused, RetryAt: c.RetryAt})
		switch {
		case !ok:
			missing = append(missing, fordapi.ShortVIN(vin))
		case c.Refused != "" && refused == "":
			refused = fordapi.ShortVIN(vin) + ": " + c.Refused
		}
	}
	switch {
	case refused != "":
		// Only a consent that existed and was refused needs the user.
		fc.State, fc.Reason = mqttapi.StateReauthRequired, refused
	case len(consents) == 0:
		fc.Reason = "no car is consented to FordConnect: it reads none until one is (each consent adds a car); FordPass serves every car meanwhile"
	case fc.State == mqttapi.StateOK && len(missing) > 0:
		fc.Reason = "working for the consented cars; not consented (read through FordPass only): " + strings.Join(missing, ", ")
	}
	fc.LoginURL, _ = d.fc.LoginURL()
	return []mqttapi.BackendInfo{fp, fc}
}

// changed tells onChange, if set, that what Backends says may have moved.
func (d *Backend) changed() {
	d.mu.Lock()
	f := d.onChange
	d.mu.Unlock()
	if f != nil {
		f()
	}
}

// OnChange sets what is told when a backend's state moves.
func (d *Backend) OnChange(f func()) {
	d.mu.Lock()
	d.onChange = f
	d.mu.Unlock()
}

// Source is the backend the car's last telemetry came from.
func (d *Backend) Source(vin string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.source[vin]
}

func (d *Backend) setSource(vin, name string) {
	d.mu.Lock()
	d.source[vin] = name
	if name == fordPassName && !slices.Contains(slices.Collect(maps.Values(d.source)), fordConnectName) {
		// No car is read through FordConnect any more: what its last read
		// said is old news.
		delete(d.states, fordConnectName)
	}
	d.mu.Unlock()
}

// LoginURL is the link of the backend that needs a sign-in, FordPass
// first; FordPass's when neither does.
func (d *Backend) LoginURL() (string, error) {
	if !d.fp.Status().SignedIn || d.state(fordPassName) == mqttapi.StateReauthRequired {
		return d.fp.LoginURL()
	}
	if slices.ContainsFunc(d.fc.Consents(), func(c fordconnect.Consent) bool { return c.Refused != "" }) {
		return d.fc.LoginURL()
	}
	return d.fp.LoginURL()
}

// SignIn takes either backend's landing address: FordPass's is a
// fordapp:// (or lincolnapp://) address or a bare code, FordConnect's an
// address with a code and a state (the whole one pasted, or the path and
// query the bridge's own page was sent to).
func (d *Backend) SignIn(ctx context.Context, pasted string) error {
	if isFordConnectLanding(pasted) {
		return d.fc.SignIn(ctx, pasted)
	}
	err := d.fp.SignIn(ctx, pasted)
	if err == nil {
		d.note(fordPassName, nil)
	}
	return err
}

func isFordConnectLanding(pasted string) bool {
	s := strings.TrimSpace(pasted)
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch {
	case u.Scheme == "http" || u.Scheme == "https":
	case u.Scheme == "" && u.Host == "" && (strings.HasPrefix(s, "/") || strings.HasPrefix(s, "?")):
	default:
		return false
	}
	q := u.Query()
	return q.Get("state") != "" && (q.Get("code") != "" || q.Get("error") != "")
}

// Status is signed in while either backend is.
func (d *Backend) Status() fordapi.AuthStatus {
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
func (d *Backend) SaveToken() error {
	return errors.Join(d.fp.SaveToken(), d.fc.SaveToken())
}

// Vehicles is FordPass's list with the cars only FordConnect reads added
// (they take no commands); FordConnect's alone while FordPass fails.
func (d *Backend) Vehicles(ctx context.Context) ([]fordapi.Vehicle, error) {
	var list []fordapi.Vehicle
	var fpErr error
	if d.fpUsable() {
		list, fpErr = d.fp.Vehicles(ctx)
		d.note(fordPassName, fpErr)
	} else {
		fpErr = fmt.Errorf("FordPass: %w", &fordapi.ReauthError{Reason: "waiting for a new sign-in"})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if fpErr == nil {
		d.fpCars = map[string]fordapi.Vehicle{}
		for _, v := range list {
			d.fpCars[v.VIN] = v
		}
	}
	extra, _ := d.fc.Vehicles(ctx) // no call: the consented cars
	if fpErr != nil && len(extra) == 0 {
		return nil, fpErr
	}
	for _, v := range extra {
		if containsVIN(list, v.VIN) {
			continue
		}
		if fp, ok := d.fpCars[v.VIN]; ok {
			v = fp // FordPass listed it last time: it keeps its commands for when FordPass is back
		} else {
			v.Can = nil // only FordConnect has it: no commands
		}
		list = append(list, v)
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

// CarError: neither backend can read the car now. It is the car's
// (it goes offline saying why), never the account's: FordPass's own state
// says what FordPass needs, and the other cars go on.
type CarError struct {
	fp      error  // why FordPass cannot
	consent string // why FordConnect cannot: not consented, refused, or its error
}

func (e CarError) Error() string {
	return "FordPass cannot read this car now (" + e.fp.Error() + ") and " + e.consent
}

// Telemetry reads the car through FordPass while FordPass can give it,
// else through FordConnect when the car is consented there. Its errors
// are the car's (CarError), so one car's trouble never holds the
// others.
func (d *Backend) Telemetry(ctx context.Context, vin string) (*fordapi.Telemetry, error) {
	var fpErr error
	if d.fpUsable() {
		tel, err := d.fp.Telemetry(ctx, vin)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		d.note(fordPassName, err)
		if err == nil {
			d.setSource(vin, fordPassName)
			return tel, nil
		}
		fpErr = err
	} else {
		fpErr = errors.New("it needs a new sign-in")
	}
	if !d.fc.Consented(vin) {
		why := "it is not consented to FordConnect: consent it (P/auth/fordconnect/login_url) to keep its state coming while FordPass is down"
		if slices.ContainsFunc(d.fc.Consents(), func(c fordconnect.Consent) bool { return c.VIN == vin }) {
			why = "FordConnect refused its consent: consent it again (P/auth/fordconnect/login_url)"
		}
		return nil, CarError{fp: fpErr, consent: why}
	}
	tel, err := d.fc.Telemetry(ctx, vin)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	d.note(fordConnectName, err)
	if err != nil {
		return nil, CarError{fp: fpErr, consent: "FordConnect failed too: " + err.Error()}
	}
	d.setSource(vin, fordConnectName)
	return tel, nil
}

// FordPassDownError is what the car's loop sees of a FordPass stream that
// cannot run for a reason of FordPass's own (a sign-in, a rate limit):
// the car is read through FordConnect at once where it is consented, and
// the stream is tried again later.
type FordPassDownError struct{ cause error }

func (e FordPassDownError) Error() string {
	return "FordPass cannot stream now (" + e.cause.Error() + ")"
}

// Stream is FordPass's stream; its failures are FordPass's own state.
func (d *Backend) Stream(ctx context.Context, vin string, opts fordapi.StreamOptions, onUpdate func(*fordapi.Telemetry)) error {
	if !d.fpUsable() {
		return FordPassDownError{errors.New("it needs a new sign-in")}
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
	return FordPassDownError{err}
}

// RetryRefused tries each backend's refused sign-in again when its time
// has come (see fordapi.Refusal).
func (d *Backend) RetryRefused(ctx context.Context) (tried, healed bool) {
	if h, ok := d.fp.(fordapi.RefusalRetrier); ok {
		t, ok := h.RetryRefused(ctx)
		if ok {
			d.note(fordPassName, nil)
		}
		tried, healed = t, ok
	}
	t, ok := d.fc.RetryRefused(ctx)
	if ok {
		d.changed()
	}
	return tried || t, healed || ok
}

// CheckTokenFile checks FordPass's token file (FordConnect's file is its
// client's own concern).
func (d *Backend) CheckTokenFile() string {
	if tc, ok := d.fp.(fordapi.TokenFileChecker); ok {
		return tc.CheckTokenFile()
	}
	return ""
}

// Commands go through FordPass; a FordPass failure stays FordPass's.

func (d *Backend) SendCommand(ctx context.Context, vin, cmdType, version string, props map[string]any) (string, error) {
	id, err := d.fp.SendCommand(ctx, vin, cmdType, version, props)
	return id, d.commandErr(err)
}

func (d *Backend) WaitCommand(ctx context.Context, vin, cmdType, id string, updates <-chan *fordapi.Telemetry, polled func(*fordapi.Telemetry)) (fordapi.CommandState, error) {
	st, err := d.fp.WaitCommand(ctx, vin, cmdType, id, updates, polled)
	return st, d.commandErr(err)
}

// FordPass is FordPass's, for a call to Ford's other hosts (the climate
// profile, zone lighting); a failure stays FordPass's.
func (d *Backend) FordPass(f func(*fordapi.Client) error) error {
	return d.commandErr(d.fp.FordPass(f))
}

// commandErr keeps a FordPass sign-in or rate limit met by a command from
// holding the account: it becomes FordPass's state, and the command's
// error says so.
func (d *Backend) commandErr(err error) error {
	if errors.Is(err, fordapi.ErrReauthRequired) || errors.Is(err, fordapi.ErrRateLimited) {
		d.note(fordPassName, err)
		return fmt.Errorf("FordPass: %s", err.Error())
	}
	return err
}

// OneSocket is FordPass's: its streams are FordPass's.
func (d *Backend) OneSocket() bool {
	b, ok := d.fp.(fordapi.SocketBinder)
	return ok && b.OneSocket()
}

// Budgets are FordPass's budget and FordConnect's count of Query
// requests, which the bridge closes at shutdown.
func (d *Backend) Budgets() []*fordapi.Budget {
	return []*fordapi.Budget{d.fp.Budget(), d.fc.Budget()}
}

// Budget is FordPass's: commands and the stream spend it.
func (d *Backend) Budget() *fordapi.Budget { return d.fp.Budget() }

// CommandsBlocked says why FordPass cannot take commands now ("" if it
// can).
func (d *Backend) CommandsBlocked() string {
	for _, b := range d.Backends(nil) {
		if b.Name == fordPassName && b.State == mqttapi.StateReauthRequired {
			return "commands go through FordPass, which needs a new sign-in (" + b.Reason + "); the car's state keeps coming from FordConnect meanwhile"
		}
	}
	return ""
}

var _ fordapi.Backend = (*Backend)(nil)
