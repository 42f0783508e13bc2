// Package fordconnect is a client of FordConnect Query, Ford's official
// read-only API for personal use: the owner registers an app of their own
// at developer.ford.com, consents once per car, and the car's telemetry is
// read with that app's tokens — the same records, in the same metric names
// and shapes, as the FordPass telemetry fordapi parses. It has no commands
// and no push. What is known of it comes from marq24/ha-fordconnect-query
// (const.py, application_credentials.py, __init__.py).
package fordconnect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// Ford's FordConnect endpoints (ha-fordconnect-query const.py).
const (
	hostFord      = "https://api.vehicle.ford.com"
	PathInit      = "/fcon-public/v1/auth/init"
	PathToken     = "/dah2vb2cprod.onmicrosoft.com/oauth2/v2.0/token"
	tokenPolicy   = "?p=B2C_1A_FCON_AUTHORIZE"
	PathGarage    = "/fcon-query/v1/garage"
	PathTelemetry = "/fcon-query/v1/telemetry"
	// DefaultRedirect is the redirect the bridge's own page serves; it
	// must be registered with the app (localhost or a public address: Ford
	// refuses private ones).
	DefaultRedirect = "http://localhost:8080/fordconnect/callback"
	// stateLen is the state's length: Ford's init proxy keeps 16 bytes.
	stateLen = 16
	// maxBody bounds an answer read.
	maxBody = 4 << 20
)

// ErrCommands: FordConnect Query reads; it has no commands.
var ErrCommands = errors.New("commands need FordPass: FordConnect Query is read-only (set FORD_BACKEND=both and sign in to FordPass to send commands)")

// Config configures a Client.
type Config struct {
	BaseURL      string // one origin for every endpoint (the simulator); empty: Ford's
	ClientID     string
	ClientSecret string
	RedirectURL  string // [DefaultRedirect]
	StateDir     string
	// Pace is the least time between two Query requests, over every car
	// [1m: Ford answers faster ones 429].
	Pace       time.Duration
	HTTPClient *http.Client
	Logger     *zap.Logger
	Now        func() time.Time
	// HealSchedule is the wait before each try again of a consent whose
	// renewal Ford refused [fordapi.DefaultHealSchedule].
	HealSchedule []time.Duration
}

// Client reads consented cars through FordConnect Query. It is safe for
// concurrent use.
type Client struct {
	cfg    Config
	base   string
	oauth  oauth2.Config
	file   string
	budget *fordapi.Budget

	mu    sync.Mutex
	saved savedState
	mod   time.Time // the file's modification time as last read or written
	// unsaved says why the tokens in memory are not in the file.
	unsaved error
	own     map[string]bool // access tokens this client obtained itself

	codes *fordapi.CodeThrottle // consent codes: deduplicated, failures slow the next

	turn chan struct{} // one Query request at a time
	// telemetry counts the telemetry requests waiting for their turn: the
	// other reads (Extra) let them go first, so they never take the pace
	// a car's state needs.
	telemetry atomic.Int32
	// quietUntil (unix nanoseconds): after a 429 the other reads wait ten
	// paces, or three times the wait Ford asked for if longer, so a pace
	// Ford keeps slower than the bridge's is left to the cars' state.
	quietUntil atomic.Int64
	// Guarded by turn: the earliest next Query request per pace unit, and
	// the unit. Ford's unit is not documented: ha-fordconnect-query polls
	// each consented car on its own, so the client starts with a pace per
	// access token (one per car); a 429 to a token that kept its own pace
	// is evidence of a pace per app, and the client keeps one pace over
	// every car from then on.
	next   map[string]time.Time
	used   map[string]time.Time // access token → this client's last request with it
	perApp bool
}

// ownToken records an access token this client obtained (guarded by mu,
// with own).
func (c *Client) ownToken(tok string) {
	c.mu.Lock()
	c.ownLocked(tok)
	c.mu.Unlock()
}

func (c *Client) ownLocked(tok string) {
	if c.own == nil {
		c.own = map[string]bool{}
	}
	if len(c.own) > 64 {
		clear(c.own) // rotated tokens: a bound, not a record
	}
	c.own[tok] = true
}

// savedState is STATE_DIR/fordconnect.json: each consented car with its
// tokens, and the states of login links not used yet.
type savedState struct {
	Cars    []car     `json:"cars"`
	Pending []pending `json:"pending,omitempty"`
}

type car struct {
	fordapi.Vehicle
	Token oauth2.Token `json:"token"`
	Dead  string       `json:"dead,omitempty"` // why its consent no longer works
	// Refusal: Ford refused the renewal, and the kept refresh token is
	// tried again (nil with Dead: given up).
	Refusal *fordapi.Refusal `json:"refusal,omitempty"`
}

type pending struct {
	State   string    `json:"state"`
	Created time.Time `json:"created"`
}

// fileName is the client's state in STATE_DIR.
const fileName = "fordconnect.json"

// New makes a client and loads what was saved.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("fordconnect: the app's client id and secret are required")
	}
	if cfg.RedirectURL == "" {
		cfg.RedirectURL = DefaultRedirect
	}
	if cfg.Pace <= 0 {
		cfg.Pace = time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 45 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = hostFord
	}
	c := &Client{cfg: cfg, base: base, file: filepath.Join(cfg.StateDir, fileName), turn: make(chan struct{}, 1), next: map[string]time.Time{}, used: map[string]time.Time{},
		codes: fordapi.NewCodeThrottle(filepath.Join(cfg.StateDir, "fordconnect-codes.json"), cfg.Now),
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Endpoint: oauth2.Endpoint{AuthURL: base + PathInit, TokenURL: base + PathToken + tokenPolicy, AuthStyle: oauth2.AuthStyleInParams}}}
	if err := c.loadLocked(); err != nil {
		return nil, err
	}
	// FordConnect's own count, apart from FordPass's: Ford paces it at a
	// request a minute, 1,440 a day.
	b, err := fordapi.NewBudget(filepath.Join(cfg.StateDir, "fordconnect-calls.json"), 2*24*60, cfg.Now)
	if err != nil && b == nil {
		return nil, err
	}
	c.budget = b
	return c, nil
}

// loadLocked reads the file (a missing one is no car yet).
func (c *Client) loadLocked() error {
	fi, err := os.Stat(c.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	data, err := fordapi.ReadSecretFile(c.file)
	if err != nil {
		return fmt.Errorf("reading %s: %w", fileName, err)
	}
	c.mod = fi.ModTime()
	var saved savedState
	if err := json.Unmarshal(data, &saved); err != nil {
		if len(c.saved.Cars) > 0 {
			// Damaged under a running bridge: what is in use is rewritten.
			c.cfg.Logger.Warn("the FordConnect token file no longer held the consents in use; rewrote it from memory", zap.Error(err))
			return c.saveLocked()
		}
		c.cfg.Logger.Warn("the FordConnect token file is damaged; the cars need a new consent", zap.Error(err))
		return nil
	}
	c.saved = saved
	return nil
}

// adoptLocked takes up a file another process (fordpass2mqtt login) wrote
// since, unless the tokens in memory are not saved.
func (c *Client) adoptLocked() {
	if fi, err := os.Stat(c.file); err == nil && c.unsaved == nil && !fi.ModTime().Equal(c.mod) {
		if c.loadLocked() == nil {
			c.cfg.Logger.Info("adopted FordConnect consents saved by another fordpass2mqtt process", zap.Int("cars", len(c.saved.Cars)))
		}
	}
}

// Budget counts the Query requests of the last 24 h.
func (c *Client) Budget() *fordapi.Budget { return c.budget }

// LoginURL is a consent link for one more car: Ford's init endpoint with
// the app's client id, its registered redirect and a state of 16
// characters. A state is good for an hour and one consent; the newest one
// not used yet is offered again while it has more than half an hour left,
// so the link users see stays put and asking for it writes nothing.
func (c *Client) LoginURL() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	keep := c.saved.Pending[:0]
	for _, p := range c.saved.Pending {
		if now.Sub(p.Created) < time.Hour {
			keep = append(keep, p)
		}
	}
	c.saved.Pending = keep
	if n := len(keep); n > 0 && now.Sub(keep[n-1].Created) < 30*time.Minute {
		return c.initURL(keep[n-1].State), nil
	}
	b := make([]byte, stateLen/2)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	state := hex.EncodeToString(b)
	c.saved.Pending = append(c.saved.Pending, pending{State: state, Created: now})
	if len(c.saved.Pending) > 8 {
		c.saved.Pending = c.saved.Pending[len(c.saved.Pending)-8:]
	}
	if err := c.saveLocked(); err != nil {
		return "", fmt.Errorf("saving the login link's state: %w", err)
	}
	return c.initURL(state), nil
}

// initURL is the consent link with a state. Not oauth2's AuthCodeURL:
// Ford's init takes exactly these four.
func (c *Client) initURL(state string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {c.cfg.ClientID}, "redirect_uri": {c.cfg.RedirectURL}, "state": {state}}
	return c.base + PathInit + "?" + q.Encode()
}

// SignIn completes a consent from the address the browser landed on (with
// code and state): the code is exchanged for the car's tokens, the car is
// read from /garage and saved. A car consented again replaces its tokens.
func (c *Client) SignIn(ctx context.Context, pasted string) error {
	code, state, err := parseLanding(pasted)
	if err != nil {
		return err
	}
	c.mu.Lock()
	known := slices.ContainsFunc(c.saved.Pending, func(p pending) bool { return p.State == state })
	c.mu.Unlock()
	if !known {
		return fmt.Errorf("%w: the address's state is not one of this bridge's login links (a link is good for an hour and for one consent; open a new one)", fordapi.ErrInvalidCode)
	}
	// The link's state is public to whoever reads the retained login link:
	// it is used up only by a consent that completes, and the codes that
	// come with it pass the throttle first, so junk cannot burn the link or
	// flood Ford.
	if err := c.codes.Admit(code); err != nil {
		return err
	}
	tok, err := c.oauth.Exchange(c.httpContext(ctx), code)
	if err != nil {
		c.codes.Done(false)
		return fmt.Errorf("%w: FordConnect refused the code: %s", fordapi.ErrInvalidCode, oauthReason(err))
	}
	c.ownToken(tok.AccessToken)
	body, err := c.query(ctx, tok.AccessToken, "fcon_garage", PathGarage)
	if errors.As(err, new(*fordapi.RateLimitError)) {
		// The code is spent: wait as Ford said and read the car once more.
		body, err = c.query(ctx, tok.AccessToken, "fcon_garage", PathGarage)
	}
	if err != nil {
		c.codes.Done(false)
		return fmt.Errorf("reading the consented car: %w", err)
	}
	v, err := parseGarage(body)
	c.codes.Done(err == nil)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.saved.Pending = slices.DeleteFunc(c.saved.Pending, func(p pending) bool { return p.State == state })
	c.saved.Cars = slices.DeleteFunc(c.saved.Cars, func(x car) bool { return x.VIN == v.VIN })
	c.saved.Cars = append(c.saved.Cars, car{Vehicle: v, Token: *tok})
	c.cfg.Logger.Info("FordConnect consent added", zap.String("vin", fordapi.ShortVIN(v.VIN)), zap.Int("cars", len(c.saved.Cars)))
	if err := c.saveLocked(); err != nil {
		c.unsaved = err
		return fmt.Errorf("the car's tokens could not be saved: %w", err)
	}
	return nil
}

// parseLanding reads the code and state from the address the browser
// landed on (or its query alone).
func parseLanding(pasted string) (code, state string, err error) {
	s := strings.TrimSpace(pasted)
	if len(s) > 4096 {
		return "", "", fmt.Errorf("%w: the pasted text is %d characters; the address is at most 4096", fordapi.ErrInvalidCode, len(s))
	}
	u, perr := url.Parse(s)
	if perr != nil {
		return "", "", fmt.Errorf("%w: not an address; paste the whole address the browser landed on (…/fordconnect/callback?code=…&state=…)", fordapi.ErrInvalidCode)
	}
	q := u.Query()
	if u.RawQuery == "" && strings.Contains(s, "code=") {
		q, _ = url.ParseQuery(strings.TrimPrefix(s, "?"))
	}
	if e := q.Get("error"); e != "" {
		return "", "", fmt.Errorf("%w: Ford answered %s: %s", fordapi.ErrInvalidCode, fordapi.Clip(e, 200), fordapi.Clip(q.Get("error_description"), 200))
	}
	code, state = q.Get("code"), q.Get("state")
	if code == "" || state == "" {
		return "", "", fmt.Errorf("%w: the address has no code and state; paste the whole address the browser landed on (…/fordconnect/callback?code=…&state=…)", fordapi.ErrInvalidCode)
	}
	if !codeShape(code) {
		return "", "", fmt.Errorf("%w: the address's code is not one Ford issues (%d characters; Ford's are 8 to 2048 letters, digits and . _ - ~); paste the address exactly as the browser shows it", fordapi.ErrInvalidCode, len(code))
	}
	return code, state, nil
}

// codeShape says whether code can be an authorization code of Ford's
// (Azure AD B2C codes are URL-safe base64 parts joined by dots).
func codeShape(code string) bool {
	if len(code) < 8 || len(code) > 2048 {
		return false
	}
	for _, r := range code {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-~", r)) {
			return false
		}
	}
	return true
}

// Status says whether a car is consented, and why not.
func (c *Client) Status() fordapi.AuthStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adoptLocked()
	if len(c.saved.Cars) == 0 {
		return fordapi.AuthStatus{Reason: NoConsent}
	}
	// Signed in while one consent works; a refused one is its car's, and
	// Consents names it.
	live := slices.IndexFunc(c.saved.Cars, func(x car) bool { return x.Dead == "" })
	if live < 0 {
		return fordapi.AuthStatus{Reason: c.saved.Cars[0].Dead}
	}
	st := fordapi.AuthStatus{SignedIn: true, AccessExpiry: c.saved.Cars[live].Token.Expiry}
	if c.unsaved != nil {
		st.Unsaved = c.unsaved.Error()
	}
	return st
}

// NoConsent is Status's reason while no car is consented.
const NoConsent = "no car is consented to FordConnect yet: open the login link and consent"

// Consent is a consented car and how its consent stands.
type Consent struct {
	VIN     string     `json:"vin"`
	Refused string     `json:"refused,omitempty"`  // why Ford no longer takes it ("" while it works)
	RetryAt *time.Time `json:"retry_at,omitempty"` // when a refused one is tried again by itself
}

// Consents lists the consented cars (no call).
func (c *Client) Consents() []Consent {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adoptLocked()
	out := make([]Consent, 0, len(c.saved.Cars))
	for _, x := range c.saved.Cars {
		cs := Consent{VIN: x.VIN, Refused: x.Dead}
		if x.Dead != "" && x.Refusal != nil {
			at := x.Refusal.Next.UTC().Truncate(time.Second)
			cs.RetryAt = &at
		}
		out = append(out, cs)
	}
	return out
}

// Consented says whether vin has a consent that works.
func (c *Client) Consented(vin string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adoptLocked()
	return slices.ContainsFunc(c.saved.Cars, func(x car) bool { return x.VIN == vin && x.Dead == "" })
}

// SaveToken writes the tokens in memory to the file.
func (c *Client) SaveToken() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.saveLocked(); err != nil {
		c.unsaved = err
		return err
	}
	c.unsaved = nil
	return nil
}

func (c *Client) saveLocked() error {
	data, _ := json.Marshal(c.saved)
	if err := fordapi.WriteFileAtomic(c.file, data); err != nil {
		return err
	}
	if fi, err := os.Stat(c.file); err == nil {
		c.mod = fi.ModTime()
	}
	return nil
}

// Vehicles are the consented cars, as /garage described them at consent
// (no call).
func (c *Client) Vehicles(context.Context) ([]fordapi.Vehicle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adoptLocked()
	out := make([]fordapi.Vehicle, len(c.saved.Cars))
	for i, x := range c.saved.Cars {
		out[i] = x.Vehicle
	}
	return out, nil
}

// Telemetry reads a consented car's record, waiting for the pace.
func (c *Client) Telemetry(ctx context.Context, vin string) (*fordapi.Telemetry, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx, vin)
		if err != nil {
			return nil, err
		}
		c.telemetry.Add(1)
		body, err := c.query(ctx, tok, "fcon_telemetry", PathTelemetry)
		c.telemetry.Add(-1)
		var se *fordapi.StatusError
		if errors.As(err, &se) && se.Status == http.StatusUnauthorized && attempt == 0 {
			c.expire(vin, tok) // refreshed once, then tried again
			continue
		}
		if err != nil {
			return nil, err
		}
		_, tel, err := fordapi.ParseTelemetry(body)
		if err != nil {
			return nil, fmt.Errorf("reading FordConnect telemetry: %w", err)
		}
		return tel, nil
	}
}

// The FordConnect Query endpoints besides telemetry that ioBroker.ford
// polls (main.js, getExtraData, from Ford's FordConnect 2.0 collection)
// and ha-fordconnect-query names (const.py): the car's health alerts, and
// an electric car's departure times and charge schedules. No source shows
// their answers' shapes; they are passed on as Ford sends them.
var extras = map[string]string{
	"health_alerts":       "/fcon-query/v1/vehicle-health/alerts",
	"departure_schedules": "/fcon-query/v1/electric/departure-times",
	"charge_schedules":    "/fcon-query/v1/electric/charge-schedules",
}

// NotForCarError: Ford answered 404 (the endpoint is not for this car) or
// 403 (its category is not consented) to an Extras endpoint. Neither
// changes while the bridge runs (ioBroker.ford pauses the endpoint until
// a restart).
type NotForCarError struct {
	Endpoint string
	Status   int
}

func (e *NotForCarError) Error() string {
	if e.Status == http.StatusForbidden {
		return e.Endpoint + ": not consented for this car (403)"
	}
	return e.Endpoint + ": not for this car (404)"
}

// Extra reads one of extras for a car: Ford's answer, checked to be JSON.
func (c *Client) Extra(ctx context.Context, vin, name string) (json.RawMessage, error) {
	path, ok := extras[name]
	if !ok {
		return nil, fmt.Errorf("no FordConnect endpoint %q", name)
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx, vin)
		if err != nil {
			return nil, err
		}
		body, err := c.queryAs(ctx, tok, "fcon_"+name, path, true)
		var se *fordapi.StatusError
		if errors.As(err, &se) && se.Status == http.StatusUnauthorized && attempt == 0 {
			c.expire(vin, tok)
			continue
		}
		if err != nil {
			return nil, err
		}
		if !json.Valid(body) {
			return nil, fmt.Errorf("fcon_%s: Ford's answer is not JSON", name)
		}
		return body, nil
	}
}

// token is the car's access token, refreshed when it expired; a rotated
// refresh token is saved before the access token is used.
func (c *Client) token(ctx context.Context, vin string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.saved.Cars, func(x car) bool { return x.VIN == vin })
	switch {
	case i < 0:
		return "", &fordapi.ReauthError{Reason: "this car is not consented to FordConnect"}
	case c.saved.Cars[i].Dead != "":
		return "", &fordapi.ReauthError{Reason: c.saved.Cars[i].Dead}
	}
	x := &c.saved.Cars[i]
	if x.Token.Valid() {
		return x.Token.AccessToken, nil
	}
	tok, err := c.renewLocked(ctx, x)
	if err != nil {
		return "", err
	}
	x.Token = *tok
	if err := c.saveLocked(); err != nil {
		c.unsaved = err
		c.cfg.Logger.Error("the refreshed FordConnect token could not be saved; a restart needs a new consent", zap.Error(err))
	} else {
		c.unsaved = nil
	}
	return tok.AccessToken, nil
}

// renewLocked renews x's tokens. A renewal Ford refuses (invalid_grant)
// marks the consent refused, but its refresh token is kept and tried again
// (RetryRefused): Ford refuses every renewal during its own outages.
func (c *Client) renewLocked(ctx context.Context, x *car) (*oauth2.Token, error) {
	tok, err := c.oauth.TokenSource(c.httpContext(ctx), &x.Token).Token()
	if err == nil {
		c.ownLocked(tok.AccessToken)
		return tok, nil
	}
	if !refusedGrant(err) {
		return nil, fmt.Errorf("refreshing the FordConnect token: %s", oauthReason(err))
	}
	x.Refusal = x.Refusal.Refused(c.cfg.Now(), c.cfg.HealSchedule)
	x.Dead = "FordConnect refused the renewal of this car's consent (" + fordapi.Clip(oauthReason(err), 200) + "): consent again with a new login link"
	fields := []zap.Field{zap.String("vin", fordapi.ShortVIN(x.VIN)), zap.String("ford_says", fordapi.Clip(oauthReason(err), 200))}
	if x.Refusal != nil {
		x.Dead += "; Ford refuses every renewal during its own outages, so the bridge also tries the consent again by itself at " +
			x.Refusal.Next.Local().Format("Jan 2 15:04 MST")
		fields = append(fields, zap.Time("try_again_at", x.Refusal.Next))
	}
	c.cfg.Logger.Warn("FordConnect refused a consent's renewal; it is tried again later in case the refusal is temporary", fields...)
	_ = c.saveLocked()
	return nil, &fordapi.ReauthError{Reason: x.Dead}
}

// refusedGrant says whether a token endpoint refused the grant itself
// (invalid_grant), which is how Ford says a consent no longer works, and
// how it answers every renewal during its own outages.
func refusedGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || strings.Contains(string(re.Body), "invalid_grant"))
}

// RetryRefused tries again each refused consent whose time has come: one
// renewal each. It reports whether any was tried and whether any works
// again (then the car is read again with no user action).
func (c *Client) RetryRefused(ctx context.Context) (tried, healed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	for i := range c.saved.Cars {
		x := &c.saved.Cars[i]
		if x.Dead == "" || !x.Refusal.Due(now) {
			continue
		}
		tried = true
		since := x.Refusal.Since
		tok, err := c.renewLocked(ctx, x) // refused again: the next step of the schedule
		if err != nil {
			if !errors.Is(err, fordapi.ErrReauthRequired) {
				x.Refusal.Again(now, c.cfg.HealSchedule) // Ford down: no verdict
				_ = c.saveLocked()
			}
			continue
		}
		x.Token, x.Dead, x.Refusal = *tok, "", nil
		healed = true
		if err := c.saveLocked(); err != nil {
			c.unsaved = err
		}
		c.cfg.Logger.Info("Ford's refusal of a FordConnect consent was temporary: it works again, no new consent needed",
			zap.String("vin", fordapi.ShortVIN(x.VIN)), zap.Duration("refused_for", now.Sub(since).Round(time.Second)))
	}
	return tried, healed
}

// expire forgets an access token Ford refused, so the next call refreshes.
func (c *Client) expire(vin, tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.saved.Cars {
		if c.saved.Cars[i].VIN == vin && c.saved.Cars[i].Token.AccessToken == tok {
			c.saved.Cars[i].Token.Expiry = c.cfg.Now().Add(-time.Minute)
		}
	}
}

// query makes a Query request when the pace allows (waiting for it):
// requests go one at a time, each at least Pace after the previous one of
// its pace unit (its access token, or every car once Ford has shown a pace
// per app), and a 429's wait holds every later request of the unit. A 429
// that asks to wait no longer than twice the pace is waited out and the
// request made once more, as ioBroker.ford does: it is the pace, not a
// limit to report.
func (c *Client) query(ctx context.Context, tok, endpoint, path string) ([]byte, error) {
	return c.queryAs(ctx, tok, endpoint, path, false)
}

// queryAs is query; category: the endpoint is one of a consent's
// categories (Extras), where a 403 means the category is not consented
// and a 404 that it is not for this car (ioBroker.ford main.js), not a
// dead consent.
func (c *Client) queryAs(ctx context.Context, tok, endpoint, path string, category bool) ([]byte, error) {
	if at := time.Unix(0, c.quietUntil.Load()); category && at.After(c.cfg.Now()) {
		return nil, &fordapi.RateLimitError{Endpoint: endpoint, RetryAt: at}
	}
	for category && c.telemetry.Load() > 0 {
		t := time.NewTimer(c.cfg.Pace / 4)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.turn }()
	for attempt := 0; ; attempt++ {
		unit := tok
		if c.perApp {
			unit = ""
		}
		if d := c.next[unit].Sub(c.cfg.Now()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		// Whether the token kept its own pace: this client made it (nobody
		// else used it), or used it last at least a pace ago. A token
		// another process used (fordpass2mqtt login) proves nothing.
		at, used := c.used[tok]
		c.mu.Lock()
		kept := (!used && c.own[tok]) || (used && c.cfg.Now().Sub(at) >= c.cfg.Pace)
		c.mu.Unlock()
		body, status, retry, err := c.get(ctx, tok, endpoint, path)
		now := c.cfg.Now()
		c.used[tok] = now
		c.next[unit] = now.Add(max(c.cfg.Pace, retry.Sub(now)))
		c.forgetLocked(now, unit)
		if err != nil {
			return nil, err
		}
		switch status {
		case http.StatusOK:
			return body, nil
		case http.StatusTooManyRequests:
			c.quietUntil.Store(now.Add(max(10*c.cfg.Pace, 3*retry.Sub(now))).UnixNano())
			if !c.perApp && kept {
				// This token kept its own pace, so Ford counts wider: one
				// pace over every car from now on.
				c.perApp = true
				c.next[""] = c.next[unit]
				c.cfg.Logger.Info("FordConnect refused a car's request that kept the car's own pace: Ford paces the app as a whole here, so its cars now share one pace",
					zap.Duration("pace", c.cfg.Pace))
			}
			if attempt == 0 && retry.Sub(now) <= 2*c.cfg.Pace {
				continue
			}
			return nil, &fordapi.RateLimitError{Endpoint: endpoint, RetryAt: c.next[unit]}
		case http.StatusForbidden, http.StatusNotFound:
			if category {
				return nil, &NotForCarError{Endpoint: endpoint, Status: status}
			}
			if status == http.StatusNotFound {
				break
			}
			return nil, &fordapi.ReauthError{Reason: "FordConnect says this car is not consented (403): consent again with a new login link"}
		}
		return nil, &fordapi.StatusError{Endpoint: endpoint, Status: status, Message: fordapi.Clip(string(body), 200)}
	}
}

// forgetLocked drops the pace units whose wait is over and the tokens not
// used for a while (access tokens rotate); c.turn held.
func (c *Client) forgetLocked(now time.Time, keep string) {
	for k, at := range c.next {
		if k != keep && now.After(at) {
			delete(c.next, k)
		}
	}
	for k, at := range c.used {
		if now.Sub(at) > 10*c.cfg.Pace {
			delete(c.used, k)
		}
	}
}

// get makes one Query request: the body, the status and, on a 429, when
// Ford said to ask again (Retry-After in seconds or as a date, or "N
// seconds" in the body; a minute when it did not say).
func (c *Client) get(ctx context.Context, tok, endpoint, path string) (body []byte, status int, retry time.Time, err error) {
	_ = c.budget.Take(fordapi.ClassTelemetry) // a count; the pace is the limit
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, time.Time{}, fmt.Errorf("%s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, 0, time.Time{}, fmt.Errorf("%s: reading the answer: %w", endpoint, err)
	}
	if len(body) > maxBody {
		return nil, 0, time.Time{}, &fordapi.StatusError{Endpoint: endpoint, Status: resp.StatusCode, Message: "answer over 4 MB"}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		retry = fordapi.RetryAfter(resp.Header.Get("Retry-After"), body, c.cfg.Now(), time.Minute)
	}
	return body, resp.StatusCode, retry, nil
}

// httpContext carries the client's HTTP client to oauth2.
func (c *Client) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTPClient)
}

// parseGarage reads /garage: the consented car.
func parseGarage(data []byte) (fordapi.Vehicle, error) {
	var g struct {
		VIN        string `json:"vin"`
		Nickname   string `json:"nickName"`
		Model      string `json:"modelName"`
		Year       any    `json:"modelYear"`
		EngineType string `json:"engineType"`
		Type       string `json:"vehicleType"`
	}
	if err := json.Unmarshal(data, &g); err != nil || g.VIN == "" {
		return fordapi.Vehicle{}, fmt.Errorf("reading the consented car: FordConnect's garage answer has no vin")
	}
	v := fordapi.Vehicle{VIN: strings.ToUpper(strings.TrimSpace(g.VIN)), Nickname: g.Nickname, Model: g.Model, EngineType: g.EngineType}
	if v.Model == "" {
		v.Model = g.Type
	}
	switch y := g.Year.(type) {
	case string:
		v.Year = y
	case float64:
		v.Year = strconv.Itoa(int(y))
	}
	et := strings.ToUpper(v.EngineType)
	v.EV = strings.Contains(et, "BEV") || strings.Contains(et, "PHEV") || strings.Contains(et, "ELECTRIC")
	return v, nil
}

// oauthReason is a token endpoint's refusal in words, without the body's
// tokens.
func oauthReason(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return re.ErrorCode + ": " + fordapi.Clip(re.ErrorDescription, 200)
		}
		if re.Response != nil {
			return "HTTP " + strconv.Itoa(re.Response.StatusCode)
		}
		return "refused"
	}
	return err.Error()
}

// Commands: FordConnect Query has none.

func (c *Client) Stream(context.Context, string, fordapi.StreamOptions, func(*fordapi.Telemetry)) error {
	return errors.New("FordConnect Query has no telemetry stream; it is polled")
}
func (c *Client) SendCommand(context.Context, string, string, string, map[string]any) (string, error) {
	return "", ErrCommands
}
func (c *Client) WaitCommand(context.Context, string, string, string, <-chan *fordapi.Telemetry, func(*fordapi.Telemetry)) (fordapi.CommandState, error) {
	return fordapi.CommandState{}, ErrCommands
}

// FordPass: FordConnect Query reaches none of FordPass's hosts.
func (c *Client) FordPass(func(*fordapi.Client) error) error { return ErrCommands }

var _ fordapi.Backend = (*Client)(nil)
