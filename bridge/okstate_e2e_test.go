package bridge_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/broker"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/brokertest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// TestSpentTokenPaceIsNotOK: this hour's pace of Autonomic token
// exchanges is spent (four token expiries with a command each, then a
// restart, did it on a real install). Nothing can reach Ford until the
// hour frees one: the streams and commands need a token. P/auth/state
// says rate_limited with retry_at and the reason in words, /healthz
// answers 503 saying it, the car goes offline at once naming the time, and
// a command fails at once naming when it can run.
func TestSpentTokenPaceIsNotOK(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	if err := fordapi.PrepareStateDir(dir); err != nil {
		t.Fatal(err)
	}
	var spent []int64
	for i := range fordapi.TokenHourly {
		spent = append(spent, time.Now().Add(-50*time.Minute+time.Duration(i)*time.Second).UnixMilli())
	}
	data, _ := json.Marshal(map[string]any{"classes": map[string][]int64{"token": spent}})
	if err := os.WriteFile(filepath.Join(dir, "calls.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{signedIn: true, stream: true, dir: dir, simControls: []string{"/_sim/protocol?rest_telemetry=gone"}})
	e.w.WaitValue(e.topic("auth", "state"), "rate_limited", 10*time.Second)
	detail := e.w.WaitFor(e.topic("auth", "detail"), 5*time.Second, func(s string) bool { return strings.Contains(s, "token exchanges") })
	if !strings.Contains(detail, `"retry_at"`) || !strings.Contains(detail, "streams and commands") {
		t.Fatalf("the auth detail: %s", detail)
	}
	e.w.WaitValue(e.topic(vin1, "availability"), "offline", 5*time.Second)
	if d, _ := e.w.Get(e.topic(vin1, "availability", "detail")); !strings.Contains(d, "token") || !strings.Contains(d, `"until"`) {
		t.Fatalf("the car's reason: %s", d)
	}
	srv := httptestServer(t, e.bridge.HTTPHandler())
	resp, err := bridgetest.HTTP.Get(srv + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "rate limited until") {
		t.Fatalf("/healthz: %d %s", resp.StatusCode, body)
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"unlock","id":"spent-1"}`, false)
	if r := e.result(vin1, "spent-1", "rejected", 5*time.Second); !strings.Contains(r.Error, "waiting until") {
		t.Fatalf("a command: %+v", r)
	}
	if st := e.sim.Stats(); st.Calls["autonomic_token"] != 0 || len(st.Commands) != 0 {
		t.Fatalf("Ford was called: %d token exchanges, %d commands", st.Calls["autonomic_token"], len(st.Commands))
	}
}

// TestCommandResultSurvivesABrokerOutage: the network to the broker goes
// down right after an unlock is accepted, and the unlock succeeds at Ford
// meanwhile. Its success is kept and delivered once the bridge reaches
// the broker again, so a Node-RED flow waiting for its id gets it; results
// beyond the last 100 are dropped oldest first, with a count in the log.
func TestCommandResultSurvivesABrokerOutage(t *testing.T) {
	t.Parallel()
	broker := bridgetest.Broker(t)
	proxy := bridgetest.NewProxy(t, broker)
	e := newEnv(t, envOptions{signedIn: true, stream: true, mqttURL: proxy.URL(), sim: fordsim.Options{CommandDelay: 2 * time.Second},
		commandTimeout: 30 * time.Second}) // the outcome is the point, not its time: a loaded machine takes longer

	flow := bridgetest.Watch(t, broker, e.topic("#")) // Node-RED, on the broker's side of the outage
	flow.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.waitStream(vin1)
	flow.Publish(e.topic(vin1, "command"), `{"command":"unlock","id":"flow-7"}`, false)
	flow.WaitEvent(e.topic(vin1, "command", "result"), 5*time.Second, func(s string) bool { return strings.Contains(s, `"accepted"`) })
	proxy.Down() // while Ford carries the unlock out (it takes 2 s here)
	waitLog(t, e, "command succeeded", 40*time.Second)
	waitLog(t, e, "lost the broker", 15*time.Second)
	proxy.Up()
	r := flow.WaitEvent(e.topic(vin1, "command", "result"), 30*time.Second, func(s string) bool {
		return strings.Contains(s, `"flow-7"`) && strings.Contains(s, `"success"`)
	})
	t.Logf("delivered after the outage: %s", r)
}

// waitLog waits for a log line of the bridge's with snippet in its message.
func waitLog(t *testing.T, e *env, snippet string, timeout time.Duration) {
	t.Helper()
	bridgetest.Eventually(t, timeout, "a log line "+strconv.Quote(snippet), func() bool { return e.logs.FilterMessageSnippet(snippet).Len() > 0 })
}

// TestDroppedPublishesAreNoticed: the broker's ACL lets the bridge connect
// and publish but drops what it writes to its cars' topics (mosquitto
// acknowledges such publishes and delivers them to no one). The bridge
// notices that its own publishes never come back, logs it once at error
// naming the ACL, and /healthz answers 503 saying so.
func TestDroppedPublishesAreNoticed(t *testing.T) {
	t.Parallel()
	prefix := "fpt" + bridgetest.Suffix()
	// A mosquitto whose ACL lets the bridge's user write its own bridge and
	// auth topics and Home Assistant's, read everything, and write none
	// of its cars' topics; anyone else may do anything. Without mosquitto,
	// the embedded broker drops those publishes the same way: acknowledged
	// and delivered to no one.
	addr := bridgetest.FreeAddr(t)
	// mosquitto reads the ACL after dropping root: a folder others may read.
	dir, err := os.MkdirTemp("", "fpacl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	acl := filepath.Join(dir, "acl")
	rules := "topic readwrite #\n\nuser fpbridge\ntopic readwrite " + prefix + "/bridge/#\ntopic readwrite " + prefix + "/auth/#\n" +
		"topic readwrite ha" + prefix + "/#\ntopic read #\n"
	if err := os.WriteFile(acl, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(acl, 0o644)
	stop, err := brokertest.StartMosquittoWith(addr, dir, "acl_file "+acl+"\n")
	switch {
	case errors.Is(err, brokertest.ErrNoMosquitto):
		b, err := broker.StartWith(broker.Options{Addr: addr, Drop: func(client, topic string) bool {
			return client == "bridge-"+prefix && strings.HasPrefix(topic, prefix+"/"+vin1+"/")
		}})
		if err != nil {
			t.Fatal(err)
		}
		stop = func() { _ = b.Close() }
	case err != nil:
		t.Fatal(err)
	}
	t.Cleanup(stop)
	e := newEnv(t, envOptions{signedIn: true, mqttURL: "tcp://" + addr, prefix: prefix,
		mutate:  func(c *config.Config) { c.MQTTUsername = "fpbridge" },
		options: func(o *bridge.Options) { o.DarkAfter, o.EchoGrace = time.Second, time.Second }})
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	waitLog(t, e, "never come back", 20*time.Second)
	if _, ok := e.w.Get(e.topic(vin1, "state")); ok {
		t.Fatal("the car's state reached the broker: the ACL did not drop it")
	}
	srv := httptestServer(t, e.bridge.HTTPHandler())
	resp, err := bridgetest.HTTP.Get(srv + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "ACL") || !strings.Contains(body, e.topic(vin1, "state")) {
		t.Fatalf("/healthz: %d %s", resp.StatusCode, body)
	}
	if n := e.logs.FilterMessageSnippet("never come back").Len(); n != 1 {
		t.Fatalf("%d log lines for one lasting fault", n)
	}
}

// TestTwoInstallationsKeepADeviceEachForOneCar: two bridges with their own
// topic prefixes on one broker and one Home Assistant bridge the same car
// (FORD_BACKEND=fordpass beside FORD_BACKEND=both, say). Each has a device
// of its own for it, and neither removes the other's components, even
// across a restart, which cleans up what a bridge's config from before
// holds.
func TestTwoInstallationsKeepADeviceEachForOneCar(t *testing.T) {
	t.Parallel()
	url := bridgetest.Broker(t)
	ha := "hashared" + bridgetest.Suffix()
	shared := func(c *config.Config) { c.HADiscoveryPrefix = ha }
	a := newEnv(t, envOptions{signedIn: true, mqttURL: url, mutate: shared})
	b := newEnv(t, envOptions{signedIn: true, mqttURL: url, mutate: shared})
	w := bridgetest.Watch(t, url, ha+"/#")
	ta, tb := a.deviceConfig(vin1), b.deviceConfig(vin1)
	if ta == tb {
		t.Fatalf("one device config topic for both installations: %s", ta)
	}
	hasLock := func(s string) bool { return strings.Contains(s, `"lock"`) && strings.Contains(s, `"odometer"`) }
	w.WaitFor(ta, 10*time.Second, hasLock)
	w.WaitFor(tb, 10*time.Second, hasLock)
	a.restart()
	a.w.WaitValue(a.topic(vin1, "lock"), "locked", 10*time.Second)
	w.WaitFor(ta, 10*time.Second, hasLock)
	if cfg, _ := w.Get(tb); !hasLock(cfg) {
		t.Fatalf("the other installation's device lost its components: %.300s", cfg)
	}
	for _, s := range w.History(tb) {
		if !hasLock(s) {
			t.Fatalf("the other installation's device was rewritten: %.300s", s)
		}
	}
}

// TestDarkCarIsBackSoonAfterALongOutage: with the production backoffs (5 s
// growing to 15 min for polls, 1 min growing to 30 min for the stream), a
// car Ford does not answer for is retried at least every DarkRetry (2 s
// here, 4 min by default), outside the hourly pace, so it is online within
// that of Ford answering again, however long the outage grew the backoff.
func TestDarkCarIsBackSoonAfterALongOutage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true, options: func(o *bridge.Options) {
		o.BackoffMin, o.BackoffMax, o.StreamRetry = 5*time.Second, 15*time.Minute, time.Minute
		o.DarkAfter, o.DarkRetry = time.Second, 2*time.Second
	}})
	e.w.WaitValue(e.topic(vin1, "availability"), "online", 10*time.Second)
	e.waitStream(vin1)
	start := time.Now()
	e.simPost("/_sim/outage?status=503&for=8s")
	e.simPost("/_sim/stream?mode=close&for=8s")
	e.w.WaitValue(e.topic(vin1, "availability"), "offline", 10*time.Second)
	// Ford answers again 8 s on; the next try comes within DarkRetry of
	// that (a second more for the call itself and a busy machine).
	e.w.WaitFor(e.topic(vin1, "availability"), time.Until(start.Add(8*time.Second+2*time.Second+4*time.Second)), func(s string) bool { return s == "online" })
	t.Logf("back online %s after the outage ended; %d Ford calls in all", time.Since(start.Add(8*time.Second)).Round(100*time.Millisecond), e.calls())
}

// TestEveryEntityHasItsState: on a fresh install every topic a Home
// Assistant entity reads (its state and attributes) is retained soon after
// start, for the truck and for the EV with remote climate (whose climate
// entities read P/VIN/climate, which the bridge reads once from Ford when
// the car is first bridged and keeps for the next start).
func TestEveryEntityHasItsState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2},
		allowed: []string{"lock", "unlock", "start", "stop", "refresh", "horn", "climate", "charge_target"}})
	var read []string
	for _, vin := range []string{vin1, fordsim.VIN(2)} {
		cfg := e.w.WaitFor(e.deviceConfig(vin), 10*time.Second, func(s string) bool { return strings.Contains(s, `"odometer"`) })
		for _, c := range cmps(t, cfg) {
			for _, k := range []string{"state_topic", "json_attributes_topic"} {
				if topic, ok := c[k].(string); ok && topic != "" && !slices.Contains(read, topic) {
					read = append(read, topic)
				}
			}
		}
	}
	if !slices.Contains(read, e.topic(fordsim.VIN(2), "climate")) {
		t.Fatalf("no entity reads the EV's climate topic: %v", read)
	}
	// Every topic has its value first (the climate profile is read at its
	// turn after the cars' first states); a client that subscribes then
	// must get each as retained.
	for _, topic := range read {
		if !strings.HasSuffix(topic, "/charge_finish_at") {
			e.w.WaitFor(topic, 10*time.Second, func(s string) bool { return s != "" })
		}
	}
	late := bridgetest.Watch(t, e.cfg.MQTTURL, read...)
	for _, topic := range read {
		if strings.HasSuffix(topic, "/charge_finish_at") {
			continue // empty while the car does not charge, as evcc's finish time wants (TestEVFieldsFollowACharge)
		}
		late.WaitFor(topic, 10*time.Second, func(s string) bool { return s != "" })
		if !late.Retained(topic) {
			t.Errorf("%s is not retained", topic)
		}
	}
	calls := e.sim.Stats().Calls["climate_profile"]
	if calls != 1 {
		t.Fatalf("%d climate profile reads at start", calls)
	}
	if n := e.client.Budget().UsedBy(fordapi.ClassCommand); n != 0 {
		t.Fatalf("the start spent %d calls of the command share", n)
	}
	e.restart()
	e.w.WaitFor(e.topic(fordsim.VIN(2), "climate"), 10*time.Second, func(s string) bool { return s != "" })
	if n := e.sim.Stats().Calls["climate_profile"]; n != calls {
		t.Fatalf("a restart read the climate profile again (%d reads)", n)
	}
	t.Logf("%d topics read by entities, every one retained; 1 climate profile read, none after a restart", len(read))
}
