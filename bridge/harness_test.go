package bridge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/brokertest"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// brokerURL is a real broker for the test: mosquitto when MQTT_TEST_URL is
// set (CI), else an embedded broker on a free local port.
func brokerURL(t testing.TB) string {
	t.Helper()
	url, stop, err := brokertest.ForTests()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return url
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// watcher is an MQTT client that records what a user's tools would see.
type watcher struct {
	t      testing.TB
	client mqtt.Client
	mu     sync.Mutex
	last   map[string]string   // latest payload per topic
	seen   map[string][]string // every payload per topic, in order
	retain map[string]bool     // whether the latest message was retained
}

func newWatcher(t testing.TB, url string, topics ...string) *watcher {
	t.Helper()
	w := &watcher{t: t, last: map[string]string{}, seen: map[string][]string{}, retain: map[string]bool{}}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("watch-" + randomSuffix()).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetMaxReconnectInterval(500 * time.Millisecond).SetOrderMatters(true)
	subs := map[string]byte{}
	for _, tp := range topics {
		subs[tp] = 1
	}
	o.SetOnConnectHandler(func(c mqtt.Client) {
		c.SubscribeMultiple(subs, func(_ mqtt.Client, m mqtt.Message) {
			w.mu.Lock()
			w.last[m.Topic()] = string(m.Payload())
			w.seen[m.Topic()] = append(w.seen[m.Topic()], string(m.Payload()))
			w.retain[m.Topic()] = m.Retained()
			w.mu.Unlock()
		}).WaitTimeout(5 * time.Second)
	})
	w.client = mqtt.NewClient(o)
	if tok := w.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher cannot connect: %v", tok.Error())
	}
	t.Cleanup(func() { w.client.Disconnect(100) })
	return w
}

func (w *watcher) get(topic string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.last[topic]
	return v, ok
}

func (w *watcher) history(topic string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seen[topic]...)
}

// waitFor waits until the latest payload on topic satisfies ok.
func (w *watcher) waitFor(topic string, timeout time.Duration, ok func(string) bool) string {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if v, have := w.get(topic); have && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			v, _ := w.get(topic)
			w.t.Fatalf("%s: still %q after %s", topic, v, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *watcher) waitValue(topic, want string, timeout time.Duration) {
	w.t.Helper()
	w.waitFor(topic, timeout, func(s string) bool { return s == want })
}

// waitEvent waits for a message in topic's history satisfying ok.
func (w *watcher) waitEvent(topic string, timeout time.Duration, ok func(string) bool) string {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, v := range w.history(topic) {
			if ok(v) {
				return v
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: no matching message in %s; got %q", topic, timeout, w.history(topic))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *watcher) publish(topic, payload string, retained bool) {
	w.t.Helper()
	if tok := w.client.Publish(topic, 1, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		w.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// env is one test's world: simulator, broker, bridge, watcher.
type env struct {
	t      testing.TB
	sim    *fordsim.Sim
	simURL string
	cfg    bridge.Config
	client *fordapi.Client
	bridge *bridge.Bridge
	w      *watcher
	p      string
	logs   *observer.ObservedLogs
	log    *zap.Logger
	bopts  bridge.Options
	cancel context.CancelFunc
	done   chan error
}

type envOptions struct {
	sim      fordsim.Options
	signedIn bool
	stream   bool
	allowed  []string
	budget   int
	mqttURL  string
	dir      string
	prefix   string
	// commandTimeout is the bridge's command deadline [5s].
	commandTimeout time.Duration
	// mutate changes the bridge's configuration before it starts.
	mutate func(*bridge.Config)
	// options changes the bridge's options before it starts.
	options func(*bridge.Options)
	// simControls are /_sim/ requests POSTed before the bridge starts.
	simControls []string
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.sim.CommandDelay == 0 {
		o.sim.CommandDelay = 300 * time.Millisecond
	}
	if o.sim.Heartbeat == 0 {
		o.sim.Heartbeat = 500 * time.Millisecond
	}
	sim := fordsim.New(o.sim)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	if o.mqttURL == "" {
		o.mqttURL = brokerURL(t)
	}
	if o.budget == 0 {
		o.budget = 100000
	}
	if o.allowed == nil {
		o.allowed = []string{"lock", "unlock", "start", "stop", "refresh", "horn"}
	}
	if o.dir == "" {
		o.dir = filepath.Join(t.TempDir(), "state")
	}
	prefix := o.prefix
	if prefix == "" {
		prefix = "fpt" + randomSuffix()
	}
	region, _ := fordapi.LookupRegion("usa")
	cfg := bridge.Config{
		MQTTURL: o.mqttURL, MQTTClientID: "bridge-" + prefix, TopicPrefix: prefix, HADiscovery: true,
		HADiscoveryPrefix: "ha" + prefix, Region: region, FordBaseURL: srv.URL, Stream: o.stream,
		PollInterval: time.Second, DailyBudget: o.budget, CommandsAllowed: o.allowed, StateDir: o.dir,
		LogLevel: "debug", LogFormat: "console",
	}
	e := &env{t: t, sim: sim, simURL: srv.URL, cfg: cfg, p: prefix}
	if err := fordapi.PrepareStateDir(o.dir); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	e.logs = logs
	log := zap.New(core)
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: srv.URL, StateDir: o.dir, DailyBudget: o.budget,
		HTTPClient: &http.Client{Timeout: 2 * time.Second}, Logger: log.Named("ford")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	e.client = c
	if o.mutate != nil {
		o.mutate(&cfg)
		e.cfg = cfg
	}
	if o.commandTimeout == 0 {
		o.commandTimeout = 5 * time.Second
	}
	if o.signedIn {
		if err := c.SignIn(context.Background(), e.redirect()); err != nil {
			t.Fatal(err)
		}
	}
	e.w = newWatcher(t, o.mqttURL, prefix+"/#", cfg.HADiscoveryPrefix+"/#")
	for _, path := range o.simControls {
		e.simPost(path)
	}
	e.log = log
	e.bopts = bridge.Options{Version: "test", Logger: log.Named("bridge"),
		CommandTimeout: o.commandTimeout, ShutdownGrace: 5 * time.Second, BackoffMin: 100 * time.Millisecond,
		BackoffMax: time.Second, DiscoveryDelay: 100 * time.Millisecond,
		StreamRetry: 500 * time.Millisecond, TokenCheck: 200 * time.Millisecond,
		Stream: fordapi.StreamOptions{StallAfter: 3 * time.Second, TokenCheck: 100 * time.Millisecond}}
	if o.options != nil {
		o.options(&e.bopts)
	}
	e.run(c)
	t.Cleanup(func() {
		e.stop()
		e.assertNoSecretsLogged()
	})
	return e
}

// run starts a bridge with the env's configuration and Ford client.
func (e *env) run(c *fordapi.Client) {
	e.bridge = bridge.New(e.cfg, c, e.bopts)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func(done chan error) { done <- e.bridge.Run(ctx) }(e.done)
}

// restart stops the bridge and starts a new process's worth of it: a new
// Ford client and bridge on the same STATE_DIR, broker and simulator.
func (e *env) restart() {
	e.t.Helper()
	if err := e.stop(); err != nil {
		e.t.Fatal(err)
	}
	c, err := fordapi.New(fordapi.Config{Region: e.cfg.Region, BaseURL: e.simURL, StateDir: e.cfg.StateDir, DailyBudget: e.cfg.DailyBudget,
		HTTPClient: &http.Client{Timeout: 2 * time.Second}, Logger: e.log.Named("ford")})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Budget().Close() })
	e.client = c
	e.run(c)
}

// secretMarks are the prefixes of every secret the simulator issues.
var secretMarks = []string{"simcode-", "simb2c-", "simcat-", "simrefresh-", "simauto-", "simid-"}

// assertNoSecretsLogged fails the test if any log line, at any level,
// holds a token, a code or a PKCE verifier. Every end-to-end test runs it.
func (e *env) assertNoSecretsLogged(extra ...string) {
	e.t.Helper()
	verifier := ""
	if data, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "login.json")); err == nil {
		var p struct {
			V string `json:"code_verifier"`
		}
		_ = json.Unmarshal(data, &p)
		verifier = p.V
	}
	for _, entry := range e.logs.All() {
		line := entry.Message
		for k, v := range entry.ContextMap() {
			line += " " + k + "=" + toString(v)
		}
		for _, s := range append(secretMarks, extra...) {
			if strings.Contains(line, s) {
				e.t.Errorf("log line leaks a secret (%s…): %.200s", s[:min(6, len(s))], line)
			}
		}
		if verifier != "" && strings.Contains(line, verifier) {
			e.t.Errorf("log line leaks the PKCE verifier: %.80s", line)
		}
	}
}

// stop shuts the bridge down and returns Run's error.
func (e *env) stop() error {
	e.cancel()
	select {
	case err, ok := <-e.done:
		if ok {
			close(e.done)
		}
		return err
	case <-time.After(15 * time.Second):
		e.t.Fatal("bridge did not stop within 15s")
	}
	return nil
}

// redirect follows the login link like a user who signs in at once.
func (e *env) redirect() string {
	e.t.Helper()
	u, err := e.client.LoginURL()
	if err != nil {
		e.t.Fatal(err)
	}
	return followLogin(e.t, u)
}

func followLogin(t testing.TB, loginURL string) string {
	t.Helper()
	redirect, err := fordsim.FollowLogin(context.Background(), loginURL)
	if err != nil {
		t.Fatal(err)
	}
	return redirect
}

func (e *env) topic(parts ...string) string { return e.p + "/" + strings.Join(parts, "/") }

func (e *env) simPost(path string) {
	e.t.Helper()
	resp, err := http.Post(e.simURL+path, "application/json", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		e.t.Fatalf("%s: %d", path, resp.StatusCode)
	}
}

func (e *env) patch(vin string, patch string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, e.simURL+"/_sim/vehicles/"+vin, bytes.NewBufferString(patch))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		e.t.Fatalf("patch: %d", resp.StatusCode)
	}
}

func (e *env) calls() int {
	st := e.sim.Stats()
	return st.CallsTotal - st.Calls["b2c_authorize"]
}

// result waits for a command result with the given id and status.
func (e *env) result(vin, id, status string, timeout time.Duration) bridge.Result {
	e.t.Helper()
	var r bridge.Result
	e.w.waitEvent(e.topic(vin, "command", "result"), timeout, func(s string) bool {
		var x bridge.Result
		if json.Unmarshal([]byte(s), &x) != nil || x.ID != id || x.Status != status {
			return false
		}
		r = x
		return true
	})
	return r
}

// freePort returns a free local TCP address.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startMosquitto runs a private mosquitto on addr, when mosquitto is
// installed; ok is false otherwise.
func startMosquitto(t testing.TB, addr string) (stop func(), ok bool) {
	t.Helper()
	stop, err := brokertest.StartMosquitto(addr, t.TempDir())
	if errors.Is(err, brokertest.ErrNoMosquitto) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return stop, true
}

func httptestServer(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}

func toString(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// reset forgets the history of a topic.
func (w *watcher) reset(topic string) {
	w.mu.Lock()
	w.seen[topic] = nil
	w.mu.Unlock()
}

// waitStream waits until the bridge has the vehicle's websocket open, so a
// change made now is pushed to it.
func (e *env) waitStream(vin string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.sim.Streams(vin) == 0 {
		if time.Now().After(deadline) {
			e.t.Fatal("the bridge did not open the telemetry stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
