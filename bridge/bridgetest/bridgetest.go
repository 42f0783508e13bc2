// Package bridgetest holds the test doubles the bridge's tests and the
// command's tests share: a real broker, an MQTT client that records what a
// user's tools would see, and a simulated Ford with a signed-in client.
// Nothing in the bridge's binaries imports it.
package bridgetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/brokertest"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// Broker is a real broker for the test: mosquitto when MQTT_TEST_URL is set
// (CI), else an embedded broker on a free local port.
func Broker(t testing.TB) string {
	t.Helper()
	url, stop, err := brokertest.ForTests()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return url
}

// Mosquitto runs a private mosquitto on addr when mosquitto is installed;
// ok is false when it is not.
func Mosquitto(t testing.TB, addr string) (stop func(), ok bool) {
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

// FreeAddr is a free local TCP address.
//
// The port is free now and outside Linux's ephemeral range (32768-60999 by
// default): a port from that range may be taken before the caller listens
// on it, by another test's listener on port 0 or by a client's own end of
// a connection. A client that retries against nothing there can even
// connect to itself (TCP's simultaneous open), and the broker started
// later cannot listen: a watcher then waited 10 s for a broker that was
// not there, now and then, on a loaded machine.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 200 {
		port := 20000 + mrand.IntN(12000)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	t.Fatal("no free port from 20000 to 31999")
	return ""
}

// Suffix is a random name part, so that tests sharing a broker do not see
// each other's topics.
func Suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Ford starts a simulated Ford over real HTTP; it stops with the test.
func Ford(t testing.TB, o fordsim.Options) (sim *fordsim.Sim, url string) {
	t.Helper()
	sim = fordsim.New(o)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return sim, srv.URL
}

// Client is a Ford client made from cfg (region usa and a 5 s HTTP timeout
// unless it says otherwise).
// Its budget is closed before the test's directories are removed.
func Client(t testing.TB, cfg fordapi.Config) *fordapi.Client {
	t.Helper()
	if cfg.Region.Key == "" {
		cfg.Region, _ = fordapi.LookupRegion("usa")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second, Transport: Transport()}
	}
	c, err := fordapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	return c
}

// SignIn signs c in like a user who signs in at once.
func SignIn(t testing.TB, c *fordapi.Client) {
	t.Helper()
	if err := c.SignIn(context.Background(), Redirect(t, c)); err != nil {
		t.Fatal(err)
	}
}

// Redirect follows c's login link to the simulator's redirect address.
func Redirect(t testing.TB, c *fordapi.Client) string {
	t.Helper()
	u, err := c.LoginURL()
	if err != nil {
		t.Fatal(err)
	}
	return FollowLogin(t, u)
}

// FollowLogin signs in at the simulator's login page loginURL and returns
// the fordapp:// redirect address a user would paste.
func FollowLogin(t testing.TB, loginURL string) string {
	t.Helper()
	redirect, err := fordsim.FollowLogin(context.Background(), loginURL)
	if err != nil {
		t.Fatal(err)
	}
	return redirect
}

// Watcher is an MQTT client that records what a user's tools would see.
type Watcher struct {
	t      testing.TB
	client mqtt.Client
	mu     sync.Mutex
	last   map[string]string   // latest payload per topic
	seen   map[string][]string // every payload per topic, in order
	all    []string            // every message, "topic payload", in order
	retain map[string]bool     // whether the latest message was retained
}

// Watch connects a Watcher to the broker at url, subscribed to topics; it
// disconnects with the test.
func Watch(t testing.TB, url string, topics ...string) *Watcher {
	t.Helper()
	w := &Watcher{t: t, last: map[string]string{}, seen: map[string][]string{}, retain: map[string]bool{}}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("watch-" + Suffix()).SetCleanSession(true).
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
			w.all = append(w.all, m.Topic()+" "+string(m.Payload()))
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

// Get is the latest payload on topic, if any came.
func (w *Watcher) Get(topic string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.last[topic]
	return v, ok
}

// Retained says whether the latest message on topic came retained.
func (w *Watcher) Retained(topic string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.retain[topic]
}

// History is every payload on topic, in order.
func (w *Watcher) History(topic string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen[topic])
}

// Messages is every message, as "topic payload", in order.
func (w *Watcher) Messages() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.all)
}

// Topics is every topic a message came on.
func (w *Watcher) Topics() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.last))
	for tp := range w.last {
		out = append(out, tp)
	}
	slices.Sort(out)
	return out
}

// Reset forgets what was seen on topic, its history and its latest
// value: a wait after it sees only what comes later. (It kept the latest
// value once, so a wait for the bridge's "online" after a restart could
// return on the old run's and send a command before the new run listened.)
func (w *Watcher) Reset(topic string) {
	w.mu.Lock()
	w.seen[topic] = nil
	delete(w.last, topic)
	delete(w.retain, topic)
	w.mu.Unlock()
}

// WaitFor waits until the latest payload on topic satisfies ok, and
// returns it.
func (w *Watcher) WaitFor(topic string, timeout time.Duration, ok func(string) bool) string {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if v, have := w.Get(topic); have && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			v, _ := w.Get(topic)
			w.t.Fatalf("%s: still %q after %s", topic, v, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitValue waits until the latest payload on topic is want.
func (w *Watcher) WaitValue(topic, want string, timeout time.Duration) {
	w.t.Helper()
	w.WaitFor(topic, timeout, func(s string) bool { return s == want })
}

// WaitEvent waits for a message in topic's history that satisfies ok, and
// returns it.
func (w *Watcher) WaitEvent(topic string, timeout time.Duration, ok func(string) bool) string {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, v := range w.History(topic) {
			if ok(v) {
				return v
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: no matching message in %s; got %q", topic, timeout, w.History(topic))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Publish publishes payload on topic and waits for the broker to take it.
func (w *Watcher) Publish(topic, payload string, retained bool) {
	w.t.Helper()
	if tok := w.client.Publish(topic, 1, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		w.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// Send publishes payload on topic (not retained) without waiting: a flood's
// messages go out as fast as the client sends them.
func (w *Watcher) Send(topic, payload string) {
	w.client.Publish(topic, 1, false, payload)
}

// HTTP is the client tests call the simulator and the bridge's page with:
// a transport of its own, since httptest.Server.Close (any test's) closes
// http.DefaultTransport's idle connections under a request on its way.
var HTTP = &http.Client{Timeout: 30 * time.Second, Transport: Transport()}

// Transport is an HTTP transport of a test's own (see HTTP): a client
// that shares http.DefaultTransport can have a call broken by another
// test's server closing.
func Transport() *http.Transport {
	return &http.Transport{IdleConnTimeout: 30 * time.Second, MaxIdleConnsPerHost: 8}
}

// SimControl POSTs a control request (path, such as
// /_sim/protocol?sockets_per_token=1) to the simulator at simURL.
func SimControl(t testing.TB, simURL, path string) {
	t.Helper()
	resp, err := HTTP.Post(simURL+path, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("%s: %d", path, resp.StatusCode)
	}
}

// Eventually waits until ok holds, checking it every 10 ms, and fails the
// test naming what it waited for when timeout passes first. It is for
// conditions nothing announces (a log line, a counter, a history): a
// message on MQTT has Watcher.WaitFor.
func Eventually(t testing.TB, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
