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
	VehicleListTTL time.Duration // how often the vehicle list is fetched again [24h]
	EmptyListRetry time.Duration // how soon a list with no vehicles is asked again [1h]
	DarkAfter      time.Duration // how long a car may have no channel to Ford before it is offline [5m]
	DarkRetry      time.Duration // the longest wait between a failing car's tries, outside the hourly pace [4m]
	TokenCheck     time.Duration // how often the token file is checked (another sign-in, an unsaved token) [5s]
	FloodLogEvery  time.Duration // a flood of rejections is logged as one count per this interval [1m]
	Stream         fordapi.StreamOptions
	StreamRetry    time.Duration // first wait before reopening a closed stream [1m]
	DiscoveryDelay time.Duration // jitter before republishing discovery on HA's birth [0-3s]
	EchoGrace      time.Duration // how long the bridge's own publish may take to come back before it counts as dropped [30s]
	Now            func() time.Time
}

// core is what every part of the bridge reads; nothing in it changes after
// New.
type core struct {
	cfg  config.Config
	opts Options
	log  *zap.Logger
	ford fordapi.Backend
	m    *Metrics
	now  func() time.Time
	p    string       // topic prefix
	t    mqttapi.Tree // the topic tree under it
}

// Bridge is one running fordpass2mqtt: it wires its parts and runs their
// loops.
type Bridge struct {
	*core
	auth  *authSide // the auth state and the sign-in machinery
	web   *web.UI   // health, metrics and the sign-in page
	start time.Time

	pub       *publisher // the broker connection and what was published on it
	accepting atomic.Bool

	fleet     *fleet // the bridged cars and what the bridge knows of the account
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

// New makes a bridge; Run starts it.
func New(cfg config.Config, ford fordapi.Backend, opts Options) *Bridge {
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
	c := &core{cfg: cfg, opts: opts, log: opts.Logger, ford: ford, m: opts.Metrics, now: opts.Now,
		p: cfg.TopicPrefix, t: mqttapi.New(cfg.TopicPrefix)}
	b := &Bridge{core: c, start: opts.Now().UTC().Truncate(time.Second)}
	b.pub = &publisher{core: c, cache: retainedCache{m: map[string]string{}}}
	b.pub.disc.last, b.pub.disc.removal = map[string][32]byte{}, map[string][32]byte{}
	b.pub.disc.onBroker, b.pub.disc.leftover = map[string]components{}, map[string]map[string]string{}
	b.pub.configSlots = make(chan struct{}, configsInFlight)
	b.auth = &authSide{core: c, pub: b.pub, gate: newAuthGate(opts.Now())}
	b.auth.pending.wake = make(chan struct{}, 1)
	if d, ok := ford.(*both.Backend); ok {
		d.OnChange(b.auth.publishAuth)
	}
	b.m.setBudget(ford.Budget())
	b.shapes = loadShapes(cfg.StateDir, opts.Logger)
	b.fleet = &fleet{core: c, auth: b.auth, pub: b.pub, shapes: b.shapes, workers: &b.workers,
		host: carLink{b}, set: carLink{b}.settings(), wake: make(chan struct{}, 1),
		vehicles: map[string]*vehicle{}, stale: map[string]struct{}{},
		changed: func() {
			b.publishInfo(false)
			b.publishDiscovery(false)
			if _, ok := ford.(*both.Backend); ok {
				b.auth.publishAuth() // FordConnect's detail lists the bridged cars
			}
		}}
	b.auth.signedIn = b.fleet.signedIn
	b.auth.cars = b.fleet.bridgedVINs
	b.rejectLog = floodlog.New(opts.FloodLogEvery)
	b.web = web.New(cfg, webSide{b}, web.Options{Log: opts.Logger, Metrics: b.m.Handler(), AuthFailure: b.m.authFailure,
		FloodLogEvery: opts.FloodLogEvery, Now: opts.Now})
	return b
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

	if st := b.ford.Status(); st.SignedIn {
		b.auth.setAuth(StateOK, "signed in", time.Time{})
	} else {
		b.auth.setAuth(StateReauthRequired, st.Reason, time.Time{})
	}
	b.fleet.loadVehicleCache()

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

	b.workers.Add(4)
	go func() { defer b.workers.Done(); b.auth.signInLoop(workCtx) }()
	go func() { defer b.workers.Done(); b.fleet.accountLoop(workCtx) }()
	go b.infoLoop(workCtx)
	go func() { defer b.workers.Done(); b.auth.tokenWatch(workCtx) }()

	<-ctx.Done()
	b.log.Info("shutting down")
	b.accepting.Store(false)
	if b.pub.connected.Load() {
		_ = WaitToken(b.pub.client.Unsubscribe(b.t.AllCommands(), b.t.CodeSet()), 2*time.Second)
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
	if st := b.ford.Status(); st.Unsaved != "" {
		if err := b.ford.SaveToken(); err != nil {
			b.log.Error("at shutdown the token still cannot be saved: the next start needs a new sign-in", zap.Error(err))
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
	if b.pub.connected.Load() {
		if err := WaitToken(b.pub.client.Publish(b.t.Availability(), 1, true, "offline"), 3*time.Second); err != nil {
			b.log.Warn("could not publish offline", zap.Error(err))
		}
	}
	b.pub.client.Disconnect(500)
	budgets := []*fordapi.Budget{b.ford.Budget()}
	if h, ok := b.ford.(fordapi.BudgetHolder); ok {
		budgets = h.Budgets()
	}
	for _, budget := range budgets {
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
