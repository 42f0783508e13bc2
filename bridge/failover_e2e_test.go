package bridge_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// TestBothFailsOverPerConsentedCar is the household of issue 30, on the
// default call budget (250 a day) and poll interval (10 min): two cars,
// one consented to FordConnect. When FordPass's sign-in dies, the
// consented car is read through FordConnect at once, at FordConnect's
// pace and not FordPass's budget (P/VIN/source says so, and its state
// keeps coming); the other goes offline naming its missing consent;
// FordConnect never asks for a sign-in for it. A FordPass sign-in brings
// P/auth/state to ok within seconds, without a restart, the streams back,
// and the source back to FordPass; the auth detail is republished only
// when it changes.
func TestBothFailsOverPerConsentedCar(t *testing.T) {
	t.Parallel()
	// The default budget, and a larger one (with which the state flapped
	// before: 37 P/auth/detail publishes in 104 s).
	for _, budget := range []int{250, 5000} {
		t.Run(strconv.Itoa(budget), func(t *testing.T) {
			t.Parallel()
			bothFailsOver(t, budget)
		})
	}
}

func bothFailsOver(t *testing.T, budget int) {
	vin2 := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, both: true, fordconnect: 300 * time.Millisecond, budget: budget,
		sim: fordsim.Options{Vehicles: 2, FconPace: 300 * time.Millisecond},
		mutate: func(c *config.Config) {
			c.PollInterval = 10 * time.Minute
			c.DailyBudget = budget
		},
		options: func(o *bridge.Options) { o.DarkAfter = time.Second }})
	state, fcState, detail := e.topic("auth", "state"), e.topic("auth", "fordconnect", "state"), e.topic("auth", "detail")
	e.w.WaitValue(state, "ok", 10*time.Second)
	e.signInVia(e.topic("auth", "fordconnect", "login_url")) // the first consent is the first car's
	e.w.WaitFor(e.topic("auth", "fordconnect", "detail"), 10*time.Second, func(s string) bool {
		return strings.Contains(s, `{"vin":"`+vin1+`","consented":true}`) && strings.Contains(s, `{"vin":"`+vin2+`","consented":false}`)
	})
	for _, v := range []string{vin1, vin2} {
		e.w.WaitValue(e.topic(v, "source"), "fordpass", 10*time.Second)
		e.waitStream(v)
	}
	detailsBefore := len(e.w.History(detail))
	fcStates := len(e.w.History(fcState))

	// The sockets go quiet, the car changes, and FordPass's sign-in dies:
	// the change can reach MQTT only through FordConnect.
	e.simPost("/_sim/stream?mode=stall&for=10m")
	e.patch(vin1, `{"metrics":{"odometer":{"value":8123.5}}}`)
	lost := time.Now()
	e.sim.Revoke()
	e.sim.Expire()
	e.w.WaitValue(e.topic(vin1, "source"), "fordconnect", 2*time.Minute)
	failover := time.Since(lost)
	e.w.WaitValue(e.topic(vin1, "odometer"), "8123.5", 5*time.Second)
	e.simPost("/_sim/stream?mode=stall&for=0s")
	if v, _ := e.w.Get(e.topic(vin1, "availability")); v != "online" {
		t.Fatalf("the consented car is %q while FordConnect reads it", v)
	}
	e.w.WaitValue(e.topic(vin2, "availability"), "offline", 10*time.Second)
	if d, _ := e.w.Get(e.topic(vin2, "availability", "detail")); !strings.Contains(d, "not consented to FordConnect") {
		t.Fatalf("the other car's reason: %s", d)
	}
	e.w.WaitValue(e.topic("auth", "fordpass", "state"), "reauth_required", 10*time.Second)
	e.w.WaitValue(state, "reauth_required", 5*time.Second)

	back := time.Now()
	e.signInVia(e.topic("auth", "fordpass", "login_url"))
	e.w.WaitValue(state, "ok", time.Minute)
	signedIn := time.Since(back)
	for _, v := range []string{vin1, vin2} {
		e.w.WaitValue(e.topic(v, "source"), "fordpass", 30*time.Second)
		e.w.WaitValue(e.topic(v, "availability"), "online", 10*time.Second)
	}
	streamsBack := time.Since(back)
	for _, s := range e.w.History(fcState)[fcStates:] {
		if s != "ok" {
			t.Fatalf("FordConnect's state went %q: it holds one good consent and was never refused", s)
		}
	}
	if n := len(e.w.History(detail)) - detailsBefore; n > 12 {
		t.Fatalf("%d P/auth/detail publishes over the episode: %q", n, e.w.History(detail)[detailsBefore:])
	}
	// FordConnect's other reads: the consented car's health alerts, on
	// FordConnect's pace whatever FordPass's budget; the other car is never
	// asked, and FordConnect's state stayed ok (above).
	e.w.WaitValue(e.topic(vin1, "health_alerts"), "1", 15*time.Second)
	// One read; a second only when the test's own expiry met the first
	// (Ford's 401, the token renewed, the read made again once).
	if n := e.sim.Stats().Calls["fcon_health_alerts"]; n < 1 || n > 2 {
		t.Fatalf("%d health alert reads for one consented car (%d refused by the pace in all)", n, e.sim.Stats().FconRefused)
	}
	if v, _ := e.w.Get(e.topic(vin2, "health_alerts")); v != "" {
		t.Fatalf("the car without a consent shows health alerts %q", v)
	}
	st := e.sim.Stats()
	t.Logf("failover %s; sign-in to ok %s; streams and sources back %s; %d P/auth/detail publishes; FordConnect reads %d, refused %d; FordPass calls %d",
		failover.Round(time.Millisecond), signedIn.Round(time.Millisecond), streamsBack.Round(time.Millisecond),
		len(e.w.History(detail))-detailsBefore, st.Calls["fcon_telemetry"], st.FconRefused, e.calls())
}

// TestBothConsentThroughThePage: with FORD_BACKEND=both, a browser that
// opens FordConnect's consent link and is sent on to the bridge's own
// page (the registered redirect) completes the consent there, following
// the redirects as a browser does, and lands on the page saying so.
func TestBothConsentThroughThePage(t *testing.T) {
	t.Parallel()
	var h atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	redirect := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/fordconnect/callback"
	e := newEnv(t, envOptions{signedIn: true, stream: true, both: true, fordconnect: 100 * time.Millisecond, fconRedirect: redirect,
		sim: fordsim.Options{FconPace: 100 * time.Millisecond}})
	h.Store(e.bridge.HTTPHandler())
	link := e.w.WaitFor(e.topic("auth", "fordconnect", "login_url"), 10*time.Second, func(s string) bool { return strings.Contains(s, "state=") })
	var hops []string
	browser := &http.Client{Timeout: 10 * time.Second, Transport: bridgetest.Transport(), CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		hops = append(hops, r.URL.Path)
		return nil
	}}
	resp, err := browser.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || len(hops) != 2 || hops[0] != "/fordconnect/callback" || resp.Request.URL.Query().Get("signed_in") != "1" {
		t.Fatalf("the browser went %v and got %d: %.300s", hops, resp.StatusCode, page)
	}
	e.w.WaitFor(e.topic("auth", "fordconnect", "detail"), 10*time.Second, func(s string) bool {
		return strings.Contains(s, `{"vin":"`+vin1+`","consented":true}`)
	})
	if st := e.sim.Stats(); st.Calls["fcon_token"] != 1 {
		t.Fatalf("%d FordConnect code exchanges", st.Calls["fcon_token"])
	}
	resp, err = browser.Get(strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/")
	if err != nil {
		t.Fatal(err)
	}
	if page := readAll(t, resp); !strings.Contains(page, "<code>"+vin1+"</code> consented") || !strings.Contains(page, "Consent one more car to FordConnect") {
		t.Fatalf("the page does not say which cars are consented: %.2000s", page[strings.Index(page, "<h2>Status"):])
	}
}

// TestBothJunkCodesCannotBurnTheConsentLink: the consent link's state is
// public to whoever reads the retained P/auth/login_url. Twenty junk codes
// published with it cost Ford at most two exchanges (the throttle holds
// the rest, the latest waiting), and the owner's own landing, published
// after them, still completes the consent.
func TestBothJunkCodesCannotBurnTheConsentLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true, both: true, fordconnect: 100 * time.Millisecond,
		sim: fordsim.Options{FconPace: 100 * time.Millisecond}})
	link := e.w.WaitFor(e.topic("auth", "fordconnect", "login_url"), 10*time.Second, func(s string) bool { return strings.Contains(s, "state=") })
	landing := bridgetest.FollowLogin(t, link)
	u, _ := url.Parse(landing)
	state := u.Query().Get("state")
	for i := range 20 {
		e.w.Publish(e.topic("auth", "code", "set"), fordsim.FconRedirect+"?code=junk"+strconv.Itoa(i)+"xxxxxx&state="+state, false)
	}
	e.w.Publish(e.topic("auth", "code", "set"), fordsim.FconRedirect+"?code="+strings.Repeat("x", 3000)+"&state="+state, false)
	e.w.WaitFor(e.topic("auth", "detail"), 10*time.Second, func(s string) bool { return strings.Contains(s, `"ok":false`) })
	e.w.Publish(e.topic("auth", "code", "set"), landing, false)
	e.w.WaitFor(e.topic("auth", "fordconnect", "detail"), 30*time.Second, func(s string) bool {
		return strings.Contains(s, `{"vin":"`+vin1+`","consented":true}`)
	})
	if n := e.sim.Stats().Calls["fcon_token"]; n > 3 {
		t.Fatalf("%d code exchanges for 20 junk codes and the owner's", n)
	}
	t.Logf("20 junk codes and a 3 KB one, then the owner's landing: %d exchanges in all", e.sim.Stats().Calls["fcon_token"])
}

// TestBothRefusedConsentHealsByItself: Ford's sign-in service refuses
// every renewal for a while (POST /_sim/authoutage) while FordConnect
// reads the car. The consent is refused at once (FordConnect's state says
// reauth_required, naming when it is tried again), its refresh token is
// kept, and once the outage is over the bridge tries it again by itself:
// FordConnect is ok and the car is read again with no new consent.
func TestBothRefusedConsentHealsByItself(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true, both: true, fordconnect: 100 * time.Millisecond,
		sim:    fordsim.Options{FconPace: 100 * time.Millisecond},
		heal:   []time.Duration{time.Second, 2 * time.Second},
		mutate: func(c *config.Config) { c.PollInterval = 300 * time.Millisecond }})
	fcState := e.topic("auth", "fordconnect", "state")
	e.signInVia(e.topic("auth", "fordconnect", "login_url"))
	e.w.WaitFor(e.topic("auth", "fordconnect", "detail"), 10*time.Second, func(s string) bool {
		return strings.Contains(s, `{"vin":"`+vin1+`","consented":true}`)
	})
	e.sim.Revoke() // FordPass is lost: the car is read through FordConnect
	e.sim.Expire()
	e.w.WaitValue(e.topic(vin1, "source"), "fordconnect", 10*time.Second)
	e.simPost("/_sim/authoutage?backend=fordconnect&for=2s")
	e.sim.Expire()
	e.w.WaitValue(fcState, "reauth_required", 10*time.Second)
	// The detail follows the state; on a busy machine the refusal may even
	// have healed by the time it is read, so every detail published counts.
	said := func() bool {
		for _, d := range e.w.History(e.topic("auth", "fordconnect", "detail")) {
			if strings.Contains(d, "by itself") && strings.Contains(d, `"retry_at"`) {
				return true
			}
		}
		return false
	}
	bridgetest.Eventually(t, 10*time.Second, "a detail saying the refused consent is tried again by itself", said)
	e.w.WaitValue(fcState, "ok", 20*time.Second)
	e.patch(vin1, `{"metrics":{"odometer":{"value":9001.5}}}`)
	e.w.WaitValue(e.topic(vin1, "odometer"), "9001.5", 10*time.Second)
	if e.logs.FilterMessageSnippet("was temporary").Len() == 0 {
		t.Fatal("the log does not say Ford's refusal was temporary")
	}
}
