package bridge

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Auth states published on P/auth/state.
const (
	StateOK             = "ok"
	StateReauthRequired = "reauth_required"
	StateRateLimited    = "rate_limited"
	StateUnavailable    = "unavailable"
)

// AuthInfo is what P/auth/detail carries.
type AuthInfo struct {
	State    string     `json:"state"`
	Reason   string     `json:"reason"`
	Since    time.Time  `json:"since"`
	RetryAt  *time.Time `json:"retry_at,omitempty"`
	LoginURL string     `json:"login_url,omitempty"`
	// SignInURL is the bridge's own sign-in page (HTTP_PUBLIC_URL).
	SignInURL string `json:"sign_in_page,omitempty"`
	// LastSignIn reports the last code that was pasted, good or bad.
	LastSignIn *SignInResult `json:"last_sign_in,omitempty"`
}

// SignInResult is the outcome of one pasted code.
type SignInResult struct {
	At    time.Time `json:"at"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
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

func (a AuthInfo) json() string {
	b, _ := json.Marshal(a)
	return string(b)
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
