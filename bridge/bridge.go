// Package bridge is the service: it keeps the FordPass account signed in,
// streams or polls each vehicle's telemetry within the daily call budget,
// publishes it and its own auth state as retained MQTT topics (with Home
// Assistant discovery), runs commands from MQTT, and serves the health,
// metrics and sign-in page over HTTP.
package bridge

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/discovery"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// Ford is what the bridge needs from the FordPass cloud; *fordapi.Client
// provides it.
type Ford interface {
	LoginURL() (string, error)
	SignIn(ctx context.Context, pasted string) error
	Status() fordapi.AuthStatus
	Vehicles(ctx context.Context) ([]fordapi.Vehicle, error)
	Telemetry(ctx context.Context, vin string) (fordapi.Document, *fordapi.Telemetry, error)
	Stream(ctx context.Context, vin string, doc fordapi.Document, opts fordapi.StreamOptions, onUpdate func(fordapi.Document, *fordapi.Telemetry)) error
	SendCommand(ctx context.Context, vin, cmdType string, props map[string]any) (string, error)
	WaitCommand(ctx context.Context, vin, cmdType, id string, updates <-chan *fordapi.Telemetry) (fordapi.CommandState, error)
	Budget() *fordapi.Budget
}

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
	Stream         fordapi.StreamOptions
	StreamRetry    time.Duration // first wait before reopening a closed stream [1m]
	DiscoveryDelay time.Duration // jitter before republishing discovery on HA's birth [0-3s]
	Now            func() time.Time
}

// Bridge is one running fordpass2mqtt.
type Bridge struct {
	cfg   Config
	opts  Options
	log   *zap.Logger
	ford  Ford
	m     *Metrics
	now   func() time.Time
	p     string // topic prefix
	cache retainedCache
	gate  *authGate
	start time.Time

	client    mqtt.Client
	connected atomic.Bool
	accepting atomic.Bool

	mu        sync.Mutex
	vehicles  map[string]*vehicle // running workers by VIN
	list      []fordapi.Vehicle   // last vehicle list (filtered by FORD_VINS)
	listAt    time.Time
	discLast  map[string][32]byte // discovery topic → SHA-256 of the payload last published
	stale     map[string]struct{} // VINs whose device config must be cleared
	cachedAll []fordapi.Vehicle   // the account's vehicles as last seen, unfiltered
	workCtx   context.Context
	workers   sync.WaitGroup
	commands  sync.WaitGroup
	cmdCtx    context.Context
	cmdCancel context.CancelFunc
	listWake  chan struct{}
	// snapshotDue: the next vehicle list and each car's next telemetry are
	// the first snapshot after a sign-in.
	snapshotDue atomic.Bool
	// birthPending: a discovery republish for Home Assistant's birth is
	// scheduled; more births until it runs add nothing.
	birthPending atomic.Bool
	lastBirth    atomic.Int64 // unix nanoseconds of the last birth republish
	signInMu     sync.Mutex
	pending      pendingSignIn
	drift        driftLog
	broker       brokerState
	// everConnected: the broker was reached once (paho's retry pace differs
	// before and after).
	everConnected atomic.Bool
	authPubMu     sync.Mutex             // serializes auth publishing: the last state read is the last sent
	doctor        atomic.Pointer[Report] // last doctor run, for the sign-in page
	instance      string                 // this installation's id (STATE_DIR/instance)
	connects      []time.Time            // broker connections in the last hour
}

// New makes a bridge; Run starts it.
func New(cfg Config, ford Ford, opts Options) *Bridge {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 3 * time.Minute
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 20 * time.Second
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 5 * time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 15 * time.Minute
	}
	if opts.RefreshEvery <= 0 {
		opts.RefreshEvery = 10 * time.Minute
	}
	if opts.VehicleListTTL <= 0 {
		opts.VehicleListTTL = 24 * time.Hour
	}
	if opts.StreamRetry <= 0 {
		opts.StreamRetry = time.Minute
	}
	if opts.DiscoveryDelay <= 0 {
		opts.DiscoveryDelay = 3 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	b := &Bridge{cfg: cfg, opts: opts, log: opts.Logger, ford: ford, m: opts.Metrics, now: opts.Now,
		p: cfg.TopicPrefix, cache: retainedCache{m: map[string]string{}}, gate: newAuthGate(opts.Now()),
		start: opts.Now().UTC().Truncate(time.Second), vehicles: map[string]*vehicle{}, discLast: map[string][32]byte{}, stale: map[string]struct{}{},
		listWake: make(chan struct{}, 1)}
	b.pending.wake = make(chan struct{}, 1)
	b.m.setBudget(ford.Budget())
	return b
}

// Topic helpers.
func (b *Bridge) topic(parts ...string) string { return b.p + "/" + strings.Join(parts, "/") }

// Run runs the bridge until ctx ends, then shuts down cleanly: no new
// commands, the one in flight finished or timed out, "offline" published.
func (b *Bridge) Run(ctx context.Context) error {
	if err := fordapi.PrepareStateDir(b.cfg.StateDir); err != nil {
		return fmt.Errorf("STATE_DIR: %w", err)
	}
	if fixed, err := fordapi.FixPrivateModes(b.cfg.StateDir); err != nil {
		b.log.Warn("a secret file in STATE_DIR is readable by others", zap.Error(err))
	} else if len(fixed) > 0 {
		b.log.Warn("secret files in STATE_DIR were readable by others; made them private (0600)", zap.Strings("files", fixed))
	}
	id, err := InstanceID(b.cfg.StateDir)
	if err != nil {
		return fmt.Errorf("STATE_DIR: %w", err)
	}
	b.instance = id
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	b.workCtx = workCtx
	b.cmdCtx, b.cmdCancel = context.WithCancel(context.Background())
	defer b.cmdCancel()

	if st := b.ford.Status(); st.SignedIn {
		b.setAuth(StateOK, "signed in", time.Time{})
	} else {
		b.setAuth(StateReauthRequired, st.Reason, time.Time{})
	}
	b.loadVehicleCache()

	opts, err := mqttOptions(b.cfg, b.log, true, b.onConnect, b.onConnectionLost)
	if err != nil {
		return err
	}
	_, secure, _ := brokerURL(b.cfg.MQTTURL)
	opts.SetConnectionNotificationHandler(b.connectionNotifications(secure))
	b.client = mqtt.NewClient(opts)
	b.accepting.Store(true)
	b.log.Info("connecting to the broker", zap.String("url", redactURL(b.cfg.MQTTURL)))
	b.client.Connect() // retries by itself until it connects; onConnect does the rest

	var srv *http.Server
	if b.cfg.HTTPAddr != "" {
		srv, err = b.serveHTTP()
		if err != nil {
			b.client.Disconnect(0)
			return err
		}
	}

	b.workers.Add(4)
	go b.signInLoop(workCtx)
	go b.accountLoop(workCtx)
	go b.infoLoop(workCtx)
	go b.tokenWatch(workCtx)

	<-ctx.Done()
	b.log.Info("shutting down")
	b.accepting.Store(false)
	if b.connected.Load() {
		_ = wait(b.client.Unsubscribe(b.topic("+", "command"), b.topic("auth", "code", "set")), 2*time.Second)
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
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	if b.connected.Load() && b.cfg.Demo {
		b.clearDemo()
	}
	if b.connected.Load() {
		if err := wait(b.client.Publish(b.topic("bridge", "availability"), 1, true, "offline"), 3*time.Second); err != nil {
			b.log.Warn("could not publish offline", zap.Error(err))
		}
	}
	b.client.Disconnect(500)
	if err := b.ford.Budget().Flush(); err != nil {
		b.log.Warn("could not save the call budget", zap.Error(err))
	}
	b.connected.Store(false)
	b.m.mqttConnected.Set(0)
	b.log.Info("stopped")
	return nil
}

// clearDemo removes what the demo retained on the broker (its state topics
// and its Home Assistant devices), so a demo on a real broker leaves
// nothing behind.
func (b *Bridge) clearDemo() {
	var last mqtt.Token
	for topic := range b.cache.snapshot() {
		last = b.client.Publish(topic, 1, true, []byte{})
	}
	b.mu.Lock()
	configs := make([]string, 0, len(b.discLast))
	for topic := range b.discLast {
		configs = append(configs, topic)
	}
	b.mu.Unlock()
	for _, topic := range configs {
		last = b.client.Publish(topic, 1, true, []byte{})
	}
	if last != nil {
		_ = wait(last, 3*time.Second)
	}
	b.log.Info("demo: cleared its retained topics and Home Assistant devices", zap.Int("topics", len(configs)+len(b.cache.snapshot())))
}

func redactURL(raw string) string {
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "…" + raw[i:]
		}
	}
	return raw
}

// ---- MQTT ----

func (b *Bridge) onConnect(c mqtt.Client) {
	b.connected.Store(true)
	b.m.mqttConnected.Set(1)
	b.mu.Lock()
	now := b.now()
	b.connects = append(b.connects, now)
	for len(b.connects) > 0 && now.Sub(b.connects[0]) > time.Hour {
		b.connects = b.connects[1:]
	}
	n := len(b.connects)
	b.mu.Unlock()
	if n > 5 {
		b.log.Warn("connected to the broker again; another client may be using MQTT_CLIENT_ID", zap.Int("connections_last_hour", n))
	} else {
		b.log.Info("connected to the broker")
	}
	subs := map[string]byte{b.topic("+", "command"): 1, b.topic("auth", "code", "set"): 1, b.topic("bridge", "doctor"): 1}
	if b.cfg.HADiscovery {
		subs[b.cfg.HADiscoveryPrefix+"/status"] = 1
	}
	tok := c.SubscribeMultiple(subs, b.route)
	go func() {
		if err := wait(tok, 10*time.Second); err != nil {
			b.log.Error("subscribing failed", zap.Error(err))
		}
	}()
	c.Publish(b.topic("bridge", "availability"), 1, true, "online")
	// Everything retained goes out again: the broker may have lost it.
	for topic, payload := range b.cache.snapshot() {
		c.Publish(topic, 1, true, payload)
	}
	b.publishInfo(true)
	if b.cfg.HADiscovery {
		b.publishDiscovery(true)
	}
}

func (b *Bridge) onConnectionLost(err error) {
	b.connected.Store(false)
	b.m.mqttConnected.Set(0)
	b.log.Warn("lost the broker; reconnecting", zap.Error(err))
}

// route dispatches an incoming message (paho runs it in its own goroutine).
func (b *Bridge) route(_ mqtt.Client, msg mqtt.Message) {
	topic := msg.Topic()
	switch {
	case topic == b.topic("auth", "code", "set"):
		b.onCode(msg)
	case topic == b.topic("bridge", "doctor"):
		var r Report
		if json.Unmarshal(msg.Payload(), &r) == nil && len(r.Checks) > 0 {
			b.doctor.Store(&r)
		}
	case b.cfg.HADiscovery && topic == b.cfg.HADiscoveryPrefix+"/status":
		if strings.TrimSpace(string(msg.Payload())) == "online" {
			// One republish per burst of births, however many arrive, and
			// at most one per cooldown (ten times the jitter) after that.
			if !b.birthPending.CompareAndSwap(false, true) {
				return
			}
			delay := time.Duration(rand.Int64N(int64(b.opts.DiscoveryDelay)))
			if next := time.Unix(0, b.lastBirth.Load()).Add(10 * b.opts.DiscoveryDelay); time.Until(next) > delay {
				delay = time.Until(next)
			}
			b.log.Debug("Home Assistant came online; republishing discovery", zap.Duration("in", delay))
			time.AfterFunc(delay, func() {
				b.lastBirth.Store(time.Now().UnixNano())
				b.birthPending.Store(false)
				b.publishDiscovery(true)
				for topic, payload := range b.cache.snapshot() {
					b.client.Publish(topic, 1, true, payload)
				}
			})
		}
	default:
		if vin := topicVIN(b.p, topic, "command"); vin != "" {
			b.onCommand(vin, msg)
		}
	}
}

// publishState publishes a retained state value if it changed, and says
// whether it did.
func (b *Bridge) publishState(topic, payload string) bool {
	if !b.cache.set(topic, payload) {
		return false
	}
	b.m.published.Inc()
	if b.client != nil && b.connected.Load() {
		b.client.Publish(topic, 1, true, payload)
	}
	return true
}

// publishEvent publishes a non-retained message.
func (b *Bridge) publishEvent(topic string, v any) {
	data, _ := json.Marshal(v)
	if b.client != nil && b.connected.Load() {
		b.client.Publish(topic, 1, false, data)
	}
}

// ---- auth state ----

// setAuth moves the auth state and publishes it when it changed.
func (b *Bridge) setAuth(state, reason string, retryAt time.Time) {
	login := ""
	if state == StateReauthRequired {
		u, err := b.ford.LoginURL()
		if err != nil {
			b.log.Error("cannot make a login link", zap.Error(err))
		}
		login = u
	}
	prev := b.gate.get().State
	if !b.gate.set(b.now(), state, reason, retryAt, login) {
		return
	}
	if prev != state {
		fields := []zap.Field{zap.String("state", state), zap.String("reason", reason)}
		if !retryAt.IsZero() {
			fields = append(fields, zap.Time("retry_at", retryAt))
		}
		if state == StateOK {
			b.log.Info("FordPass connection ok", fields...)
		} else {
			b.log.Warn("FordPass connection "+state, fields...)
		}
	}
	b.m.setAuthState(state)
	b.publishAuth()
	if state == StateRateLimited && !retryAt.IsZero() {
		// The wait ends by itself: nothing needs to call Ford to find out.
		time.AfterFunc(max(retryAt.Sub(b.now()), 0)+time.Second, func() {
			info := b.gate.get()
			if info.State == StateRateLimited && info.RetryAt != nil && !b.now().Before(*info.RetryAt) {
				b.setAuth(StateOK, "the wait is over; resuming", time.Time{})
			}
		})
	}
}

func (b *Bridge) publishAuth() {
	b.authPubMu.Lock()
	defer b.authPubMu.Unlock()
	info := b.gate.get()
	info.SignInURL = b.cfg.HTTPPublicURL
	b.publishState(b.topic("auth", "state"), info.State)
	b.publishState(b.topic("auth", "detail"), info.json())
	b.publishState(b.topic("auth", "login_url"), info.LoginURL)
}

// AuthInfo is the current auth state.
func (b *Bridge) AuthInfo() AuthInfo {
	info := b.gate.get()
	info.SignInURL = b.cfg.HTTPPublicURL
	return info
}

// report turns the outcome of a Ford call into the auth state, and says how
// long the caller should wait before its next try (0: go on).
func (b *Bridge) report(err error, bo *backoff) time.Duration {
	var be *fordapi.BudgetError
	var rl *fordapi.RateLimitError
	switch {
	case err == nil:
		bo.reset()
		b.setAuth(StateOK, "connected to FordPass", time.Time{})
		return 0
	case errors.Is(err, fordapi.ErrReauthRequired):
		var re *fordapi.ReauthError
		reason := "sign in again"
		if errors.As(err, &re) {
			reason = re.Reason
		}
		b.setAuth(StateReauthRequired, reason, time.Time{})
		return 0 // the gate holds every loop until a new sign-in
	case errors.As(err, &rl):
		b.setAuth(StateRateLimited, "rate limited by Ford: it answered 429 Too Many Requests; waiting as it asked", rl.RetryAt)
		return 0
	case errors.As(err, &be) && be.Paced:
		// The normal pace of the daily budget: wait without alarming anyone.
		return max(be.RetryAt.Sub(b.now()), time.Second)
	case errors.As(err, &be):
		what := fmt.Sprintf("the %s share of the daily Ford call budget (FORD_DAILY_CALL_BUDGET) is spent", be.Class)
		if be.Class == fordapi.ClassToken {
			what = "the day's allowance of Autonomic token exchanges is spent"
		}
		b.setAuth(StateRateLimited, fmt.Sprintf("%s: %d of %d calls in 24 h; the bridge refused the call itself and Ford has not limited the account; "+
			"waiting for the 24 h window to free a call", what, be.Used, be.Limit), be.RetryAt)
		return 0
	case errors.Is(err, fordapi.ErrVehicleNotAuthorized):
		return b.opts.BackoffMax
	}
	d := bo.next()
	b.setAuth(StateUnavailable, "Ford cannot be reached or answered with an error: "+err.Error()+"; retrying by itself", b.now().Add(d))
	return d
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

// ---- sign-in ----

func (b *Bridge) onCode(msg mqtt.Message) {
	payload := string(msg.Payload())
	if strings.TrimSpace(payload) == "" {
		return // the broker clearing a retained code, or our own clearing
	}
	// Consumed once: clear it, so a code published with the retain flag is
	// not replayed at the next connect. The broker only marks a message as
	// retained when it predates the subscription, so clear in every case.
	b.client.Publish(msg.Topic(), 1, true, []byte{})
	// One at a time, in the sign-in loop: a flood of codes costs at most
	// what the sign-in throttle lets through, and the latest code wins.
	b.deferSignIn(payload, time.Time{}, true)
}

// SignIn signs in with a pasted redirect URL or code, from whichever door
// it came (MQTT, the sign-in page). A bad code leaves the state as it was
// and says why in P/auth/detail.
func (b *Bridge) SignIn(ctx context.Context, pasted string) error {
	return b.signIn(ctx, pasted, true)
}

// signIn is SignIn; fresh says pasted has just arrived, so it is newer than
// any code waiting for the throttle (false for a code the sign-in loop took
// from the waiting slot).
func (b *Bridge) signIn(ctx context.Context, pasted string, fresh bool) error {
	b.signInMu.Lock()
	defer b.signInMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	err := b.ford.SignIn(ctx, pasted)
	res := SignInResult{At: b.now().UTC().Truncate(time.Second), OK: err == nil}
	var te *fordapi.SignInThrottleError
	if errors.As(err, &te) {
		// Not a verdict on the code: it waits, and only the latest code
		// pasted meanwhile is tried when the throttle opens.
		b.deferSignIn(pasted, te.RetryAt, fresh)
		res.Error = err.Error() + "; the latest code pasted until then will be tried"
		b.gate.setLastSignIn(res)
		b.publishAuth()
		return err
	}
	if err != nil {
		res.Error = err.Error()
		b.gate.setLastSignIn(res)
		if info := b.gate.get(); info.State == StateReauthRequired {
			b.setAuth(StateReauthRequired, "the pasted code did not work: "+err.Error(), time.Time{})
		}
		b.publishAuth()
		return err
	}
	b.gate.setLastSignIn(res)
	b.pending.mu.Lock()
	b.pending.code = "" // a code still waiting for the throttle is moot now
	b.pending.mu.Unlock()
	b.snapshotDue.Store(true)
	b.setAuth(StateOK, "signed in", time.Time{})
	b.log.Info("signed in")
	select {
	case b.listWake <- struct{}{}:
	default:
	}
	return nil
}

// pendingSignIn is the latest code waiting to be tried: codes from MQTT
// wait here for the sign-in loop, and so does a code from any door that the
// sign-in throttle turned away. A newer code replaces an older one.
type pendingSignIn struct {
	mu   sync.Mutex
	code string
	at   time.Time // not before
	wake chan struct{}
}

// deferSignIn queues pasted for the sign-in loop, to be tried at at or
// later. newest says pasted is newer than any code waiting; a code the loop
// took back from the slot only fills it if it is still empty.
func (b *Bridge) deferSignIn(pasted string, at time.Time, newest bool) {
	b.pending.mu.Lock()
	if newest || b.pending.code == "" {
		b.pending.code = pasted
	}
	if at.After(b.pending.at) {
		b.pending.at = at
	}
	b.pending.mu.Unlock()
	select {
	case b.pending.wake <- struct{}{}:
	default:
	}
}

// signInLoop tries waiting codes one at a time, the latest first, when the
// sign-in throttle allows.
func (b *Bridge) signInLoop(ctx context.Context) {
	defer b.workers.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.pending.wake:
		}
		for {
			b.pending.mu.Lock()
			at := b.pending.at
			b.pending.mu.Unlock()
			if sleep(ctx, at.Sub(b.now())) != nil {
				return
			}
			b.pending.mu.Lock()
			code := b.pending.code
			b.pending.code = ""
			b.pending.mu.Unlock()
			if code == "" {
				break
			}
			err := b.signIn(ctx, code, false)
			if err != nil && !errors.As(err, new(*fordapi.SignInThrottleError)) && ctx.Err() == nil {
				b.log.Warn("sign-in from MQTT failed", zap.Error(err))
			}
		}
	}
}

// tokenWatch notices a sign-in made by another process (fordpass2mqtt
// login writing the token file) while no Ford call may be made.
func (b *Bridge) tokenWatch(ctx context.Context) {
	defer b.workers.Done()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if b.gate.get().State != StateReauthRequired {
				continue
			}
			if st := b.ford.Status(); st.SignedIn {
				b.snapshotDue.Store(true)
				b.setAuth(StateOK, "signed in (token saved by fordpass2mqtt login)", time.Time{})
				select {
				case b.listWake <- struct{}{}:
				default:
				}
			}
		}
	}
}

// ---- vehicles ----

const (
	vehicleCacheFile = "vehicles.json"
	instanceFile     = "instance"
)

// InstanceID returns the id of the installation whose state is in dir,
// creating it the first time.
func InstanceID(dir string) (string, error) {
	path := filepath.Join(dir, instanceFile)
	if data, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(data))) >= 8 {
		return strings.TrimSpace(string(data)), nil
	}
	buf := make([]byte, 6)
	if _, err := cryptorand.Read(buf); err != nil {
		return "", err
	}
	id := hex.EncodeToString(buf)
	if err := fordapi.WriteFileAtomic(path, []byte(id+"\n")); err != nil {
		return "", err
	}
	return id, nil
}

func (b *Bridge) loadVehicleCache() {
	data, err := os.ReadFile(filepath.Join(b.cfg.StateDir, vehicleCacheFile))
	if err != nil {
		return
	}
	var list []fordapi.Vehicle
	if json.Unmarshal(data, &list) != nil {
		b.log.Warn("ignoring a damaged vehicle cache")
		return
	}
	b.mu.Lock()
	b.cachedAll = list
	b.list = b.filter(list)
	b.mu.Unlock()
}

func (b *Bridge) filter(list []fordapi.Vehicle) []fordapi.Vehicle {
	if len(b.cfg.VINs) == 0 {
		return list
	}
	out := make([]fordapi.Vehicle, 0, len(list))
	for _, v := range list {
		if slices.Contains(b.cfg.VINs, v.VIN) {
			out = append(out, v)
		}
	}
	return out
}

// accountLoop keeps the vehicle list and the vehicle workers in step.
func (b *Bridge) accountLoop(ctx context.Context) {
	defer b.workers.Done()
	b.mu.Lock()
	cached := b.list
	b.mu.Unlock()
	if len(cached) > 0 {
		b.reconcile(cached, nil, false)
	}
	bo := &backoff{min: b.opts.BackoffMin, max: b.opts.BackoffMax}
	for {
		if err := b.gate.wait(ctx, b.now); err != nil {
			return
		}
		b.mu.Lock()
		due := b.listAt.IsZero() || b.now().Sub(b.listAt) >= b.opts.VehicleListTTL
		next := b.listAt.Add(b.opts.VehicleListTTL)
		b.mu.Unlock()
		snapshot := b.snapshotDue.Swap(false)
		if due || snapshot {
			lctx := ctx
			if snapshot {
				lctx = fordapi.ForSnapshot(ctx)
			}
			list, err := b.ford.Vehicles(lctx)
			if ctx.Err() != nil {
				return
			}
			if d := b.report(err, bo); err != nil {
				if snapshot {
					b.snapshotDue.Store(true)
				}
				if sleep(ctx, d) != nil {
					return
				}
				continue
			}
			b.reconcile(b.filter(list), list, snapshot)
			next = b.now().Add(b.opts.VehicleListTTL)
		}
		select {
		case <-ctx.Done():
			return
		case <-b.listWake:
		case <-time.After(next.Sub(b.now())):
		}
	}
}

// reconcile starts workers for new vehicles and stops those that left the
// account or FORD_VINS; their device configs are cleared in Home Assistant.
// all is the unfiltered list from Ford (nil when reconciling from the
// cache).
// snapshot marks the first fetch of every bridged car as the first
// snapshot after a sign-in.
func (b *Bridge) reconcile(list, all []fordapi.Vehicle, snapshot bool) {
	keep := map[string]bool{}
	for _, info := range list {
		keep[info.VIN] = true
	}
	if all != nil {
		if len(list) == 0 {
			if len(all) == 0 {
				b.log.Warn("the FordPass account has no vehicles; if the FordPass app shows them, FORD_REGION may be wrong")
			} else {
				b.log.Warn("none of the account's vehicles is in FORD_VINS", zap.Int("on_account", len(all)))
			}
		}
		data, _ := json.Marshal(all)
		if err := fordapi.WriteFileAtomic(filepath.Join(b.cfg.StateDir, vehicleCacheFile), data); err != nil {
			b.log.Warn("cannot cache the vehicle list", zap.Error(err))
		}
	}
	b.mu.Lock()
	b.list = list
	if all != nil {
		// Vehicles seen before (on the account or in the cache) that are not
		// bridged now: their Home Assistant devices must go.
		for _, v := range append(append([]fordapi.Vehicle(nil), b.cachedAll...), all...) {
			if !keep[v.VIN] {
				b.stale[v.VIN] = struct{}{}
			}
		}
		b.cachedAll, b.listAt = all, b.now()
	}
	var started []*vehicle
	for _, info := range list {
		delete(b.stale, info.VIN)
		if v, ok := b.vehicles[info.VIN]; ok {
			v.setInfo(info)
			if snapshot {
				v.snapshot.Store(true)
			}
			continue
		}
		v := newVehicle(b, info)
		v.snapshot.Store(snapshot)
		b.vehicles[info.VIN] = v
		started = append(started, v)
	}
	var removed []*vehicle
	for vin, v := range b.vehicles {
		if !keep[vin] {
			removed = append(removed, v)
			delete(b.vehicles, vin)
			b.stale[vin] = struct{}{}
		}
	}
	b.mu.Unlock()
	for _, v := range removed {
		b.log.Info("vehicle left the account or FORD_VINS; removing it", zap.String("vin", fordapi.ShortVIN(v.vin)))
		v.stop()
	}
	for _, v := range started {
		b.log.Info("bridging vehicle", zap.String("vin", fordapi.ShortVIN(v.vin)), zap.String("name", v.info().DisplayName()))
		b.workers.Add(1)
		go v.run(b.workCtx)
	}
	b.publishInfo(false)
	if b.cfg.HADiscovery {
		b.publishDiscovery(false)
	}
}

func (b *Bridge) vehicle(vin string) *vehicle {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.vehicles[vin]
}

// ---- bridge info and discovery ----

// Info is P/bridge/info.
type Info struct {
	Version    string    `json:"version"`
	StartedAt  time.Time `json:"started_at"`
	VINs       []string  `json:"vins"`
	Calls24h   int       `json:"calls_24h"`
	CallBudget int       `json:"call_budget"`
	// Instance identifies the installation (its STATE_DIR), so doctor can
	// tell this bridge from another one on the same topics.
	Instance string `json:"instance"`
	// Reconnects1h counts broker connections in the last hour: many mean
	// another client uses the same MQTT_CLIENT_ID.
	Reconnects1h int `json:"reconnects_1h"`
	// Demo is set by fordpass2mqtt demo: simulated cars, a throwaway state.
	Demo bool `json:"demo,omitempty"`
}

func (b *Bridge) info() Info {
	b.mu.Lock()
	vins := make([]string, 0, len(b.list))
	for _, v := range b.list {
		vins = append(vins, v.VIN)
	}
	reconnects := max(len(b.connects)-1, 0)
	b.mu.Unlock()
	bud := b.ford.Budget()
	return Info{Version: b.opts.Version, StartedAt: b.start, VINs: vins, Calls24h: bud.Used(), CallBudget: bud.Limit(),
		Instance: b.instance, Reconnects1h: reconnects, Demo: b.cfg.Demo}
}

func (b *Bridge) publishInfo(force bool) {
	data, _ := json.Marshal(b.info())
	topic := b.topic("bridge", "info")
	if force {
		b.cache.forget(topic)
	}
	b.publishState(topic, string(data))
	b.m.setBudget(b.ford.Budget())
}

func (b *Bridge) infoLoop(ctx context.Context) {
	defer b.workers.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.publishInfo(false)
			b.mu.Lock()
			vs := make([]*vehicle, 0, len(b.vehicles))
			for _, v := range b.vehicles {
				vs = append(vs, v)
			}
			b.mu.Unlock()
			for _, v := range vs {
				b.m.telemetryAge(v.vin, v.lastUpdate())
			}
		}
	}
}

func (b *Bridge) discoverySettings() discovery.Settings {
	return discovery.Settings{DiscoveryPrefix: b.cfg.HADiscoveryPrefix, TopicPrefix: b.p, Version: b.opts.Version,
		PublicURL: b.cfg.HTTPPublicURL, Demo: b.cfg.Demo}
}

// publishDiscovery publishes every device config whose payload changed
// (force: all of them), and an empty retained config for every vehicle no
// longer bridged. It only reads the cache: it never calls Ford.
func (b *Bridge) publishDiscovery(force bool) {
	if !b.cfg.HADiscovery || b.client == nil || !b.connected.Load() {
		return
	}
	s := b.discoverySettings()
	want := map[string]string{}
	t, p := discovery.Bridge(s)
	want[t] = string(p)
	b.mu.Lock()
	vs := make([]*vehicle, 0, len(b.vehicles))
	for _, v := range b.vehicles {
		vs = append(vs, v)
	}
	for vin := range b.stale {
		want[discovery.VehicleTopic(s, vin)] = ""
	}
	b.mu.Unlock()
	for _, v := range vs {
		t, p := discovery.Vehicle(s, v.discoveryInfo())
		want[t] = string(p)
	}
	for topic, payload := range want {
		b.publishConfig(topic, payload, force)
	}
}

// publishVehicleDiscovery publishes one vehicle's config if it changed.
func (b *Bridge) publishVehicleDiscovery(v *vehicle) {
	if !b.cfg.HADiscovery || b.client == nil || !b.connected.Load() {
		return
	}
	t, p := discovery.Vehicle(b.discoverySettings(), v.discoveryInfo())
	b.publishConfig(t, string(p), false)
}

// publishConfig publishes a device config unless it is what was last sent
// (a hash is kept, not the payload: a fleet's configs weigh megabytes).
func (b *Bridge) publishConfig(topic, payload string, force bool) {
	sum := sha256.Sum256([]byte(payload))
	b.mu.Lock()
	last, seen := b.discLast[topic]
	b.discLast[topic] = sum
	b.mu.Unlock()
	if seen && last == sum && !force {
		return
	}
	b.client.Publish(topic, 1, true, []byte(payload))
}
