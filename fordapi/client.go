// Package fordapi is a client of the FordPass cloud: browser sign-in with
// PKCE, the three token layers (B2C, FordPass "CAT", Autonomic), the vehicle
// list, telemetry over REST and websocket, and remote commands. Every call to
// Ford is counted against a daily budget, refreshes are serialized per
// account, and errors say whether the user must act (ErrReauthRequired) or
// the fault is transient. Ford's constants live in endpoints.go; the
// simulator in fordapi/fordsim serves the same protocol for tests.
package fordapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// Config configures a Client.
type Config struct {
	Region      Region
	BaseURL     string // one origin for every endpoint (the simulator); empty: Ford's hosts
	StateDir    string // token, pending sign-in and call budget; must exist
	DailyBudget int    // calls per 24 h; 0 means 250
	HTTPClient  *http.Client
	Logger      *zap.Logger
	Now         func() time.Time
	// OnCall, when set, is told about every HTTP call: the endpoint name
	// and its outcome ("ok", "http_503", "rate_limited", "network", …).
	OnCall func(endpoint, outcome string)
	// OnRefresh, when set, is told about every CAT refresh: "ok", "dead" or
	// "error".
	OnRefresh func(outcome string)
}

// Client talks to the FordPass cloud for one account. It is safe for
// concurrent use.
type Client struct {
	region Region
	hosts  hosts
	http   *http.Client
	log    *zap.Logger
	now    func() time.Time
	store  *TokenStore
	budget *Budget
	onCall func(endpoint, outcome string)
	onRef  func(outcome string)

	mu        sync.Mutex
	tok       *Token
	tokMod    time.Time // modification time of the token file as last read or written
	loaded    bool
	dead      *ReauthError  // set: no call until SignIn
	auto      *oauth2.Token // Autonomic bearer token
	autoEarly time.Duration // renew the Autonomic token this long before it expires
	catSem    chan struct{} // one CAT refresh at a time
	autoSem   chan struct{} // one Autonomic exchange at a time
	refresh4x int           // consecutive 400/401 from the refresh endpoint without Ford's marker
	signIns   signInThrottle
	signInMu  sync.Mutex // held for a whole code exchange
	proto     Protocol   // what was learned of Ford's protocol (protocol.go)
	api401    int        // consecutive 401s from data endpoints
}

// maxBody bounds any response body read from Ford.
const maxBody = 4 << 20

// DefaultHTTPClient has the timeouts FordPass clients use (45 s a call).
func DefaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// A fleet calls the same two hosts from many goroutines at once; keep
	// their connections instead of redialling TLS for every call.
	t.MaxIdleConnsPerHost = 16
	return &http.Client{Timeout: 45 * time.Second, Transport: t}
}

// New makes a client. It loads the call budget but not the token: the first
// call does.
func New(cfg Config) (*Client, error) {
	if cfg.Region.Key == "" {
		return nil, errors.New("fordapi: region is required")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("fordapi: state directory is required")
	}
	if cfg.DailyBudget == 0 {
		cfg.DailyBudget = 250
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = DefaultHTTPClient()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{
		region: cfg.Region, hosts: resolveHosts(cfg.Region, cfg.BaseURL), http: cfg.HTTPClient,
		log: cfg.Logger, now: cfg.Now, store: NewTokenStore(cfg.StateDir, cfg.Region.Key),
		onCall: cfg.OnCall, onRef: cfg.OnRefresh,
		catSem: make(chan struct{}, 1), autoSem: make(chan struct{}, 1), proto: loadProtocol(cfg.StateDir),
	}
	b, err := NewBudget(filepath.Join(cfg.StateDir, budgetFileName), cfg.DailyBudget, cfg.Now)
	if err != nil {
		if b == nil {
			return nil, err
		}
		c.log.Warn("the saved call count is damaged", zap.Error(err))
	}
	c.budget = b
	return c, nil
}

// Budget is the account's call budget.
func (c *Client) Budget() *Budget { return c.budget }

// Region is the client's region.
func (c *Client) Region() Region { return c.region }

// TokenPath is the token file.
func (c *Client) TokenPath() string { return c.store.TokenPath() }

// classKey marks a context with the budget class its calls count in.
type classKey struct{}

// WithClass marks ctx so that the calls made with it count in class k of
// the budget. Calls on an unmarked context are telemetry; the sign-in and
// token exchanges count in their own classes whatever the context.
func WithClass(ctx context.Context, k Class) context.Context {
	return context.WithValue(ctx, classKey{}, k)
}

// ForCommand marks ctx so that the calls made with it count in the command
// share of the budget.
func ForCommand(ctx context.Context) context.Context { return WithClass(ctx, ClassCommand) }

// ForSnapshot marks ctx as the first snapshot after a sign-in (the vehicle
// list and one telemetry record per car): it is served from the sign-in
// share, which nothing else may spend, and from the telemetry share when
// that is gone.
func ForSnapshot(ctx context.Context) context.Context { return WithClass(ctx, ClassSnapshot) }

func classOf(ctx context.Context) Class {
	if k, ok := ctx.Value(classKey{}).(Class); ok {
		return k
	}
	return ClassTelemetry
}

// request is one HTTP call to Ford.
type request struct {
	endpoint string // short name for logs and metrics
	class    *Class // the budget class, when the endpoint decides it (else the context does)
	method   string
	url      string
	header   http.Header
	body     []byte
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (c *Client) observe(endpoint, outcome string) {
	if c.onCall != nil {
		c.onCall(endpoint, outcome)
	}
}

// do makes one call: budget first, then HTTP, then the classification of
// errors every endpoint shares (429, network faults, oversized bodies).
// Status codes other than 429 are left to the caller.
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	k := classOf(ctx)
	if r.class != nil {
		k = *r.class
	}
	err := c.budget.Take(k)
	if k == ClassSnapshot && errors.As(err, new(*BudgetError)) {
		err = c.budget.Take(ClassTelemetry)
	}
	if err != nil {
		var be *BudgetError
		if errors.As(err, &be) {
			c.observe(r.endpoint, "budget")
			return nil, be
		}
		c.log.Warn("call budget not saved", zap.Error(err))
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, bytes.NewReader(r.body))
	if err != nil {
		return nil, fmt.Errorf("%s: building request: %w", r.endpoint, err)
	}
	req.Header = r.header.Clone()
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept-Encoding", "gzip")
	start := c.now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.observe(r.endpoint, "network")
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: %w", r.endpoint, scrubURLError(err))
	}
	defer resp.Body.Close()
	var body io.Reader = io.LimitReader(resp.Body, maxBody+1)
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(body)
		if err != nil {
			c.observe(r.endpoint, "bad_body")
			return nil, &StatusError{Endpoint: r.endpoint, Status: resp.StatusCode, Message: "gzip body could not be read"}
		}
		defer gz.Close()
		body = io.LimitReader(gz, maxBody+1)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		c.observe(r.endpoint, "network")
		return nil, fmt.Errorf("%s: reading response: %w", r.endpoint, scrubURLError(err))
	}
	if len(data) > maxBody {
		c.observe(r.endpoint, "bad_body")
		return nil, &StatusError{Endpoint: r.endpoint, Status: resp.StatusCode, Message: fmt.Sprintf("response larger than %d bytes", maxBody)}
	}
	c.log.Debug("ford call", zap.String("endpoint", r.endpoint), zap.Int("status", resp.StatusCode),
		zap.Duration("took", c.now().Sub(start)), zap.Int("bytes", len(data)))
	if resp.StatusCode == http.StatusTooManyRequests {
		c.observe(r.endpoint, "rate_limited")
		until := retryAfter(resp.Header.Get("Retry-After"), c.now())
		c.budget.NoteRateLimit(until)
		return nil, &RateLimitError{Endpoint: r.endpoint, RetryAt: until}
	}
	outcome := "ok"
	if resp.StatusCode >= 300 {
		outcome = "http_" + strconv.Itoa(resp.StatusCode)
	}
	c.observe(r.endpoint, outcome)
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// scrubURLError drops the URL from a *url.Error: query strings can carry
// codes, and the endpoint name already says where the call went.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// retryAfter reads Retry-After (seconds or an HTTP date); without one, Ford
// is given 15 minutes.
func retryAfter(h string, now time.Time) time.Time {
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return now.Add(time.Duration(s) * time.Second)
	}
	if t, err := http.ParseTime(h); err == nil {
		return t
	}
	return now.Add(15 * time.Minute)
}

// fordError makes the error for a non-success answer from Ford.
func fordError(endpoint string, r *response) error {
	msg := errorMessage(r.body)
	if r.status == http.StatusForbidden && strings.Contains(strings.ToUpper(msg), "NOT AUTHORIZED TO PERFORM") {
		return fmt.Errorf("%s: %w: %s", endpoint, ErrVehicleNotAuthorized, msg)
	}
	return &StatusError{Endpoint: endpoint, Status: r.status, Message: msg}
}

// errorMessage extracts Ford's message from an error body, without ever
// echoing an unknown body (which could hold anything).
func errorMessage(body []byte) string {
	var m struct {
		Message     string `json:"message"`
		Description string `json:"error_description"`
		Error       any    `json:"error"`
		ErrorCode   any    `json:"errorCode"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return ""
	}
	if trimmed[0] == '<' {
		return "HTML error page"
	}
	if json.Unmarshal(trimmed, &m) != nil {
		return fmt.Sprintf("unreadable body (%d bytes)", len(body))
	}
	parts := make([]string, 0, 3)
	if s, ok := m.Error.(string); ok && s != "" {
		parts = append(parts, s)
	}
	for _, s := range []string{m.Message, m.Description} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if m.ErrorCode != nil {
		parts = append(parts, "errorCode "+toString(m.ErrorCode))
	}
	s := strings.Join(parts, ": ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// fordHeaders are the headers every call to Ford's own hosts carries.
func (c *Client) fordHeaders() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Application-Id", c.region.AppID)
	return h
}

// ---- sign-in ----

// LoginURL is the authorize URL the user opens in a browser. The PKCE
// verifier behind it is kept in the state directory, so the same link keeps
// working across restarts until a sign-in completes.
func (c *Client) LoginURL() (string, error) {
	p, err := c.store.pending(c.now())
	if err != nil {
		return "", err
	}
	q := url.Values{}
	q.Set("redirect_uri", c.region.RedirectURI())
	q.Set("response_type", "code")
	q.Set("max_age", "3600")
	q.Set("code_challenge", PKCEChallenge(p.Verifier))
	q.Set("code_challenge_method", "S256")
	q.Set("scope", " "+oauthClientID+" openid")
	q.Set("client_id", oauthClientID)
	q.Set("ui_locales", c.region.Locale)
	q.Set("language_code", c.region.Locale)
	q.Set("ford_application_id", c.region.AppID)
	q.Set("country_code", c.region.CountryCode)
	return c.hosts.login + PathB2C(c.region, "authorize") + "?" + strings.ReplaceAll(q.Encode(), "+", "%20"), nil
}

// SignIn exchanges what the user pasted (redirect URL or code) for tokens and
// saves them. A rejected code returns an error matching ErrInvalidCode and
// leaves the previous token untouched.
//
// Sign-ins are throttled whatever door they come from: a code that cannot
// be Ford's is refused without a call, the same code is never exchanged
// twice, and after a refused code the next exchange waits (5 s, doubling up
// to 30 s). A refusal by the throttle is a *SignInThrottleError.
func (c *Client) SignIn(ctx context.Context, pasted string) error {
	code, err := ParseRedirect(pasted)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(code))
	c.signInMu.Lock() // one exchange at a time
	defer c.signInMu.Unlock()
	c.mu.Lock()
	now := c.now()
	switch {
	case c.signIns.tried(sum):
		c.mu.Unlock()
		return fmt.Errorf("%w: this code was already tried, and codes are single-use; sign in again for a new one", ErrInvalidCode)
	case now.Before(c.signIns.next):
		at := c.signIns.next
		c.mu.Unlock()
		return &SignInThrottleError{RetryAt: at}
	}
	c.signIns.remember(sum)
	c.mu.Unlock()
	err = c.exchangeCode(ctx, code)
	c.mu.Lock()
	if err != nil {
		// Every failure counts, not only a refused code: a code is
		// single-use, and an exchange that ended in a 5xx may have spent it.
		c.signIns.failures++
		c.signIns.next = c.now().Add(signInBackoff(c.signIns.failures))
	} else {
		c.signIns.failures = 0
	}
	c.mu.Unlock()
	return err
}

// SignInAllowedAt is when the sign-in throttle lets the next code through.
func (c *Client) SignInAllowedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signIns.next
}

// signInThrottle remembers the codes tried (as hashes) and when the next
// exchange may be made; guarded by Client.mu.
type signInThrottle struct {
	seen     map[[32]byte]struct{}
	order    [][32]byte // oldest first, to bound seen
	failures int        // refused codes in a row
	next     time.Time
}

const (
	maxSignInWait   = 30 * time.Second
	rememberedCodes = 256
)

// signInBackoff is the wait after the nth refused code in a row.
func signInBackoff(n int) time.Duration {
	return min(5*time.Second<<min(n-1, 10), maxSignInWait)
}

func (t *signInThrottle) tried(sum [32]byte) bool {
	_, ok := t.seen[sum]
	return ok
}

func (t *signInThrottle) remember(sum [32]byte) {
	if t.seen == nil {
		t.seen = map[[32]byte]struct{}{}
	}
	if len(t.order) >= rememberedCodes {
		delete(t.seen, t.order[0])
		t.order = t.order[1:]
	}
	t.seen[sum] = struct{}{}
	t.order = append(t.order, sum)
}

// exchangeCode trades a code for tokens and saves them.
func (c *Client) exchangeCode(ctx context.Context, code string) error {
	p, err := c.store.pending(c.now())
	if err != nil {
		return err
	}
	signIn, snapshot := ClassSignIn, ClassSnapshot
	form := url.Values{}
	form.Set("client_id", oauthClientID)
	form.Set("scope", oauthClientID+" openid")
	form.Set("redirect_uri", c.region.RedirectURI())
	form.Set("grant_type", "authorization_code")
	form.Set("resource", "")
	form.Set("code", code)
	form.Set("code_verifier", p.Verifier)
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.do(ctx, request{endpoint: "b2c_token", class: &signIn, method: http.MethodPost,
		url: c.hosts.login + PathB2C(c.region, "token"), header: h, body: []byte(form.Encode())})
	if err != nil {
		return fmt.Errorf("exchanging the sign-in code: %w", err)
	}
	var b2c struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(resp.body, &b2c) != nil || b2c.AccessToken == "" {
		if resp.status >= 500 {
			return fmt.Errorf("exchanging the sign-in code: %w", fordError("b2c_token", resp))
		}
		return fmt.Errorf("%w: Ford refused it (%s); codes are single-use and expire within minutes, so sign in again and paste the new redirect URL at once",
			ErrInvalidCode, nonEmpty(errorMessage(resp.body), "HTTP "+strconv.Itoa(resp.status)))
	}
	body, _ := json.Marshal(map[string]string{"idpToken": b2c.AccessToken})
	resp, err = c.do(ctx, request{endpoint: "cat_from_b2c", class: &snapshot, method: http.MethodPost,
		url: c.hosts.foundational + PathCATFromB2C, header: c.fordHeaders(), body: body})
	if err != nil {
		return fmt.Errorf("getting the FordPass token: %w", err)
	}
	tok, err := c.parseCAT(resp)
	if err != nil {
		return fmt.Errorf("getting the FordPass token: %w", err)
	}
	c.mu.Lock()
	if err := c.saveLocked(tok); err != nil {
		c.mu.Unlock()
		return fmt.Errorf("saving the token: %w", err)
	}
	c.tok, c.loaded, c.dead, c.auto, c.refresh4x, c.api401 = tok, true, nil, nil, 0, 0
	c.mu.Unlock()
	c.store.clearPending()
	c.log.Info("signed in to FordPass", zap.Time("refresh_expires", tok.RefreshExpiry))
	return nil
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// catResponse is the CAT token endpoints' answer.
type catResponse struct {
	AccessToken      string  `json:"access_token"`
	RefreshToken     string  `json:"refresh_token"`
	ExpiresIn        float64 `json:"expires_in"`
	RefreshExpiresIn float64 `json:"refresh_expires_in"`
}

func (c *Client) parseCAT(resp *response) (*Token, error) {
	var cr catResponse
	if json.Unmarshal(resp.body, &cr) != nil || cr.AccessToken == "" || cr.RefreshToken == "" {
		if resp.status < 300 {
			return nil, &StatusError{Endpoint: "cat_token", Status: resp.status, Message: "answer without tokens"}
		}
		return nil, fordError("cat_token", resp)
	}
	now := c.now()
	t := &Token{Token: &oauth2.Token{AccessToken: cr.AccessToken, RefreshToken: cr.RefreshToken, TokenType: "Bearer",
		Expiry: now.Add(time.Duration(cr.ExpiresIn * float64(time.Second)))}}
	if cr.RefreshExpiresIn > 0 {
		t.RefreshExpiry = now.Add(time.Duration(cr.RefreshExpiresIn * float64(time.Second)))
	}
	return t, nil
}

// ---- token layers ----

// AuthStatus describes the saved token without calling Ford.
type AuthStatus struct {
	SignedIn      bool
	Reason        string // why not, when not
	AccessExpiry  time.Time
	RefreshExpiry time.Time
}

// Status loads the token if needed and reports on it.
func (c *Client) Status() AuthStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadLocked(); err != nil {
		return AuthStatus{Reason: err.Reason}
	}
	return AuthStatus{SignedIn: true, AccessExpiry: c.tok.Expiry, RefreshExpiry: c.tok.RefreshExpiry}
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
	c.tok, c.loaded, c.dead, c.auto, c.tokMod, c.refresh4x, c.api401 = tok, true, nil, nil, mod, 0, 0
	c.log.Info("adopted a token saved by another fordpass2mqtt process")
	return true
}

// saveLocked writes the token and remembers the file's new time; c.mu held.
func (c *Client) saveLocked(tok *Token) error {
	err := c.store.Save(tok, c.now())
	if err == nil {
		c.tokMod = c.tokenModTime()
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
	c.mu.Lock()
	if err := c.loadLocked(); err != nil {
		c.mu.Unlock()
		return "", err
	}
	if c.valid(c.tok.Token, 30*time.Second) {
		t := c.tok.AccessToken
		c.mu.Unlock()
		return t, nil
	}
	c.mu.Unlock()

	if err := acquire(ctx, c.catSem); err != nil {
		return "", err
	}
	defer func() { <-c.catSem }()
	c.mu.Lock()
	if err := c.loadLocked(); err != nil {
		c.mu.Unlock()
		return "", err
	}
	c.reloadLocked()                          // another process may have refreshed (and so rotated) it
	if c.valid(c.tok.Token, 30*time.Second) { // refreshed while we waited
		t := c.tok.AccessToken
		c.mu.Unlock()
		return t, nil
	}
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
			re := &ReauthError{Reason: "Ford says the saved sign-in is no longer valid (" + nonEmpty(msg, "HTTP "+strconv.Itoa(resp.status)) + "): sign in again"}
			c.mu.Lock()
			c.dead, c.auto = re, nil
			c.mu.Unlock()
			c.refreshed("dead")
			c.log.Warn("refresh token rejected by Ford; waiting for a new sign-in", zap.String("ford_message", msg))
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
	c.mu.Lock()
	if c.dead != nil {
		c.mu.Unlock()
		return "", c.dead
	}
	if c.valid(c.auto, c.autoEarly) {
		t := c.auto.AccessToken
		c.mu.Unlock()
		return t, nil
	}
	c.mu.Unlock()
	if err := acquire(ctx, c.autoSem); err != nil {
		return "", err
	}
	defer func() { <-c.autoSem }()
	c.mu.Lock()
	if c.valid(c.auto, c.autoEarly) {
		t := c.auto.AccessToken
		c.mu.Unlock()
		return t, nil
	}
	c.mu.Unlock()

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
	var subject string
	var resp *response
	for step := 0; ; step++ {
		if step == len(plan) {
			return "", fmt.Errorf("getting the Autonomic token: %w", fordError("autonomic_token", resp))
		}
		if plan[step] == "" {
			if resp.status != http.StatusUnauthorized {
				return "", fmt.Errorf("getting the Autonomic token: %w", fordError("autonomic_token", resp))
			}
			c.expireCAT()
			continue
		}
		subject = plan[step]
		cat, err := c.catToken(ctx)
		if err != nil {
			return "", err
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

// ---- data calls ----

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

// Vehicle is one car on the account.
type Vehicle struct {
	VIN        string
	Nickname   string
	Model      string
	Year       string
	EngineType string
	EV         bool // battery or plug-in hybrid: has an HV battery
	Can        Capabilities
}

// Capabilities say which remote features the car supports.
type Capabilities struct {
	RemoteLock  bool
	RemoteStart bool
	PanicAlarm  bool
}

// DisplayName is the nickname, else year and model, else the VIN.
func (v Vehicle) DisplayName() string {
	switch {
	case v.Nickname != "":
		return v.Nickname
	case v.Model != "":
		return strings.TrimSpace(v.Year + " " + v.Model)
	}
	return v.VIN
}

// Vehicles lists the account's cars: Ford's expdashboard (207 and 200 are
// both success), or the newer app's user garage. When the one in use
// answers 404 or 410, the other is tried once and remembered.
func (c *Client) Vehicles(ctx context.Context) ([]Vehicle, error) {
	first := c.Protocol().list()
	vs, err := c.vehicleList(ctx, first)
	var se *StatusError
	if err == nil || !errors.As(err, &se) || (se.Status != http.StatusNotFound && se.Status != http.StatusGone) {
		return vs, err
	}
	other := ListGarage
	if first == ListGarage {
		other = ListDashboard
	}
	c.log.Info("Ford no longer serves this vehicle list; trying the other one", zap.String("gone", first), zap.String("trying", other))
	vs, err2 := c.vehicleList(ctx, other)
	if err2 != nil {
		return nil, fmt.Errorf("%w (the %s list failed too: %v)", err, other, err2)
	}
	c.learn(func(p *Protocol) { p.VehicleList = other })
	return vs, nil
}

func (c *Client) vehicleList(ctx context.Context, which string) ([]Vehicle, error) {
	h := http.Header{}
	h.Set("countryCode", c.region.CountryCode)
	h.Set("locale", c.region.Locale)
	r := request{endpoint: "vehicle_list", method: http.MethodPost, url: c.hosts.vehicle + PathVehicleList, header: h, body: []byte(vehicleListBody)}
	parse := ParseVehicles
	if which == ListGarage {
		r = request{endpoint: "garage", method: http.MethodGet, url: c.hosts.vehicle + PathGarage, header: h}
		parse = ParseGarage
	}
	resp, err := c.authedCall(ctx, c.catLayer(), r)
	if err != nil {
		return nil, fmt.Errorf("listing vehicles: %w", err)
	}
	if resp.status != http.StatusOK && resp.status != http.StatusMultiStatus {
		return nil, fmt.Errorf("listing vehicles: %w", fordError(r.endpoint, resp))
	}
	vs, err := parse(resp.body)
	if err != nil {
		return nil, fmt.Errorf("listing vehicles: %w", err)
	}
	return vs, nil
}

// ParseGarage reads the user-garage answer. Its shape is not settled in
// what is known of it: a list of vehicles, or an object holding such a list;
// each with vin, a nickname and a profile with model and year.
func ParseGarage(data []byte) ([]Vehicle, error) {
	var root any
	if err := json.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("reading the garage: %w", err)
	}
	var items []map[string]any
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 4 {
			return
		}
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e, depth+1)
			}
		case map[string]any:
			if pickString(x, "vin", "VIN") != "" {
				items = append(items, x)
				return
			}
			for _, e := range x {
				walk(e, depth+1)
			}
		}
	}
	walk(root, 0)
	out := make([]Vehicle, 0, len(items))
	seen := map[string]bool{}
	for _, o := range items {
		vin := strings.ToUpper(strings.TrimSpace(pickString(o, "vin", "VIN")))
		if vin == "" || seen[vin] {
			continue
		}
		seen[vin] = true
		profile, _ := o["profile"].(map[string]any)
		if profile == nil {
			profile = o
		}
		v := Vehicle{VIN: vin, Nickname: strings.TrimSpace(pickString(o, "nickName", "nickname", "vehicleNickName")),
			Model: pickString(profile, "model", "modelName"), Year: pickString(profile, "year", "modelYear"),
			EngineType: pickString(profile, "engineType", "fuelType")}
		et := strings.ToUpper(v.EngineType)
		v.EV = strings.Contains(et, "BEV") || strings.Contains(et, "PHEV") || strings.Contains(et, "ELECTRIC")
		v.Can = Capabilities{RemoteLock: true}
		if caps, ok := o["capabilities"].(map[string]any); ok {
			v.Can = Capabilities{RemoteLock: flag(caps["remoteLock"]), RemoteStart: flag(caps["remoteStart"]), PanicAlarm: flag(caps["remotePanicAlarm"])}
		}
		out = append(out, v)
	}
	return out, nil
}

// pickString returns the first of keys that holds a string or a number.
func pickString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			if v != "" {
				return v
			}
		case float64:
			return toString(v)
		}
	}
	return ""
}

// ParseVehicles reads the expdashboard answer.
func ParseVehicles(data []byte) ([]Vehicle, error) {
	var d struct {
		UserVehicles struct {
			VehicleDetails []struct {
				VIN      string `json:"VIN"`
				NickName string `json:"nickName"`
			} `json:"vehicleDetails"`
		} `json:"userVehicles"`
		VehicleProfile      []map[string]any `json:"vehicleProfile"`
		VehicleCapabilities []map[string]any `json:"vehicleCapabilities"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("reading the vehicle list: %w", err)
	}
	byVIN := func(list []map[string]any, vin string) map[string]any {
		for _, m := range list {
			if v, _ := m["VIN"].(string); strings.EqualFold(v, vin) {
				return m
			}
		}
		return nil
	}
	out := make([]Vehicle, 0, len(d.UserVehicles.VehicleDetails))
	for _, vd := range d.UserVehicles.VehicleDetails {
		vin := strings.ToUpper(strings.TrimSpace(vd.VIN))
		if vin == "" {
			continue
		}
		v := Vehicle{VIN: vin, Nickname: strings.TrimSpace(vd.NickName)}
		if p := byVIN(d.VehicleProfile, vin); p != nil {
			v.Model = toString(p["model"])
			v.Year = toString(p["year"])
			v.EngineType = toString(p["engineType"])
			et := strings.ToUpper(v.EngineType)
			v.EV = strings.Contains(et, "BEV") || strings.Contains(et, "PHEV") || flag(p["showEVBatteryLevel"])
		}
		if cp := byVIN(d.VehicleCapabilities, vin); cp != nil {
			v.Can = Capabilities{RemoteLock: flag(cp["remoteLock"]), RemoteStart: flag(cp["remoteStart"]), PanicAlarm: flag(cp["remotePanicAlarm"])}
		} else {
			v.Can = Capabilities{RemoteLock: true}
		}
		out = append(out, v)
	}
	return out, nil
}

// flag reads a capability: true, or the string "Display".
func flag(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "display") || strings.EqualFold(x, "true")
	}
	return false
}

// Telemetry fetches a vehicle's telemetry record.
func (c *Client) Telemetry(ctx context.Context, vin string) (Document, *Telemetry, error) {
	resp, err := c.authedCall(ctx, c.autonomicLayer(), request{endpoint: "telemetry", method: http.MethodGet,
		url: c.hosts.autonomicAPI + PathTelemetry(vin) + "?" + telemetryQuery})
	if err != nil {
		return nil, nil, fmt.Errorf("fetching telemetry: %w", err)
	}
	if resp.status != http.StatusOK {
		return nil, nil, fmt.Errorf("fetching telemetry: %w", fordError("telemetry", resp))
	}
	doc, t, err := ParseTelemetry(resp.body)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching telemetry: %w", &StatusError{Endpoint: "telemetry", Status: resp.status, Message: "the record is not valid JSON"})
	}
	return doc, t, nil
}

// SendCommand asks Ford to run a command (CmdLock, …) and returns its id.
// The call counts against the command share of the budget.
func (c *Client) SendCommand(ctx context.Context, vin, cmdType string, properties map[string]any) (string, error) {
	ctx = ForCommand(ctx)
	if properties == nil {
		properties = map[string]any{}
	}
	body, _ := json.Marshal(map[string]any{"properties": properties, "tags": map[string]any{}, "type": cmdType, "wakeUp": true})
	resp, err := c.authedCall(ctx, c.autonomicLayer(), request{endpoint: "command", method: http.MethodPost,
		url: c.hosts.autonomicAPI + PathCommands(vin), body: body})
	if err != nil {
		if mayHaveArrived(err) {
			return "", fmt.Errorf("%w: the connection to Ford failed while sending %s (%v); the car may still act on it", ErrOutcomeUnknown, cmdType, err)
		}
		return "", fmt.Errorf("sending %s: %w", cmdType, err)
	}
	if resp.status < 200 || resp.status > 205 {
		return "", fmt.Errorf("sending %s: %w", cmdType, fordError("command", resp))
	}
	var r struct {
		ID            string `json:"id"`
		CommandID     string `json:"commandId"`
		CorrelationID string `json:"correlationId"`
	}
	_ = json.Unmarshal(resp.body, &r)
	id := nonEmpty(r.ID, nonEmpty(r.CommandID, r.CorrelationID))
	if id == "" {
		return "", fmt.Errorf("sending %s: %w", cmdType, &StatusError{Endpoint: "command", Status: resp.status, Message: "answer without a command id"})
	}
	return id, nil
}

// mayHaveArrived reports whether a failed call may still have reached Ford:
// a network fault other than one that happens before anything is sent (a
// refused connection, an unknown host). Answers, budget refusals, dead
// tokens and cancellations are decided.
func mayHaveArrived(err error) bool {
	var se *StatusError
	var dns *net.DNSError
	switch {
	case !IsTransient(err), errors.As(err, &se), errors.As(err, &dns),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return false
	}
	return true
}

// pollDelays is the wait before each status poll after a command: 2 s, then
// growing gaps, as the FordPass app's clients do.
var pollDelays = []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 20 * time.Second, 30 * time.Second, 45 * time.Second, 60 * time.Second}

// WaitCommand waits for a command's outcome. Updates from a telemetry stream
// (may be nil) are watched; without them, or when they are quiet, telemetry
// is polled with growing gaps. It returns the final state on success, a
// *CommandError on failure, and ctx's error at its deadline.
func (c *Client) WaitCommand(ctx context.Context, vin, cmdType, id string, updates <-chan *Telemetry) (CommandState, error) {
	ctx = ForCommand(ctx)
	check := func(t *Telemetry) (CommandState, bool, error) {
		if t == nil {
			return CommandState{}, false, nil
		}
		cs, ok := t.Commands[cmdType]
		if !ok || cs.ID != id {
			return CommandState{}, false, nil
		}
		switch cs.Outcome() {
		case "success":
			return cs, true, nil
		case "failed":
			return cs, true, &CommandError{Command: cmdType, State: strings.ToLower(cs.ToState), Detail: cs.Detail}
		}
		return cs, false, nil
	}
	for i := 0; ; i++ {
		d := pollDelays[min(i, len(pollDelays)-1)]
		if updates != nil {
			d *= 3 // the stream reports progress; polls are only a safety net
		}
		timer := time.NewTimer(d)
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return CommandState{}, ctx.Err()
			case t, ok := <-updates:
				if !ok {
					updates = nil
					continue
				}
				if cs, done, err := check(t); done {
					timer.Stop()
					return cs, err
				}
			case <-timer.C:
				break wait
			}
		}
		_, t, err := c.Telemetry(ctx, vin)
		if err != nil {
			if ctx.Err() != nil {
				return CommandState{}, ctx.Err()
			}
			if !IsTransient(err) {
				if updates != nil && !errors.Is(err, ErrReauthRequired) {
					// The stream may still bring the outcome; polls stop.
					c.log.Debug("command status poll refused; waiting for the stream", zap.String("command", cmdType), zap.Error(err))
					select {
					case <-ctx.Done():
						return CommandState{}, ctx.Err()
					case t, ok := <-updates:
						if !ok {
							updates = nil
						} else if cs, done, err := check(t); done {
							return cs, err
						}
					}
					continue
				}
				return CommandState{}, fmt.Errorf("%w: Ford accepted the command, but its status check was refused: %w", ErrOutcomeUnknown, err)
			}
			c.log.Debug("command status poll failed; retrying", zap.String("command", cmdType), zap.Error(err))
			continue
		}
		if cs, done, err := check(t); done {
			return cs, err
		}
	}
}

// stateDirPrivate reports whether dir is private enough for tokens.
func stateDirPrivate(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s can be written by other users (mode %o); run chmod 700 %s", dir, st.Mode().Perm(), dir)
	}
	return nil
}

// PrepareStateDir creates dir with mode 0700 if needed and refuses a
// directory that other users can write to.
func PrepareStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	return stateDirPrivate(dir)
}
