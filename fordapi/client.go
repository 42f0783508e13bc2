// Package fordapi is a client of the FordPass cloud: browser sign-in with
// PKCE, the three token layers (B2C, FordPass "CAT", Autonomic), the vehicle
// list, telemetry over REST and websocket, and remote commands. Every call to
// Ford is counted against a daily budget, refreshes are serialized per
// account, and errors say whether the user must act (ErrReauthRequired) or
// the fault is transient. Ford's constants live in endpoints.go; the
// simulator in fordapi/fordsim serves the same protocol for tests.
package fordapi

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync"
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
	// ZoneLightsSettle is the wait between switching zone lighting on and
	// picking its zone [5s, as ha-fordpass waits].
	ZoneLightsSettle time.Duration
	// DefaultClimate: where Ford holds no remote climate profile for a
	// car, a change starts from ha-fordpass's default profile
	// (DefaultClimateProfile) instead of failing.
	DefaultClimate bool
	// HealSchedule is the wait before each try again of a refresh token
	// Ford refused [DefaultHealSchedule] (see Refusal).
	HealSchedule []time.Duration
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
	settle time.Duration // Config.ZoneLightsSettle
	// defaultClimate: Config.DefaultClimate
	defaultClimate bool

	mu        sync.Mutex
	tok       *Token
	tokMod    time.Time // modification time of the token file as last read or written
	loaded    bool
	dead      *ReauthError // set: no call until SignIn
	refusal   *Refusal     // with dead: Ford refused the refresh token, which is tried again
	heal      []time.Duration
	auto      *oauth2.Token // Autonomic bearer token
	autoEarly time.Duration // renew the Autonomic token this long before it expires
	catSem    chan struct{} // one CAT refresh at a time
	autoSem   chan struct{} // one Autonomic exchange at a time
	refresh4x int           // consecutive 400/401 from the refresh endpoint without Ford's marker
	signIns   *CodeThrottle
	signInMu  sync.Mutex  // held for a whole code exchange
	proto     Protocol    // what was learned of Ford's protocol (protocol.go)
	sockets   socketWatch // the sockets' openings and displacements (sockets.go)
	api401    int         // consecutive 401s from data endpoints
	unsaved   error       // why the token in use could not be saved (nil: the file holds it)
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
	if cfg.ZoneLightsSettle <= 0 {
		cfg.ZoneLightsSettle = 5 * time.Second
	}
	c := &Client{
		region: cfg.Region, hosts: resolveHosts(cfg.Region, cfg.BaseURL), http: cfg.HTTPClient,
		log: cfg.Logger, now: cfg.Now, store: NewTokenStore(cfg.StateDir, cfg.Region.Key),
		onCall: cfg.OnCall, onRef: cfg.OnRefresh, settle: cfg.ZoneLightsSettle, defaultClimate: cfg.DefaultClimate, heal: cfg.HealSchedule,
		catSem: make(chan struct{}, 1), autoSem: make(chan struct{}, 1), proto: loadProtocol(cfg.StateDir),
	}
	c.signIns = NewCodeThrottle(filepath.Join(cfg.StateDir, codesFileName), cfg.Now)
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

// ForRetry marks ctx as a retry of a car Ford has not answered for: its
// telemetry calls count in the daily share but not the hourly pace
// (TakeRetry).
func ForRetry(ctx context.Context) context.Context { return context.WithValue(ctx, retryKey{}, true) }

type retryKey struct{}

// take takes a call of class k from the budget, for a retry when ctx says so.
func (c *Client) take(ctx context.Context, k Class) error {
	if retry, _ := ctx.Value(retryKey{}).(bool); retry && k == ClassTelemetry {
		// Only telemetry's pace gives way: the token exchanges' is Ford's.
		return c.budget.TakeRetry(k)
	}
	return c.budget.Take(k)
}

func classOf(ctx context.Context) Class {
	if k, ok := ctx.Value(classKey{}).(Class); ok {
		return k
	}
	return ClassTelemetry
}
