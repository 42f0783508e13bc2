package fordapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// AuthStatus describes the saved token without calling Ford.
type AuthStatus struct {
	SignedIn      bool
	Reason        string // why not, when not
	AccessExpiry  time.Time
	RefreshExpiry time.Time
	// Unsaved says why the token in use is not in the token file (a
	// refresh rotated it and the save failed): a restart would need a new
	// sign-in until SaveToken succeeds. Empty when the file holds it.
	Unsaved string
}

// Status loads the token if needed and reports on it.
func (c *Client) Status() AuthStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadLocked(); err != nil {
		return AuthStatus{Reason: err.Reason}
	}
	st := AuthStatus{SignedIn: true, AccessExpiry: c.tok.Expiry, RefreshExpiry: c.tok.RefreshExpiry}
	if c.unsaved != nil {
		st.Unsaved = c.unsaved.Error()
	}
	return st
}

// SaveToken saves the token in use when an earlier save failed; it is a
// no-op when the file already holds it.
func (c *Client) SaveToken() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unsaved == nil || c.tok == nil {
		return nil
	}
	if err := c.saveLocked(c.tok); err != nil {
		c.unsaved = err
		return err
	}
	c.log.Info("the token is saved now; a restart no longer needs a new sign-in")
	return nil
}

func (c *Client) loadLocked() *ReauthError {
	if c.dead != nil {
		// Another process (fordpass2mqtt login, doctor --live) may have
		// saved a good token since.
		if c.reloadLocked() {
			return nil
		}
		return c.dead
	}
	if !c.loaded {
		mod := c.tokenModTime()
		tok, err := c.store.Load()
		if err != nil {
			var re *ReauthError
			if !errors.As(err, &re) {
				re = &ReauthError{Reason: err.Error()}
			}
			c.dead = re
			return re
		}
		c.tok, c.loaded, c.tokMod = tok, true, mod
	}
	return nil
}

func (c *Client) tokenModTime() time.Time {
	st, err := os.Stat(c.store.TokenPath())
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// reloadLocked adopts the token file when another process changed it; it
// reports whether a usable token was loaded.
func (c *Client) reloadLocked() bool {
	mod := c.tokenModTime()
	if mod.IsZero() || mod.Equal(c.tokMod) {
		return false
	}
	tok, err := c.store.Load()
	if err != nil {
		return false
	}
	c.tok, c.loaded, c.dead, c.auto, c.tokMod, c.refresh4x, c.api401, c.unsaved, c.refusal = tok, true, nil, nil, mod, 0, 0, nil, nil
	c.log.Info("adopted a token saved by another fordpass2mqtt process")
	return true
}

// saveLocked writes the token and remembers the file's new time, or why it
// could not be written; c.mu held.
func (c *Client) saveLocked(tok *Token) error {
	err := c.store.Save(tok, c.now())
	if err == nil {
		c.tokMod, c.unsaved = c.tokenModTime(), nil
	}
	return err
}

// valid reports whether t may still be used, with a margin.
func (c *Client) valid(t *oauth2.Token, margin time.Duration) bool {
	return t != nil && t.AccessToken != "" && c.now().Add(margin).Before(t.Expiry)
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// catToken returns a valid CAT access token, refreshing it when needed. Only
// one refresh runs at a time; callers that waited for it use its result. The
// rotated refresh token is saved to disk before the new access token is used.
func (c *Client) catToken(ctx context.Context) (string, error) {
	return c.oneAtATime(ctx, c.catSem, func(again bool) (string, error) {
		if err := c.loadLocked(); err != nil {
			return "", err
		}
		if again {
			c.reloadLocked() // another process may have refreshed (and so rotated) it
		}
		if c.valid(c.tok.Token, 30*time.Second) {
			return c.tok.AccessToken, nil
		}
		return "", nil
	}, c.refreshCATNow)
}

// refreshCATNow refreshes the FordPass token and saves the rotated one
// before it is used; only oneAtATime calls it.
func (c *Client) refreshCATNow(ctx context.Context) (string, error) {
	c.mu.Lock()
	refresh := c.tok.RefreshToken
	c.mu.Unlock()
	tok, err := c.refreshCAT(ctx, refresh)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.saveLocked(tok); err != nil {
		// The old refresh token is already dead at Ford; keep the new one in
		// memory so the bridge goes on, and say loudly that disk failed.
		c.log.Error("the refreshed token could not be saved; a restart now would need a new sign-in", zap.Error(err))
		c.unsaved = err
	}
	c.tok, c.auto = tok, nil
	return tok.AccessToken, nil
}

func (c *Client) refreshCAT(ctx context.Context, refresh string) (*Token, error) {
	body, _ := json.Marshal(map[string]string{"refresh_token": refresh})
	resp, err := c.do(ctx, request{endpoint: "cat_refresh", method: http.MethodPost,
		url: c.hosts.foundational + PathCATRefresh, header: c.fordHeaders(), body: body})
	if err != nil {
		c.refreshed("error")
		return nil, fmt.Errorf("refreshing the FordPass token: %w", err)
	}
	if resp.status == http.StatusBadRequest || resp.status == http.StatusUnauthorized {
		msg := errorMessage(resp.body)
		low := strings.ToLower(msg)
		c.mu.Lock()
		c.refresh4x++
		n := c.refresh4x
		c.mu.Unlock()
		if strings.Contains(low, "invalid") || strings.Contains(low, "expired token") || strings.Contains(low, "errorcode 460") || n > 10 {
			c.mu.Lock()
			c.refusal = c.refusal.Refused(c.now(), c.heal)
			why := "Ford says the saved sign-in is no longer valid (" + cmp.Or(msg, "HTTP "+strconv.Itoa(resp.status)) + "): sign in again"
			if c.refusal != nil {
				why += "; Ford refuses every renewal during its own outages, so the bridge also tries the saved sign-in again by itself at " +
					c.refusal.Next.Local().Format("Jan 2 15:04 MST")
			}
			re := &ReauthError{Reason: why}
			c.dead, c.auto = re, nil
			next := c.refusal
			c.mu.Unlock()
			c.refreshed("dead")
			fields := []zap.Field{zap.String("ford_message", msg)}
			if next != nil {
				fields = append(fields, zap.Time("try_again_at", next.Next), zap.Int("tries", next.Tries))
			}
			c.log.Warn("refresh token rejected by Ford; waiting for a new sign-in, and trying the saved one again later in case Ford's refusal is temporary", fields...)
			return nil, re
		}
		c.refreshed("error")
		return nil, fmt.Errorf("refreshing the FordPass token: %w", fordError("cat_refresh", resp))
	}
	if resp.status >= 300 {
		c.refreshed("error")
		return nil, fmt.Errorf("refreshing the FordPass token: %w", fordError("cat_refresh", resp))
	}
	tok, err := c.parseCAT(resp)
	if err != nil {
		c.refreshed("error")
		return nil, fmt.Errorf("refreshing the FordPass token: %w", err)
	}
	c.mu.Lock()
	c.refresh4x = 0
	c.mu.Unlock()
	c.refreshed("ok")
	return tok, nil
}

func (c *Client) refreshed(outcome string) {
	if c.onRef != nil {
		c.onRef(outcome)
	}
}

// autonomicToken returns a valid Autonomic bearer token, exchanging the CAT
// token for one when the cached one is within 45 s of expiry (a quarter of
// its lifetime for short-lived tokens).
func (c *Client) autonomicToken(ctx context.Context) (string, error) {
	return c.oneAtATime(ctx, c.autoSem, func(bool) (string, error) {
		if c.dead != nil {
			return "", c.dead
		}
		if c.valid(c.auto, c.autoEarly) {
			return c.auto.AccessToken, nil
		}
		return "", nil
	}, c.exchangeAutonomic)
}

// oneAtATime is the single flight both token layers share: cached (called
// with c.mu held; again is true on the second look) returns a usable token,
// "" when there is none, or an error that ends the call; when there is none,
// one caller holds sem and fetches while the others wait and then take the
// token it got.
func (c *Client) oneAtATime(ctx context.Context, sem chan struct{}, cached func(again bool) (string, error),
	fetch func(context.Context) (string, error)) (string, error) {
	look := func(again bool) (string, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return cached(again)
	}
	if t, err := look(false); t != "" || err != nil {
		return t, err
	}
	if err := acquire(ctx, sem); err != nil {
		return "", err
	}
	defer func() { <-sem }()
	if t, err := look(true); t != "" || err != nil { // fetched while we waited
		return t, err
	}
	return fetch(ctx)
}

// exchangeAutonomic gets a new Autonomic token; only oneAtATime calls it.
func (c *Client) exchangeAutonomic(ctx context.Context) (string, error) {
	// The FordPass access token is the usual subject of the exchange; some
	// current clients send the refresh token. When Ford refuses one, the
	// other is tried once, and the one that works is remembered.
	preferred := c.Protocol().subject()
	other := SubjectRefresh
	if preferred == SubjectRefresh {
		other = SubjectAccess
	}
	// The plan: the remembered subject, the other one, then (after a 401:
	// Ford no longer accepts the FordPass token although its expiry says
	// otherwise) one refresh of it and both again.
	plan := []string{preferred, other, "", preferred, other}
	var subject, firstCAT string
	var resp *response
	for step := 0; ; step++ {
		if step == len(plan) {
			return "", fmt.Errorf("getting the Autonomic token: %w", fordError("autonomic_token", resp))
		}
		if plan[step] == "" {
			if resp.status != http.StatusUnauthorized {
				return "", fmt.Errorf("getting the Autonomic token: %w", fordError("autonomic_token", resp))
			}
			// Refreshed only if nobody refreshed it since the first try
			// (a data call's 401 at the same moment): one refresh for one
			// expiry.
			c.mu.Lock()
			same := c.tok != nil && c.tok.AccessToken == firstCAT
			c.mu.Unlock()
			if same {
				c.expireCAT()
			}
			continue
		}
		subject = plan[step]
		cat, err := c.catToken(ctx)
		if err != nil {
			return "", err
		}
		if step == 0 {
			firstCAT = cat
		}
		token := cat
		if subject == SubjectRefresh {
			c.mu.Lock()
			token = c.tok.RefreshToken
			c.mu.Unlock()
		}
		form := url.Values{}
		form.Set("subject_token", token)
		form.Set("subject_issuer", "fordpass")
		form.Set("client_id", autonomicClient)
		form.Set("grant_type", tokenExchangeGrant)
		form.Set("subject_token_type", tokenExchangeSubType)
		h := http.Header{}
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		tokenClass := ClassToken
		resp, err = c.do(ctx, request{endpoint: "autonomic_token", class: &tokenClass, method: http.MethodPost,
			url: c.hosts.autonomicAccounts + PathAutonomicToken, header: h, body: []byte(form.Encode())})
		if err != nil {
			return "", fmt.Errorf("getting the Autonomic token: %w", err)
		}
		refused := resp.status == http.StatusBadRequest || resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden
		if refused {
			c.log.Info("Ford refused the Autonomic token exchange", zap.String("subject", subject), zap.Int("status", resp.status))
			continue
		}
		var ar struct {
			AccessToken string  `json:"access_token"`
			ExpiresIn   float64 `json:"expires_in"`
		}
		if resp.status >= 300 || json.Unmarshal(resp.body, &ar) != nil || ar.AccessToken == "" {
			if resp.status < 300 {
				return "", &StatusError{Endpoint: "autonomic_token", Status: resp.status, Message: "answer without a token"}
			}
			return "", fmt.Errorf("getting the Autonomic token: %w", fordError("autonomic_token", resp))
		}
		if subject != preferred {
			c.learn(func(p *Protocol) { p.AutonomicSubject = subject })
		}
		if ar.ExpiresIn <= 0 {
			ar.ExpiresIn = 300
		}
		t := &oauth2.Token{AccessToken: ar.AccessToken, TokenType: "Bearer",
			Expiry: c.now().Add(time.Duration(ar.ExpiresIn * float64(time.Second)))}
		ttl := time.Duration(ar.ExpiresIn * float64(time.Second))
		c.mu.Lock()
		c.auto, c.autoEarly = t, min(45*time.Second, ttl/4)
		c.mu.Unlock()
		return t.AccessToken, nil
	}
}

// RefreshNow refreshes the FordPass token whatever its expiry, to prove
// the refresh token is alive (fordpass2mqtt doctor --live). It costs one
// call; the rotated token is saved like any other.
func (c *Client) RefreshNow(ctx context.Context) error {
	c.mu.Lock()
	if err := c.loadLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	c.expireCAT()
	_, err := c.catToken(ForCommand(ctx))
	return err
}

func (c *Client) expireCAT() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil {
		t := *c.tok.Token
		t.Expiry = time.Time{}
		c.tok = &Token{Token: &t, RefreshExpiry: c.tok.RefreshExpiry}
	}
	c.auto = nil
}

// tokenLayer is the token a data call carries: the FordPass (CAT) token in
// auth-token on Ford's hosts, or the Autonomic bearer token on Autonomic's.
type tokenLayer struct {
	get  func(context.Context) (string, error)
	set  func(h http.Header, tok string)
	drop func(tok string) bool // forget tok if it is still the cached one
}

func (c *Client) catLayer() tokenLayer {
	return tokenLayer{
		get: c.catToken,
		set: func(h http.Header, tok string) {
			for k, v := range c.fordHeaders() {
				h[k] = v
			}
			h.Set("auth-token", tok)
		},
		drop: func(tok string) bool {
			c.mu.Lock()
			cached := c.tok != nil && c.tok.AccessToken == tok
			c.mu.Unlock()
			if cached {
				c.expireCAT()
			}
			return cached
		},
	}
}

func (c *Client) autonomicLayer() tokenLayer {
	return tokenLayer{
		get: c.autonomicToken,
		set: func(h http.Header, tok string) {
			h.Set("Content-Type", "application/json")
			h.Set("Authorization", "Bearer "+tok)
		},
		drop: func(tok string) bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.auto != nil && c.auto.AccessToken == tok {
				c.auto = nil
				return true
			}
			return false
		},
	}
}

// authedCall makes a call with a token. A 401 drops the token and retries
// once with a fresh one; more than ten 401s in a row, each to a freshly
// issued token, mean Ford no longer accepts this sign-in. Only a 401 to the
// token currently cached counts: callers that raced with the same expired
// token are one fault, not many.
func (c *Client) authedCall(ctx context.Context, layer tokenLayer, r request) (*response, error) {
	extra := r.header
	for attempt := 0; ; attempt++ {
		tok, err := layer.get(ctx)
		if err != nil {
			return nil, err
		}
		r.header = extra.Clone()
		if r.header == nil {
			r.header = http.Header{}
		}
		layer.set(r.header, tok)
		resp, err := c.do(ctx, r)
		if err != nil {
			return nil, err
		}
		if resp.status != http.StatusUnauthorized {
			c.mu.Lock()
			c.api401 = 0
			c.mu.Unlock()
			return resp, nil
		}
		n := 0
		if layer.drop(tok) {
			c.mu.Lock()
			c.api401++
			n = c.api401
			c.mu.Unlock()
		}
		if n > 10 {
			re := &ReauthError{Reason: "Ford answered 401 to more than 10 calls in a row with fresh tokens: sign in again"}
			c.mu.Lock()
			c.dead = re
			c.mu.Unlock()
			return nil, re
		}
		if attempt > 0 {
			return resp, nil
		}
	}
}

// RetryRefused tries the refresh token Ford refused again when its
// schedule says so (see Refusal): one renewal, in the sign-in share of the
// budget. It reports whether a renewal was tried and whether it worked;
// when it did, the client is signed in again with no user action.
func (c *Client) RetryRefused(ctx context.Context) (tried, healed bool) {
	c.mu.Lock()
	if c.dead == nil || c.tok == nil || !c.refusal.Due(c.now()) {
		c.mu.Unlock()
		return false, false
	}
	refresh, since := c.tok.RefreshToken, c.refusal.Since
	c.mu.Unlock()
	tok, err := c.refreshCAT(WithClass(ctx, ClassSignIn), refresh)
	if err != nil {
		var re *ReauthError
		if !errors.As(err, &re) {
			// Not a verdict (Ford down, the budget): the same step again.
			c.mu.Lock()
			c.refusal.Again(c.now(), c.heal)
			c.mu.Unlock()
		}
		return true, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead == nil { // a new sign-in came meanwhile: it wins
		return true, false
	}
	if err := c.saveLocked(tok); err != nil {
		c.log.Error("the renewed token could not be saved; a restart now would need a new sign-in", zap.Error(err))
		c.unsaved = err
	}
	c.tok, c.dead, c.auto, c.refusal, c.refresh4x, c.api401 = tok, nil, nil, nil, 0, 0
	c.log.Info("Ford's refusal of the saved sign-in was temporary: the saved refresh token works again, no new sign-in needed",
		zap.Duration("refused_for", c.now().Sub(since).Round(time.Second)))
	return true, true
}

// CheckTokenFile compares the token file with the token in use. A valid
// token another process wrote (fordpass2mqtt login) is adopted; a file
// that is gone, unreadable, a link or not a token (damaged, overwritten)
// is rewritten from the token in memory at once, so a restart keeps the
// sign-in. It says what it found wrong and mended ("" when nothing was, or
// when it could not be rewritten: then Status says the token is unsaved).
func (c *Client) CheckTokenFile() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == nil || c.dead != nil || c.unsaved != nil {
		return "" // nothing saved to compare with (an unsaved token is retried apart)
	}
	mod := c.tokenModTime()
	if !mod.IsZero() && mod.Equal(c.tokMod) {
		return ""
	}
	tok, err := c.store.Load()
	if err == nil {
		c.tok, c.tokMod, c.auto, c.refresh4x, c.api401 = tok, mod, nil, 0, 0
		c.log.Info("adopted a token saved by another fordpass2mqtt process")
		return ""
	}
	why := err.Error()
	var re *ReauthError
	if errors.As(err, &re) {
		why = re.Reason
	}
	if i := strings.Index(why, ": sign in again"); i > 0 {
		why = why[:i]
	}
	if mod.IsZero() {
		why = "the file was removed"
	}
	if err := c.saveLocked(c.tok); err != nil {
		c.unsaved = err
		c.log.Error("the token file no longer holds the token in use and cannot be rewritten; a restart now needs a new sign-in",
			zap.String("found", why), zap.Error(err))
		return "" // Status says the token is unsaved, and the save is retried
	}
	c.log.Warn("the token file no longer held the token in use; rewrote it from memory", zap.String("found", why))
	return "token.json no longer held the token in use (" + why + "); the bridge rewrote it from memory at " + c.now().UTC().Format("15:04:05 UTC")
}
