package bridge_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/broker"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

var vin1 = fordsim.VIN(1)

func TestFirstRunSignInFromMQTT(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{stream: true})
	e.w.WaitValue(e.topic("auth", "state"), "reauth_required", 10*time.Second)
	login := e.w.WaitFor(e.topic("auth", "login_url"), 5*time.Second, func(s string) bool { return strings.HasPrefix(s, "http") })
	var detail bridge.AuthInfo
	_ = json.Unmarshal([]byte(e.w.WaitFor(e.topic("auth", "detail"), 5*time.Second, func(s string) bool { return strings.Contains(s, "login_url") })), &detail)
	if detail.State != "reauth_required" || detail.LoginURL != login || detail.Reason == "" {
		t.Fatalf("detail = %+v", detail)
	}
	if n := e.calls(); n != 0 {
		t.Fatalf("%d Ford calls without a token", n)
	}
	e.w.WaitValue(e.topic("bridge", "availability"), "online", 5*time.Second)

	// The user follows the link and pastes the redirect URL, retained by
	// mistake: it must be consumed once and cleared.
	e.w.Publish(e.topic("auth", "code", "set"), bridgetest.FollowLogin(t, login), true)
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.w.WaitValue(e.topic("auth", "code", "set"), "", 5*time.Second)
	for _, f := range []string{"odometer", "fuel_level", "fuel_range", "battery_12v_voltage", "ignition", "remote_start", "alarm",
		"door_driver", "window_driver", "tire_pressure_front_left", "updated_at", "location", "state"} {
		e.w.WaitFor(e.topic(vin1, f), 5*time.Second, func(s string) bool { return s != "" })
	}
	var state map[string]any
	if err := json.Unmarshal([]byte(e.w.WaitFor(e.topic(vin1, "state"), time.Second, func(string) bool { return true })), &state); err != nil {
		t.Fatal(err)
	}
	if _, ok := state["odometer"].(float64); !ok || state["lock"] != "locked" || state["updated_at"] == nil {
		t.Fatalf("state JSON = %v", state)
	}
	if login, _ := e.w.Get(e.topic("auth", "login_url")); login != "" {
		t.Fatalf("login_url still %q after sign-in", login)
	}
	var info bridge.Info
	_ = json.Unmarshal([]byte(e.w.WaitFor(e.topic("bridge", "info"), 5*time.Second, func(s string) bool { return strings.Contains(s, vin1) })), &info)
	if info.CallBudget != 100000 || info.Version != "test" {
		t.Fatalf("info = %+v", info)
	}
}

func TestTelemetryChangeAndCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.waitStream(vin1)

	e.patch(vin1, `{"metrics":{"odometer":{"value":23456.7}}}`)
	e.w.WaitValue(e.topic(vin1, "odometer"), "23456.7", 5*time.Second)
	e.w.WaitFor(e.topic(vin1, "state"), 5*time.Second, func(s string) bool { return strings.Contains(s, `"odometer":23456.7`) })

	e.w.Publish(e.topic(vin1, "command"), `{"command":"UNLOCK","id":"flow-1"}`, false)
	e.result(vin1, "flow-1", "accepted", 5*time.Second)
	e.result(vin1, "flow-1", "success", 10*time.Second)
	e.w.WaitValue(e.topic(vin1, "lock"), "unlocked", 5*time.Second)
	if h := e.w.History(e.topic(vin1, "lock")); !slices.Contains(h, "unlocking") {
		t.Errorf("lock topic never showed unlocking: %v", h)
	}

	e.w.Publish(e.topic(vin1, "command"), `{"command":"lock","transaction":"tx-9"}`, false)
	r := e.result(vin1, "tx-9", "success", 10*time.Second)
	if r.Command != "lock" || r.At.IsZero() {
		t.Fatalf("result = %+v", r)
	}
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 5*time.Second)

	e.simPost("/_sim/fail?command=lock")
	e.w.Publish(e.topic(vin1, "command"), `{"command":"lock","id":"will-fail"}`, false)
	r = e.result(vin1, "will-fail", "failed", 10*time.Second)
	if !strings.Contains(r.Error, "command_failed_on_device") {
		t.Fatalf("failed result = %+v", r)
	}
	e.w.WaitValue(e.topic(vin1, "lock"), "jammed", 5*time.Second)
}

// TestRecordPolledForAnOutcomeReachesTheTopics: without a stream, the
// record a command's status check fetched is the car's latest, and it is
// published at once, not thrown away until the next poll (an hour here).
func TestRecordPolledForAnOutcomeReachesTheTopics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, mutate: func(c *config.Config) { c.PollInterval = time.Hour }})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	before, _ := e.w.Get(e.topic(vin1, "odometer"))
	e.patch(vin1, `{"metrics":{"odometer":{"value":31415.9}}}`)
	e.w.Publish(e.topic(vin1, "command"), `{"command":"unlock","id":"poll-1"}`, false)
	e.result(vin1, "poll-1", "success", 15*time.Second)
	e.w.WaitValue(e.topic(vin1, "odometer"), "31415.9", 2*time.Second)
	e.w.WaitValue(e.topic(vin1, "lock"), "unlocked", 2*time.Second)
	if before == "31415.9" {
		t.Fatal("the odometer had the new value before the command")
	}
}

func TestCommandRejections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, allowed: []string{"lock", "unlock", "refresh"}})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	cases := []struct{ payload, id, want string }{
		{`{"command":"lock","id":"a1"`, "", "malformed JSON"},
		{`{"command":"fly","id":"a2"}`, "a2", "unknown command"},
		{`{"id":"a3"}`, "a3", `without "command"`},
		{`{"command":"start","id":"a4"}`, "a4", "not allowed"},
		{`{"command":42,"id":"a5"}`, "a5", "must be a string"},
		{strings.Repeat("x", 5000), "", "at most"},
		{"   ", "", "empty payload"},
	}
	for _, c := range cases {
		e.w.Publish(e.topic(vin1, "command"), c.payload, false)
		e.w.WaitEvent(e.topic(vin1, "command", "result"), 5*time.Second, func(s string) bool {
			var r bridge.Result
			return json.Unmarshal([]byte(s), &r) == nil && r.Status == "rejected" && strings.Contains(r.Error, c.want) && (c.id == "" || r.ID == c.id)
		})
	}
	// Unknown VIN.
	e.w.Publish(e.topic("1FTEW1EP999999999", "command"), `{"command":"lock","id":"v1"}`, false)
	e.w.WaitEvent(e.topic("1FTEW1EP999999999", "command", "result"), 5*time.Second, func(s string) bool { return strings.Contains(s, "unknown vehicle") })
	// refresh is allowed but rate-limited per car.
	e.w.Publish(e.topic(vin1, "command"), `{"command":"refresh","id":"r1"}`, false)
	e.result(vin1, "r1", "success", 10*time.Second)
	e.w.Publish(e.topic(vin1, "command"), `{"command":"refresh","id":"r2"}`, false)
	if r := e.result(vin1, "r2", "rejected", 5*time.Second); !strings.Contains(r.Error, "12 V battery") {
		t.Fatalf("second refresh: %+v", r)
	}
	cmds := e.sim.Stats().Commands
	if len(cmds) != 1 || cmds[0].Type != "statusRefresh" {
		t.Fatalf("simulator received %+v; only the first refresh should reach Ford", cmds)
	}
}

func TestDeadRefreshTokenThenSignInFromPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.simPost("/_sim/revoke")
	e.simPost("/_sim/expire")
	e.w.WaitValue(e.topic("auth", "state"), "reauth_required", 15*time.Second)
	if refreshes := e.sim.Stats().Refreshes; refreshes != 1 {
		t.Fatalf("%d refresh attempts; a dead token must be tried exactly once", refreshes)
	}
	before := e.calls()
	time.Sleep(3 * time.Second) // three poll periods
	if after := e.calls(); after != before {
		t.Fatalf("%d Ford calls while waiting for a new sign-in", after-before)
	}
	// Commands are refused with the reason, without calling Ford.
	e.w.Publish(e.topic(vin1, "command"), `{"command":"lock","id":"c1"}`, false)
	if r := e.result(vin1, "c1", "rejected", 5*time.Second); !strings.Contains(r.Error, "not signed in") {
		t.Fatalf("result = %+v", r)
	}

	// A wrong code keeps the state and says why.
	srv := httptestServer(t, e.bridge.HTTPHandler())
	form := func(code string) *http.Response {
		page, err := bridgetest.HTTP.Get(srv + "/")
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, page)
		token := between(body, `name="form_token" value="`, `"`)
		resp, err := http.PostForm(srv+"/auth/code", url.Values{"redirect_url": {code}, "form_token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := form("fordapp://userauthorized/?code=expired-code-1234")
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Sign-in failed") {
		t.Fatalf("bad code: %d", resp.StatusCode)
	}
	e.w.WaitFor(e.topic("auth", "detail"), 5*time.Second, func(s string) bool { return strings.Contains(s, "did not work") })
	if s, _ := e.w.Get(e.topic("auth", "state")); s != "reauth_required" {
		t.Fatalf("state after a bad code = %q", s)
	}
	login, _ := e.w.Get(e.topic("auth", "login_url"))
	resp = form(bridgetest.FollowLogin(t, login))
	readAll(t, resp)
	if resp.StatusCode != http.StatusOK { // after the 303 to the page
		t.Fatalf("good code: %d", resp.StatusCode)
	}
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	e.patch(vin1, `{"metrics":{"odometer":{"value":30000.1}}}`)
	e.w.WaitValue(e.topic(vin1, "odometer"), "30000.1", 10*time.Second)
}

func TestOutageAndRateLimitRecoverByThemselves(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)

	states := e.topic("auth", "state")
	e.simPost("/_sim/outage?status=503&for=2s")
	e.w.WaitEvent(states, 10*time.Second, func(s string) bool { return s == "unavailable" })
	e.w.WaitValue(states, "ok", 15*time.Second)
	e.w.Reset(states)

	e.simPost("/_sim/outage?status=0&for=2s")
	e.w.WaitEvent(states, 10*time.Second, func(s string) bool { return s == "unavailable" })
	e.w.WaitValue(states, "ok", 15*time.Second)

	e.simPost("/_sim/ratelimit?for=2s")
	e.w.WaitEvent(states, 10*time.Second, func(s string) bool { return s == "rate_limited" })
	var d bridge.AuthInfo
	_ = json.Unmarshal([]byte(e.w.WaitFor(e.topic("auth", "detail"), 5*time.Second, func(s string) bool { return strings.Contains(s, "retry_at") })), &d)
	if d.RetryAt == nil || d.RetryAt.Before(time.Now()) {
		t.Fatalf("rate limit detail without a future retry_at: %+v", d)
	}
	e.w.WaitValue(e.topic("auth", "state"), "ok", 15*time.Second)

	if slices.Contains(e.w.History(states), "reauth_required") {
		t.Fatalf("a transient fault produced reauth_required: %v", e.w.History(e.topic("auth", "state")))
	}
	if n := e.sim.Stats().Refreshes; n != 0 {
		t.Fatalf("%d token refreshes during faults that had nothing to do with the token", n)
	}
}

func TestBrokerRestartRepublishesEverything(t *testing.T) {
	t.Parallel()
	addr := bridgetest.FreeAddr(t)
	var stopBroker func()
	start := func() {
		if stop, ok := bridgetest.Mosquitto(t, addr); ok {
			stopBroker = stop
			return
		}
		b, err := broker.Start(addr)
		if err != nil {
			t.Fatal(err)
		}
		stopBroker = func() { _ = b.Close() }
	}
	start()
	t.Cleanup(func() { stopBroker() })
	e := newEnv(t, envOptions{signedIn: true, mqttURL: "tcp://" + addr})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	stopBroker()
	time.Sleep(500 * time.Millisecond)
	start() // a new broker without any retained message
	late := bridgetest.Watch(t, "tcp://"+addr, e.p+"/#", e.cfg.HADiscoveryPrefix+"/#")
	late.WaitValue(e.topic("bridge", "availability"), "online", 15*time.Second)
	late.WaitValue(e.topic("auth", "state"), "ok", 5*time.Second)
	late.WaitValue(e.topic(vin1, "lock"), "locked", 5*time.Second)
	late.WaitFor(e.topic(vin1, "odometer"), 5*time.Second, func(s string) bool { return s != "" })
	// The car's state comes from what it last published, not from a cache.
	late.WaitFor(e.topic(vin1, "state"), 5*time.Second, func(s string) bool { return strings.Contains(s, `"lock":"locked"`) })
	late.WaitFor(e.topic(vin1, "location"), 5*time.Second, func(s string) bool { return strings.Contains(s, "latitude") })
	late.WaitFor(e.topic(vin1, "updated_at"), 5*time.Second, func(s string) bool { return strings.HasPrefix(s, "20") })
	late.WaitFor(e.deviceConfig(vin1), 5*time.Second, func(s string) bool { return strings.Contains(s, vin1) })
}

func TestShutdownPublishesOffline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	e.w.WaitValue(e.topic("bridge", "availability"), "online", 10*time.Second)
	if err := e.stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	late := bridgetest.Watch(t, e.cfg.MQTTURL, e.topic("bridge", "availability"))
	late.WaitValue(e.topic("bridge", "availability"), "offline", 5*time.Second)
}

func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{stream: true})
	login := e.w.WaitFor(e.topic("auth", "login_url"), 10*time.Second, func(s string) bool { return s != "" })
	redirect := bridgetest.FollowLogin(t, login)
	e.w.Publish(e.topic("auth", "code", "set"), redirect, false)
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.w.Publish(e.topic(vin1, "command"), "unlock", false)
	e.w.WaitValue(e.topic(vin1, "lock"), "unlocked", 10*time.Second)
	e.simPost("/_sim/expire") // force a refresh and a token exchange
	e.patch(vin1, `{"metrics":{"odometer":{"value":1.5}}}`)
	time.Sleep(time.Second)
	e.stop()
	// The code itself, besides every token prefix, must be absent too.
	code := redirect[strings.Index(redirect, "code=")+5:]
	e.assertNoSecretsLogged(code)
	if e.logs.Len() < 5 {
		t.Fatalf("only %d log lines: the test would prove nothing", e.logs.Len())
	}
}

func TestRetainedCommandFromBeforeStartIsNeverRun(t *testing.T) {
	t.Parallel()
	url := bridgetest.Broker(t)
	prefix := "fpt" + bridgetest.Suffix()
	pre := bridgetest.Watch(t, url, prefix+"/#")
	pre.Publish(prefix+"/"+vin1+"/command", `{"command":"unlock","id":"stale-1"}`, true)
	e := newEnv(t, envOptions{signedIn: true, mqttURL: url, prefix: prefix})
	r := e.result(vin1, "stale-1", "rejected", 10*time.Second)
	if !strings.Contains(r.Error, "retained") {
		t.Fatalf("result = %+v", r)
	}
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	// The bridge cleared the retained command: a new subscriber sees none.
	late := bridgetest.Watch(t, url, e.topic(vin1, "command"))
	time.Sleep(500 * time.Millisecond)
	if v, ok := late.Get(e.topic(vin1, "command")); ok && v != "" {
		t.Fatalf("retained command still on the broker: %q", v)
	}
	if n := len(e.sim.Stats().Commands); n != 0 {
		t.Fatalf("the simulator received %d commands", n)
	}
}

func TestRetainedCommandSentLiveIsClearedForReconnects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.w.Publish(e.topic(vin1, "command"), `{"command":"unlock","id":"live-1"}`, true)
	e.result(vin1, "live-1", "success", 10*time.Second)
	late := bridgetest.Watch(t, e.cfg.MQTTURL, e.topic(vin1, "command"))
	time.Sleep(500 * time.Millisecond)
	if v, ok := late.Get(e.topic(vin1, "command")); ok && v != "" {
		t.Fatalf("retained command left on the broker would replay at the next connect: %q", v)
	}
}
