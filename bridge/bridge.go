// Package bridge is the service: it keeps the FordPass account signed in,
// streams or polls each vehicle's telemetry within the daily call budget,
// publishes it and its own auth state as retained MQTT topics (with Home
// Assistant discovery), runs commands from MQTT, and serves the health,
// metrics and sign-in page over HTTP.
package bridge

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/floodlog"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/web"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/both"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// Options are the parts of the bridge that are not user configuration.
type Options struct {
	Version        string
	Logger         *zap.Logger
	Metrics        *Metrics      // nil: a private registry
	CommandTimeout time.Duration // how long a command may take [3m]
	ShutdownGrace  time.Duration // how long shutdown waits for a command in flight [20s]
	BackoffMin     time.Duration // first wait after a transient fault [5s]
	BackoffMax     time.Duration // longest wait [15m]
	RefreshEvery   time.Duration // at most one "refresh" command per vehicle in this time [10m]
	MessagesEvery  time.Duration // how often an account's message centre is read [6h]
	ExtrasEvery    time.Duration // how often each read besides telemetry is made per car (extras.go) [6h]
	// The reads besides the cars' state (a climate profile, extras.go)
	// start ExtrasDelay after every car has its first state, and go one
	// per ExtrasGap, so a fleet's start asks Ford once per car and never
	// in a burst. [1m, 1s]
	ExtrasDelay, ExtrasGap time.Duration
	FieldGrace             time.Duration // how long a field missing from Ford's answers keeps its last value [24h]
	VehicleListTTL         time.Duration // how often the vehicle list is fetched again [24h]
	EmptyListRetry         time.Duration // how soon a list with no vehicles is asked again [1h]
	DarkAfter              time.Duration // how long a car may have no channel to Ford before it is offline [5m]
	DarkRetry              time.Duration // the longest wait between a failing car's tries, outside the hourly pace [4m]
	TokenCheck             time.Duration // how often the token file is checked (another sign-in, an unsaved token) [5s]
	FloodLogEvery          time.Duration // a flood of rejections is logged as one count per this interval [1m]
	Stream                 fordapi.StreamOptions
	StreamRetry            time.Duration // first wait before reopening a closed stream [1m]
	DiscoveryDelay         time.Duration // jitter before republishing discovery on HA's birth [0-3s]
	EchoGrace              time.Duration // how long the bridge's own publish may take to come back before it counts as dropped [30s]
	Now                    func() time.Time
}

// core is what every part of the bridge reads; nothing in it changes after
// New.
type core struct {
	cfg  config.Config
	opts Options
	log  *zap.Logger
	m    *Metrics
	now  func() time.Time
	p    string       // topic prefix
	t    mqttapi.Tree // the topic tree under it
}

// fordAccount is one Ford account the bridge serves: its backend, its auth
// state and sign-in, and its cars. Its core is the bridge's as the account
// sees it: its STATE_DIR, region and VINs (config.Config.ForAccount), its
// name on every log line, and its auth topics (mqttapi.Tree.Account).
type fordAccount struct {
	*core
	name  string // "" for the only account when FORD_ACCOUNTS is unset
	ford  fordapi.Backend
	auth  *authSide
	fleet *fleet
}

// Bridge is one running fordpass2mqtt: it wires its parts and runs their
// loops.
type Bridge struct {
	*core
	web   *web.UI // health, metrics and the sign-in page
	start time.Time

	pub       *publisher // the broker connection and what was published on it
	accepting atomic.Bool

	// accounts are the Ford accounts served, in FORD_ACCOUNTS's order;
	// one, named "", unless it names several.
	accounts  []*fordAccount
	authPubMu sync.Mutex // serializes the summary of several accounts' auth states
	workers   sync.WaitGroup
	commands  sync.WaitGroup
	cmdCtx    context.Context
	cmdCancel context.CancelFunc
	drift     driftLog
	shapes    *shapes                // each car's device shape, kept across restarts
	rejectLog *floodlog.Log          // rejected commands, logged in summary
	doctor    atomic.Pointer[Report] // last doctor run, for the sign-in page
	instance  string                 // this installation's id (STATE_DIR/instance)
	reportKey []byte                 // verifies doctor's reports (STATE_DIR/doctor.key)
}

// New makes a bridge of one Ford account; Run starts it.
func New(cfg config.Config, ford fordapi.Backend, opts Options) *Bridge {
	if len(cfg.Accounts) != 1 {
		cfg.Accounts = nil // the one account of cfg.Region and cfg.VINs
	}
	return NewAccounts(cfg, []fordapi.Backend{ford}, opts)
}

// NewAccounts makes a bridge of the accounts cfg.Accounts names, fords
// being their backends in the same order; Run starts it.
func NewAccounts(cfg config.Config, fords []fordapi.Backend, opts Options) *Bridge {
	cfg.Accounts = cfg.AccountList()
	if len(fords) != len(cfg.Accounts) {
		panic("bridge: one backend per account") // a programming error
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	// A zero duration takes its default (the bracketed value in Options).
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&opts.CommandTimeout, 3 * time.Minute},
		{&opts.ShutdownGrace, 20 * time.Second},
		{&opts.BackoffMin, 5 * time.Second},
		{&opts.BackoffMax, 15 * time.Minute},
		{&opts.RefreshEvery, 10 * time.Minute},
		{&opts.MessagesEvery, 6 * time.Hour},
		{&opts.ExtrasEvery, 6 * time.Hour},
		{&opts.ExtrasDelay, time.Minute},
		{&opts.ExtrasGap, time.Second},
		{&opts.FieldGrace, 24 * time.Hour},
		{&opts.VehicleListTTL, 24 * time.Hour},
		{&opts.EmptyListRetry, time.Hour},
		{&opts.DarkAfter, 5 * time.Minute},
		{&opts.DarkRetry, 4 * time.Minute},
		{&opts.TokenCheck, 5 * time.Second},
		{&opts.FloodLogEvery, time.Minute},
		{&opts.StreamRetry, time.Minute},
		{&opts.DiscoveryDelay, 3 * time.Second},
		{&opts.EchoGrace, 30 * time.Second},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	c := &core{cfg: cfg, opts: opts, log: opts.Logger, m: opts.Metrics, now: opts.Now,
		p: cfg.TopicPrefix, t: mqttapi.New(cfg.TopicPrefix)}
	b := &Bridge{core: c, start: opts.Now().UTC().Truncate(time.Second)}
	b.pub = &publisher{core: c, cache: retainedCache{m: map[string]string{}}}
	b.pub.disc.last, b.pub.disc.removal = map[string][32]byte{}, map[string][32]byte{}
	b.pub.disc.onBroker, b.pub.disc.leftover = map[string]components{}, map[string]map[string]string{}
	b.pub.configSlots = make(chan struct{}, configsInFlight)
	b.shapes = loadShapes(cfg.StateDir, opts.Logger)
	for i, ac := range cfg.Accounts {
		b.accounts = append(b.accounts, b.newAccount(ac, fords[i]))
	}
	b.m.setBudget(b.budgets()...)
	b.rejectLog = floodlog.New(opts.FloodLogEvery)
	b.web = web.New(cfg, webSide{b}, web.Options{Log: opts.Logger, Metrics: b.m.Handler(), AuthFailure: b.m.authFailure,
		FloodLogEvery: opts.FloodLogEvery, Now: opts.Now})
	return b
}

// newAccount wires one account's auth side and fleet to the bridge.
func (b *Bridge) newAccount(ac config.Account, ford fordapi.Backend) *fordAccount {
	c := *b.core
	c.cfg = b.cfg.ForAccount(ac)
	c.t = b.t.Account(ac.Name)
	if ac.Name != "" {
		c.log = b.log.With(zap.String("account", ac.Name))
	}
	a := &fordAccount{core: &c, name: ac.Name, ford: ford}
	a.auth = &authSide{core: &c, ford: ford, pub: b.pub, gate: newAuthGate(b.now()), published: b.authChanged}
	a.auth.pending.wake = make(chan struct{}, 1)
	if d, ok := ford.(*both.Backend); ok {
		d.OnChange(a.auth.publishAuth)
	}
	link := carLink{b, a}
	a.fleet = &fleet{core: &c, ford: ford, auth: a.auth, pub: b.pub, shapes: b.shapes, workers: &b.workers,
		host: link, set: link.settings(), wake: make(chan struct{}, 1),
		vehicles: map[string]*vehicle{}, stale: map[string]struct{}{},
		takenBy: func(vin string) string { return b.bridgedElsewhere(a, vin) },
		changed: func() {
			b.publishInfo(false)
			b.publishDiscovery(false)
			if _, ok := ford.(*both.Backend); ok {
				a.auth.publishAuth() // FordConnect's detail lists the bridged cars
			}
		}}
	a.auth.signedIn = a.fleet.signedIn
	a.auth.cars = a.fleet.bridgedVINs
	return a
}

// named says whether the bridge serves several accounts (FORD_ACCOUNTS).
func (b *Bridge) named() bool { return b.accounts[0].name != "" }

// budgets are every budget the accounts' backends hold.
func (b *Bridge) budgets() []*fordapi.Budget {
	var out []*fordapi.Budget
	for _, a := range b.accounts {
		if h, ok := a.ford.(fordapi.BudgetHolder); ok {
			out = append(out, h.Budgets()...)
		} else {
			out = append(out, a.ford.Budget())
		}
	}
	return out
}

// Run runs the bridge until ctx ends, then shuts down cleanly: no new
// commands, the one in flight finished or timed out, "offline" published.
func (b *Bridge) Run(ctx context.Context) error {
	if err := fordapi.PrepareStateDir(b.cfg.StateDir); err != nil {
		return config.NewError("STATE_DIR", err)
	}
	lock, err := fordapi.LockStateDir(b.cfg.StateDir)
	if err != nil {
		return config.NewError("STATE_DIR", err)
	}
	defer lock.Release()
	fixed, err := fordapi.FixPrivateModes(b.cfg.StateDir)
	if err != nil {
		b.log.Warn("a secret file in STATE_DIR is not private", zap.Error(err))
	}
	if len(fixed) > 0 {
		b.log.Warn("secret files in STATE_DIR were readable by others; made them private (0600)", zap.Strings("files", fixed))
	}
	id, err := InstanceID(b.cfg.StateDir)
	if err != nil {
		return config.NewError("STATE_DIR", err)
	}
	b.instance = id
	if b.reportKey, err = reportKey(b.cfg.StateDir); err != nil {
		return config.NewError("STATE_DIR", err)
	}
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	b.cmdCtx, b.cmdCancel = context.WithCancel(context.Background())
	defer b.cmdCancel()

	for _, a := range b.accounts {
		if a.name != "" {
			if err := fordapi.PrepareStateDir(a.cfg.StateDir); err != nil {
				return config.NewError("STATE_DIR", err)
			}
			if fixed, err := fordapi.FixPrivateModes(a.cfg.StateDir); err != nil || len(fixed) > 0 {
				a.log.Warn("secret files in the account's folder were readable by others or links", zap.Strings("made_private", fixed), zap.Error(err))
			}
		}
		if st := a.ford.Status(); st.SignedIn {
			a.auth.setAuth(StateOK, "signed in", time.Time{})
		} else {
			a.auth.setAuth(StateReauthRequired, st.Reason, time.Time{})
		}
		a.fleet.loadVehicleCache()
		a.fleet.loadMessageCache()
		a.fleet.kept = a.fleet.loadExtras()
	}

	opts, err := MQTTOptions(b.cfg, b.log, true, b.onConnect, b.onConnectionLost)
	if err != nil {
		return err
	}
	_, secure, _ := brokerURL(b.cfg.MQTTURL)
	opts.SetConnectionNotificationHandler(b.pub.connectionNotifications(secure))
	b.pub.client = mqtt.NewClient(opts)
	b.accepting.Store(true)
	b.log.Info("connecting to the broker", zap.String("url", RedactURL(b.cfg.MQTTURL)))
	b.pub.client.Connect() // retries by itself until it connects; onConnect does the rest

	var srv *http.Server
	if b.cfg.HTTPAddr != "" {
		srv, err = b.web.Serve()
		if err != nil {
			b.pub.client.Disconnect(0)
			return err
		}
	}

	b.workers.Add(1 + 5*len(b.accounts))
	go b.infoLoop(workCtx)
	for _, a := range b.accounts {
		go func() { defer b.workers.Done(); a.auth.signInLoop(workCtx) }()
		go func() { defer b.workers.Done(); a.fleet.accountLoop(workCtx) }()
		go func() { defer b.workers.Done(); a.auth.tokenWatch(workCtx) }()
		go func() { defer b.workers.Done(); a.fleet.messagesLoop(workCtx) }()
		go func() { defer b.workers.Done(); a.fleet.extrasLoop(workCtx) }()
	}

	<-ctx.Done()
	b.log.Info("shutting down")
	b.accepting.Store(false)
	if b.pub.connected.Load() {
		_ = WaitToken(b.pub.client.Unsubscribe(append([]string{b.t.AllCommands()}, b.codeTopics()...)...), 2*time.Second)
	}
	done := make(chan struct{})
	go func() { b.commands.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(b.opts.ShutdownGrace):
		b.log.Warn("a command was still running at shutdown; reporting it as timed out")
		b.cmdCancel()
		<-done
	}
	stopWork()
	b.workers.Wait()
	b.shapes.flush()
	for _, a := range b.accounts {
		if st := a.ford.Status(); st.Unsaved != "" {
			if err := a.ford.SaveToken(); err != nil {
				a.log.Error("at shutdown the token still cannot be saved: the next start needs a new sign-in", zap.Error(err))
			}
		}
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	if b.pub.connected.Load() && b.cfg.Demo {
		b.clearDemo()
	}
	if b.pub.connected.Load() && !b.cfg.Demo {
		// Each car is offline too, with its state JSON saying so: a reader
		// of the car's topics alone (evcc) knows its values are not live.
		for _, v := range b.cars() {
			v.stopped()
		}
	}
	if b.pub.connected.Load() {
		if err := WaitToken(b.pub.client.Publish(b.t.Availability(), 1, true, "offline"), 3*time.Second); err != nil {
			b.log.Warn("could not publish offline", zap.Error(err))
		}
	}
	b.pub.client.Disconnect(500)
	for _, budget := range b.budgets() {
		if err := budget.Close(); err != nil {
			b.log.Warn("could not save the call budget", zap.Error(err))
		}
	}
	b.pub.connected.Store(false)
	b.m.setConnected(false)
	b.log.Info("stopped")
	return nil
}

func RedactURL(raw string) string {
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "…" + raw[i:]
		}
	}
	return raw
}
