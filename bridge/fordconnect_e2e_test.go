package bridge_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// TestFordConnectBackend: with FORD_BACKEND=fordconnect the login link on
// MQTT carries the app's client id, its registered redirect and a state of
// 16 characters; pasting the address the browser landed on signs in; the
// consented car's state appears with the same fields as FordPass's and
// changes keep coming by polling; the Query requests never come faster
// than the pace, even with a poll interval far shorter; a command is
// rejected naming FordPass, and Home Assistant is offered no command.
func TestFordConnectBackend(t *testing.T) {
	t.Parallel()
	const pace = 400 * time.Millisecond
	e := newEnv(t, envOptions{fordconnect: pace, sim: fordsim.Options{FconPace: pace, Vehicles: 2},
		mutate: func(c *config.Config) { c.PollInterval = 100 * time.Millisecond }})
	e.w.WaitValue(e.topic("auth", "state"), "reauth_required", 10*time.Second)
	link := e.w.WaitFor(e.topic("auth", "login_url"), 5*time.Second, func(s string) bool { return s != "" })
	// FordConnect's own link is offered before the first consent too.
	e.w.WaitValue(e.topic("auth", "fordconnect", "login_url"), link, 5*time.Second)
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("client_id") != fordsim.FconClientID || q.Get("redirect_uri") != fordsim.FconRedirect || len(q.Get("state")) > 16 || !strings.HasSuffix(u.Path, "/fcon-public/v1/auth/init") {
		t.Fatalf("login link %s", link)
	}
	landing, err := fordsim.FollowLogin(context.Background(), link)
	if err != nil {
		t.Fatal(err)
	}
	e.w.Publish(e.topic("auth", "code", "set"), landing, false)
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	for _, f := range []string{"odometer", "fuel_level", "door_driver", "tire_pressure_front_left", "location"} {
		e.w.WaitFor(e.topic(vin1, f), 5*time.Second, func(s string) bool { return s != "" })
	}
	// A second car is a second consent: its link stays offered.
	e.signInVia(e.topic("auth", "fordconnect", "login_url"))
	e.w.WaitFor(e.topic(fordsim.VIN(2), "odometer"), 15*time.Second, func(s string) bool { return s != "" })
	e.patch(vin1, `{"metrics":{"odometer":{"value":5555.5}}}`)
	e.w.WaitValue(e.topic(vin1, "odometer"), "5555.5", 10*time.Second)

	before, start := e.sim.Stats().Calls["fcon_telemetry"], time.Now()
	time.Sleep(3 * time.Second)
	n, took := e.sim.Stats().Calls["fcon_telemetry"]-before, time.Since(start)
	// A pace per access token, one token per car.
	if limit := 2 * (int(took/pace) + 1); n > limit || n == 0 {
		t.Fatalf("%d telemetry requests in %s: the pace of %s for each of 2 cars allows %d", n, took.Round(time.Millisecond), pace, limit)
	}
	if r := e.sim.Stats().FconRefused; r != 0 {
		t.Fatalf("%d requests refused by Ford's pace", r)
	}
	t.Logf("FordConnect: %d telemetry requests for 2 cars in %s at a %s pace with a 100 ms poll interval; 0 refused", n, took.Round(time.Millisecond), pace)

	cfg := e.w.WaitFor(e.deviceConfig(vin1), 5*time.Second, func(s string) bool { return strings.Contains(s, "odometer") })
	for key, c := range cmps(t, cfg) {
		if c["command_topic"] != nil {
			t.Errorf("Home Assistant is offered %s, which sends a command", key)
		}
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"lock","id":"fc-lock"}`, false)
	if r := e.result(vin1, "fc-lock", "rejected", 5*time.Second); !strings.Contains(r.Error, "FordPass") || !strings.Contains(r.Error, "read-only") {
		t.Fatalf("a command: %+v", r)
	}
	if len(e.sim.Stats().Commands) != 0 || e.sim.Stats().Calls["command"] != 0 {
		t.Fatal("a command reached Ford")
	}
}

// TestFordConnectHonoursRetryAfter: when Ford's pace is slower than the
// bridge's, its 429 is honoured: the bridge waits as Retry-After says
// instead of asking again at its own pace, and the state keeps coming.
func TestFordConnectHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fordconnect: 100 * time.Millisecond, sim: fordsim.Options{FconPace: 2 * time.Second},
		mutate: func(c *config.Config) { c.PollInterval = 100 * time.Millisecond }})
	e.w.WaitValue(e.topic("auth", "state"), "reauth_required", 10*time.Second)
	e.signInVia(e.topic("auth", "login_url"))
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 15*time.Second)
	st0 := e.sim.Stats()
	time.Sleep(4 * time.Second)
	st := e.sim.Stats()
	// At the bridge's own pace it would ask 40 times in 4 s; honouring
	// Retry-After, each refusal is followed by a wait of Ford's pace: at
	// most 2 answered and 2 refused (one more at the window's edges).
	n, refused := st.Calls["fcon_telemetry"]-st0.Calls["fcon_telemetry"], st.FconRefused-st0.FconRefused
	if n > 5 || refused > 3 || n-refused == 0 {
		t.Fatalf("in 4 s: %d telemetry requests, %d refused: Retry-After was not honoured", n, refused)
	}
	t.Logf("Ford's 2 s pace against the bridge's 100 ms: %d telemetry requests, %d refused, in 4 s", n, refused)
}

// TestFordConnectConsentLandsOnThePage: when the registered redirect is
// the bridge's own page, the browser's landing there completes the
// consent by itself; a landing address with a state the bridge never made
// signs nothing in.
func TestFordConnectConsentLandsOnThePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fordconnect: 100 * time.Millisecond, sim: fordsim.Options{FconPace: 100 * time.Millisecond}})
	srv := httptestServer(t, e.bridge.HTTPHandler())
	noFollow := &http.Client{Timeout: 10 * time.Second, Transport: bridgetest.Transport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	link := e.w.WaitFor(e.topic("auth", "login_url"), 10*time.Second, func(s string) bool { return s != "" })
	landing, err := fordsim.FollowLogin(context.Background(), link)
	if err != nil {
		t.Fatal(err)
	}
	lu, _ := url.Parse(landing)
	forged := lu.Query()
	forged.Set("state", "0123456789abcdef")
	resp, err := noFollow.Get(srv + lu.Path + "?" + forged.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "state") {
		t.Fatalf("a forged state: %d %s", resp.StatusCode, body)
	}
	resp, err = noFollow.Get(srv + lu.Path + "?" + lu.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "signed_in=1") {
		t.Fatalf("the landing: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	page, _ := bridgetest.HTTP.Get(srv + "/")
	pb, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(pb), "Open the FordConnect consent") || strings.Contains(string(pb), "fordapp://") {
		t.Fatal("the page does not guide a FordConnect consent")
	}
}

// TestBothBackendsKeepTheCarFlowing: with FORD_BACKEND=both each backend
// has its own state and login link under P/auth/, P/auth/state says the
// worst of them, and one P/auth/code/set takes either's landing address.
// Revoking FordPass's refresh token keeps the car's state updating from
// FordConnect (its source says so), commands are refused naming FordPass
// meanwhile, and signing in to FordPass again brings the stream and the
// commands back.
func TestBothBackendsKeepTheCarFlowing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true, both: true, fordconnect: 300 * time.Millisecond,
		sim:    fordsim.Options{FconPace: 300 * time.Millisecond},
		mutate: func(c *config.Config) { c.PollInterval = 200 * time.Millisecond }})
	state, fpState, fcState := e.topic("auth", "state"), e.topic("auth", "fordpass", "state"), e.topic("auth", "fordconnect", "state")
	e.w.WaitValue(fpState, "ok", 10*time.Second)
	// No car is consented to FordConnect yet: nothing needs a sign-in.
	e.w.WaitValue(fcState, "ok", 10*time.Second)
	e.w.WaitValue(state, "ok", 5*time.Second)
	e.w.WaitFor(e.topic("auth", "fordconnect", "detail"), 5*time.Second, func(s string) bool {
		return strings.Contains(s, "no car is consented") && strings.Contains(s, `"consented":false`)
	})
	e.w.WaitValue(e.topic(vin1, "source"), "fordpass", 10*time.Second)

	e.signInVia(e.topic("auth", "fordconnect", "login_url"))
	e.w.WaitValue(fcState, "ok", 10*time.Second)
	e.w.WaitValue(state, "ok", 5*time.Second)

	// FordPass's sign-in dies: its refresh token is revoked and its access
	// tokens expire.
	e.sim.Revoke()
	e.sim.Expire()
	e.w.WaitValue(fpState, "reauth_required", 15*time.Second)
	e.w.WaitValue(state, "reauth_required", 5*time.Second)
	e.w.WaitValue(e.topic(vin1, "source"), "fordconnect", 10*time.Second)
	for _, v := range []string{"7001.5", "7002.5"} {
		e.patch(vin1, `{"metrics":{"odometer":{"value":`+v+`}}}`)
		e.w.WaitValue(e.topic(vin1, "odometer"), v, 10*time.Second)
	}
	if fc, _ := e.w.Get(fcState); fc != "ok" {
		t.Fatalf("FordConnect's state %q", fc)
	}
	e.w.Publish(e.topic(vin1, "command"), `{"command":"unlock","id":"both-1"}`, false)
	if r := e.result(vin1, "both-1", "rejected", 5*time.Second); !strings.Contains(r.Error, "FordPass") {
		t.Fatalf("a command while FordPass needs a sign-in: %+v", r)
	}

	// Signing in to FordPass again, through the same topic.
	e.signInVia(e.topic("auth", "fordpass", "login_url"))
	e.w.WaitValue(fpState, "ok", 10*time.Second)
	e.w.WaitValue(state, "ok", 5*time.Second)
	e.w.WaitValue(e.topic(vin1, "source"), "fordpass", 15*time.Second)
	e.waitStream(vin1)
	e.w.Publish(e.topic(vin1, "command"), `{"command":"unlock","id":"both-2"}`, false)
	e.result(vin1, "both-2", "success", 10*time.Second)
	e.w.WaitValue(e.topic(vin1, "lock"), "unlocked", 5*time.Second)
	cfg := e.w.WaitFor(e.deviceConfig(vin1), 5*time.Second, func(s string) bool { return strings.Contains(s, `"source"`) })
	if c := cmps(t, cfg)["source"]; c == nil || c["entity_category"] != "diagnostic" {
		t.Fatalf("no diagnostic source entity: %v", c)
	}
	st := e.sim.Stats()
	t.Logf("both: %d FordConnect telemetry reads while FordPass was signed out; %d sockets", st.Calls["fcon_telemetry"], st.Calls["stream"])
}

// signInVia opens the login link published on topic as a user's browser
// would and publishes the address it lands on to P/auth/code/set.
func (e *env) signInVia(topic string) {
	e.t.Helper()
	link := e.w.WaitFor(topic, 10*time.Second, func(s string) bool { return s != "" })
	e.w.Publish(e.topic("auth", "code", "set"), bridgetest.FollowLogin(e.t, link), false)
}
