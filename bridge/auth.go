package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/both"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// authSide is the auth state and what moves it: the gate the Ford loops
// wait on, the publishing of auth state, and the sign-in machinery (one
// sign-in at a time, the code waiting for the throttle).
type authSide struct {
	*core
	ford      fordapi.Backend
	pub       *publisher
	gate      *authGate
	authPubMu sync.Mutex // serializes auth publishing: the last state read is the last sent
	signInMu  sync.Mutex // one sign-in at a time
	pending   pendingSignIn
	// signedIn runs after each new sign-in (the fleet's: the next vehicle
	// list and each car's next telemetry are the first after it).
	signedIn func()
	// cars are the bridged cars' VINs (the fleet's).
	cars func() []string
	// published runs after each publish of the auth state (the bridge's:
	// the metric, and the summary of several accounts).
	published func()
}

// authGate holds the account's auth state and lets vehicle loops wait
// while no Ford call may be made: until a new sign-in when the refresh
// token is dead, until the retry time when rate limited.
type authGate struct {
	mu      sync.Mutex
	info    AuthInfo
	changed chan struct{} // closed and replaced on every change
}

func newAuthGate(now time.Time) *authGate {
	return &authGate{info: AuthInfo{State: StateUnavailable, Reason: "starting", Since: now}, changed: make(chan struct{})}
}

func (g *authGate) get() AuthInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.info
}

// set changes the state; it reports whether anything a user sees changed.
// Since only moves when the state itself changes.
func (g *authGate) set(now time.Time, state, reason string, retryAt time.Time, loginURL string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ra *time.Time
	if !retryAt.IsZero() {
		// Whole seconds for people, rounded up so nobody calls early.
		r := retryAt.UTC().Truncate(time.Second)
		if r.Before(retryAt) {
			r = r.Add(time.Second)
		}
		ra = &r
	}
	old := g.info
	if old.State == state && old.Reason == reason && old.LoginURL == loginURL && equalTime(old.RetryAt, ra) {
		return false
	}
	g.info.Reason, g.info.RetryAt, g.info.LoginURL = reason, ra, loginURL
	if old.State != state {
		g.info.State, g.info.Since = state, now.UTC().Truncate(time.Second)
	}
	close(g.changed)
	g.changed = make(chan struct{})
	return true
}

// setWarning sets or clears (w == "") the warning; it reports whether it
// changed.
func (g *authGate) setWarning(w string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.info.Warning == w {
		return false
	}
	g.info.Warning = w
	close(g.changed)
	g.changed = make(chan struct{})
	return true
}

func (g *authGate) setLastSignIn(r SignInResult) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.info.LastSignIn = &r
	close(g.changed)
	g.changed = make(chan struct{})
}

func equalTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// wait returns when Ford may be called: not while re-authorization is
// required, not before the retry time of a rate limit.
func (g *authGate) wait(ctx context.Context, now func() time.Time) error {
	for {
		g.mu.Lock()
		info, ch := g.info, g.changed
		g.mu.Unlock()
		var t *time.Timer
		var timer <-chan time.Time
		switch {
		case info.State == StateReauthRequired:
		case info.State == StateRateLimited && info.RetryAt != nil && now().Before(*info.RetryAt):
			t = time.NewTimer(info.RetryAt.Sub(now()))
			timer = t.C
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			stopTimer(t)
			return ctx.Err()
		case <-ch:
			stopTimer(t)
		case <-timer:
			return nil
		}
	}
}

func authJSON(a AuthInfo) string {
	b, _ := json.Marshal(a)
	return string(b)
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// setAuth moves the auth state and publishes it when it changed.
func (a *authSide) setAuth(state, reason string, retryAt time.Time) {
	login := ""
	if state == StateReauthRequired {
		u, err := a.ford.LoginURL()
		if err != nil {
			a.log.Error("cannot make a login link", zap.Error(err))
		}
		login = u
	}
	prev := a.gate.get().State
	if !a.gate.set(a.now(), state, reason, retryAt, login) {
		return
	}
	if prev != state {
		fields := []zap.Field{zap.String("state", state), zap.String("reason", reason)}
		if !retryAt.IsZero() {
			fields = append(fields, zap.Time("retry_at", retryAt))
		}
		if state == StateOK {
			a.log.Info(a.cfg.Service()+" connection ok", fields...)
		} else {
			a.log.Warn(a.cfg.Service()+" connection "+state, fields...)
		}
	}
	a.publishAuth()
	if state == StateRateLimited && !retryAt.IsZero() {
		// The wait ends by itself: nothing needs to call Ford to find out.
		time.AfterFunc(max(retryAt.Sub(a.now()), 0)+time.Second, func() {
			info := a.gate.get()
			if info.State == StateRateLimited && info.RetryAt != nil && !a.now().Before(*info.RetryAt) {
				a.setAuth(StateOK, "the wait is over; resuming", time.Time{})
			}
		})
	}
}

func (a *authSide) publishAuth() {
	a.publishOwn()
	if a.published != nil {
		a.published()
	}
}

// publishOwn publishes the account's auth topics.
func (a *authSide) publishOwn() {
	a.authPubMu.Lock()
	defer a.authPubMu.Unlock()
	info := a.info()
	a.pub.publishState(a.t.AuthState(), info.State)
	a.pub.publishState(a.t.AuthDetail(), authJSON(info))
	a.pub.publishState(a.t.LoginURL(), info.LoginURL)
	for _, b := range info.Backends {
		a.pub.publishState(a.t.BackendState(b.Name), b.State)
		a.pub.publishState(a.t.BackendLoginURL(b.Name), b.LoginURL)
		d, _ := json.Marshal(b)
		a.pub.publishState(a.t.BackendDetail(b.Name), string(d))
	}
	if a.cfg.Backend == config.BackendFordConnect {
		// A consent adds a car: its link is always offered, before the
		// first consent as after it.
		if u, err := a.ford.LoginURL(); err == nil {
			a.pub.publishState(a.t.BackendLoginURL(config.BackendFordConnect), u)
		}
	}
}

// stateRank orders the auth states from best to worst: a sign-in needed
// is worst, as only the user can end it.
var stateRank = map[string]int{StateOK: 0, StateUnavailable: 1, StateRateLimited: 2, StateReauthRequired: 3}

// AuthInfo is the current auth state: with several accounts, the worst of
// theirs.
func (b *Bridge) AuthInfo() AuthInfo { return b.worst() }

// info is the current auth state, with the sign-in page's address.
func (a *authSide) info() AuthInfo {
	info := a.gate.get()
	info.SignInURL = a.cfg.HTTPPublicURL
	info.Account = a.t.AccountName()
	if d, ok := a.ford.(*both.Backend); ok {
		// With two backends the state said is the worst of them, in the
		// words of the backend it comes from; the gate's own state is what
		// holds the cars, and it holds them only when neither can read.
		var cars []string
		if a.cars != nil {
			cars = a.cars()
		}
		info.Backends = d.Backends(cars)
		consented := 0
		for _, c := range info.Backends[1].Cars {
			if c.Consented {
				consented++
			}
		}
		for _, b := range info.Backends {
			if stateRank[b.State] > stateRank[info.State] {
				info.State, info.Reason, info.LoginURL = b.State, b.Name+": "+b.Reason, b.LoginURL
				if b.Name == mqttapi.BackendFordPass && consented > 0 {
					info.Reason += fmt.Sprintf("; the state of the %d car(s) consented to FordConnect keeps coming from there", consented)
				}
			}
		}
	}
	return info
}

// report turns the outcome of a Ford call into the auth state, and says how
// long the caller should wait before its next try (0: go on).
func (a *authSide) report(err error, bo *backoff) time.Duration {
	var be *fordapi.BudgetError
	var rl *fordapi.RateLimitError
	switch {
	case err == nil:
		bo.reset()
		if info := a.gate.get(); info.State == StateRateLimited && info.RetryAt != nil && a.now().Before(*info.RetryAt) {
			// A call that was already in flight when the limit came: the
			// limit ends by its time alone (setAuth's timer), not by it.
			return 0
		}
		a.setAuth(StateOK, "connected to "+a.cfg.Service(), time.Time{})
		return 0
	case errors.Is(err, fordapi.ErrReauthRequired):
		var re *fordapi.ReauthError
		reason := "sign in again"
		if errors.As(err, &re) {
			reason = re.Reason
		}
		a.setAuth(StateReauthRequired, reason, time.Time{})
		return 0 // the gate holds every loop until a new sign-in
	case errors.As(err, &rl):
		a.setAuth(StateRateLimited, "rate limited by Ford: it answered 429 Too Many Requests; waiting as it asked", rl.RetryAt)
		return 0
	case errors.As(err, &be) && be.Paced && be.Class != fordapi.ClassToken:
		// The normal pace of the daily budget: wait without alarming anyone.
		return max(be.RetryAt.Sub(a.now()), time.Second)
	case errors.As(err, &be):
		a.setAuth(StateRateLimited, budgetReason(be, a.ford.Budget()), be.RetryAt)
		return 0
	case errors.Is(err, fordapi.ErrVehicleNotAuthorized):
		return a.opts.BackoffMax
	case errors.As(err, new(both.CarError)):
		// The car's alone (it goes offline saying why); each backend's
		// state says what it needs.
		return bo.next()
	}
	d := bo.next()
	a.setAuth(StateUnavailable, "Ford cannot be reached or answered with an error: "+err.Error()+"; retrying by itself", a.now().Add(d))
	return d
}

// budgetReason says in words why the budget holds every Ford call now.
// The token exchanges' pace is no normal wait: the streams and the
// commands need a token, so while it is spent nothing reaches Ford.
func budgetReason(be *fordapi.BudgetError, b *fordapi.Budget) string {
	const local = "the bridge refused the call itself and Ford has not limited the account"
	switch {
	case be.Class == fordapi.ClassToken && be.Paced:
		return fmt.Sprintf("this hour's pace of Autonomic token exchanges (%d an hour) is spent: the streams and commands need one; %s; "+
			"streams and commands resume at %s", b.Hourly(fordapi.ClassToken), local, be.RetryAt.Local().Format(whenFormat))
	case be.Class == fordapi.ClassToken:
		return fmt.Sprintf("the day's allowance of Autonomic token exchanges is spent: %d of %d in 24 h; the streams and commands need one; %s; "+
			"waiting for the 24 h window to free one", be.Used, be.Limit, local)
	}
	return fmt.Sprintf("the %s share of the daily Ford call budget (FORD_DAILY_CALL_BUDGET) is spent: %d of %d calls in 24 h; %s; "+
		"waiting for the 24 h window to free a call", be.Class, be.Used, be.Limit, local)
}

// backoff is exponential with full jitter.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min << min(b.n, 20)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.n++
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (b *backoff) reset() { b.n = 0 }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
