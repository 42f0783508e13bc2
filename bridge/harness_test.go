package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/both"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordconnect"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// env is one test's world: simulator, broker, bridge, watcher.
type env struct {
	t      testing.TB
	sim    *fordsim.Sim
	simURL string
	cfg    config.Config
	client *fordapi.Client
	bridge *bridge.Bridge
	w      *bridgetest.Watcher
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
	mutate func(*config.Config)
	// options changes the bridge's options before it starts.
	options func(*bridge.Options)
	// simControls are /_sim/ requests POSTed before the bridge starts.
	simControls []string
	// fordconnect, when set, runs the FordConnect backend with this pace
	// between Query requests; with both, FordPass and FordConnect.
	fordconnect time.Duration
	both        bool
	// fconRedirect is the FordConnect app's registered redirect
	// [fordsim.FconRedirect]; the simulator accepts it too.
	fconRedirect string
	// heal is both clients' schedule for trying a refused sign-in again
	// [fordapi.DefaultHealSchedule].
	heal []time.Duration
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.sim.CommandDelay == 0 {
		o.sim.CommandDelay = 300 * time.Millisecond
	}
	if o.sim.Heartbeat == 0 {
		o.sim.Heartbeat = 500 * time.Millisecond
	}
	if o.fconRedirect == "" {
		o.fconRedirect = fordsim.FconRedirect
	} else {
		o.sim.FconRedirects = append(o.sim.FconRedirects, o.fconRedirect)
	}
	sim, simURL := bridgetest.Ford(t, o.sim)
	if o.mqttURL == "" {
		o.mqttURL = bridgetest.Broker(t)
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
		prefix = "fpt" + bridgetest.Suffix()
	}
	region, _ := fordapi.LookupRegion("usa")
	cfg := config.Config{
		MQTTURL: o.mqttURL, MQTTClientID: "bridge-" + prefix, TopicPrefix: prefix, HADiscovery: true,
		HADiscoveryPrefix: "ha" + prefix, Region: region, FordBaseURL: simURL, Stream: o.stream,
		PollInterval: time.Second, DailyBudget: o.budget, CommandsAllowed: o.allowed, StateDir: o.dir,
		LogLevel: "debug", LogFormat: "console",
	}
	e := &env{t: t, sim: sim, simURL: simURL, cfg: cfg, p: prefix}
	if err := fordapi.PrepareStateDir(o.dir); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	e.logs = logs
	// A failed test shows the bridge's last log lines: what it did is
	// the first thing to know of a failure seen once.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		all := logs.All()
		for _, entry := range all[max(0, len(all)-150):] {
			line := entry.Time.Format("15:04:05.000") + " " + entry.Level.String() + " " + entry.LoggerName + " " + entry.Message
			for k, v := range entry.ContextMap() {
				line += " " + k + "=" + toString(v)
			}
			t.Log(line)
		}
	})
	log := zap.New(core)
	c := bridgetest.Client(t, fordapi.Config{Region: region, BaseURL: simURL, StateDir: o.dir, DailyBudget: o.budget,
		HTTPClient: &http.Client{Timeout: 2 * time.Second, Transport: bridgetest.Transport()}, Logger: log.Named("ford"), ZoneLightsSettle: 200 * time.Millisecond, HealSchedule: o.heal})
	e.client = c
	if o.mutate != nil {
		o.mutate(&cfg)
		e.cfg = cfg
	}
	if o.commandTimeout == 0 {
		o.commandTimeout = 5 * time.Second
	}
	if o.signedIn {
		bridgetest.SignIn(t, c)
	}
	e.w = bridgetest.Watch(t, o.mqttURL, prefix+"/#", cfg.HADiscoveryPrefix+"/#")
	for _, path := range o.simControls {
		e.simPost(path)
	}
	e.log = log
	e.bopts = bridge.Options{Version: "test", Logger: log.Named("bridge"),
		CommandTimeout: o.commandTimeout, ShutdownGrace: 5 * time.Second, BackoffMin: 100 * time.Millisecond,
		BackoffMax: time.Second, DiscoveryDelay: 100 * time.Millisecond,
		StreamRetry: 500 * time.Millisecond, TokenCheck: 200 * time.Millisecond, ExtrasDelay: time.Millisecond, ExtrasGap: time.Millisecond,
		Stream: fordapi.StreamOptions{StallAfter: 3 * time.Second, TokenCheck: 100 * time.Millisecond}}
	if o.options != nil {
		o.options(&e.bopts)
	}
	if o.fordconnect > 0 {
		e.cfg.Backend, e.cfg.Stream = config.BackendFordConnect, false
		if o.both {
			e.cfg.Backend, e.cfg.Stream = config.BackendBoth, o.stream
		}
		e.cfg.FordConnect = config.FordConnectApp{ClientID: fordsim.FconClientID, ClientSecret: fordsim.FconClientSecret, RedirectURL: o.fconRedirect}
		fc, err := fordconnect.New(fordconnect.Config{BaseURL: simURL, ClientID: fordsim.FconClientID, ClientSecret: fordsim.FconClientSecret, RedirectURL: o.fconRedirect,
			StateDir: o.dir, Pace: o.fordconnect, HTTPClient: &http.Client{Timeout: 2 * time.Second, Transport: bridgetest.Transport()}, Logger: log.Named("fordconnect"), HealSchedule: o.heal})
		if err != nil {
			t.Fatal(err)
		}
		if o.both {
			e.run(both.New(c, fc))
		} else {
			e.run(fc)
		}
	} else {
		e.run(c)
	}
	t.Cleanup(func() {
		e.stop()
		e.assertNoSecretsLogged()
	})
	return e
}

// run starts a bridge with the env's configuration and Ford client.
func (e *env) run(c fordapi.Backend) {
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
	c := bridgetest.Client(e.t, fordapi.Config{Region: e.cfg.Region, BaseURL: e.simURL, StateDir: e.cfg.StateDir, DailyBudget: e.cfg.DailyBudget,
		HTTPClient: &http.Client{Timeout: 2 * time.Second, Transport: bridgetest.Transport()}, Logger: e.log.Named("ford"), ZoneLightsSettle: 200 * time.Millisecond})
	e.client = c
	e.run(c)
}

// secretMarks are the prefixes of every secret the simulator issues.
var secretMarks = []string{"simcode-", "simb2c-", "simcat-", "simrefresh-", "simauto-", "simid-", "fconcode-", "fconaccess-", "fconrefresh-", fordsim.FconClientSecret}

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
	return bridgetest.Redirect(e.t, e.client)
}

func (e *env) topic(parts ...string) string { return e.p + "/" + strings.Join(parts, "/") }

func (e *env) simPost(path string) {
	e.t.Helper()
	bridgetest.SimControl(e.t, e.simURL, path)
}

func (e *env) patch(vin string, patch string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, e.simURL+"/_sim/vehicles/"+vin, bytes.NewBufferString(patch))
	resp, err := bridgetest.HTTP.Do(req)
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
	e.w.WaitEvent(e.topic(vin, "command", "result"), timeout, func(s string) bool {
		var x bridge.Result
		if json.Unmarshal([]byte(s), &x) != nil || x.ID != id || x.Status != status {
			return false
		}
		r = x
		return true
	})
	return r
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

// waitStream waits until the bridge has the vehicle's websocket open, so a
// change made now is pushed to it.
func (e *env) waitStream(vin string) {
	e.t.Helper()
	// Generous: the deadline costs nothing when the socket opens, and a
	// restart on a machine running several suites at once took over 10 s.
	bridgetest.Eventually(e.t, 30*time.Second, "the bridge's telemetry stream for "+vin, func() bool { return e.sim.Streams(vin) > 0 })
}
