package bridge_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

func (e *env) healthz() string {
	e.t.Helper()
	srv := httptestServer(e.t, e.bridge.HTTPHandler())
	resp, err := bridgetest.HTTP.Get(srv + "/healthz")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TestDarkCarGoesOfflineAndBack: with Ford down (the socket dropped, polls
// failing), the car's availability turns offline after DarkAfter, says
// why, and is named by /healthz and P/bridge/info; when Ford answers again
// it is online again.
func TestDarkCarGoesOfflineAndBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true, options: func(o *bridge.Options) { o.DarkAfter = time.Second }})
	avail := e.topic(vin1, "availability")
	e.w.WaitValue(avail, "online", 10*time.Second)
	e.waitStream(vin1)
	start := time.Now()
	e.simPost("/_sim/outage?status=503&for=5s")
	e.w.WaitValue(avail, "offline", 10*time.Second)
	took := time.Since(start)
	var d mqttapi.Dark
	if err := json.Unmarshal([]byte(e.w.WaitFor(e.topic(vin1, "availability", "detail"), 2*time.Second, func(s string) bool { return s != "" })), &d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Reason, "Ford") || d.Since.IsZero() {
		t.Fatalf("offline without a reason: %+v", d)
	}
	if h := e.healthz(); !strings.Contains(h, "offline cars") || !strings.Contains(h, vin1) {
		t.Fatalf("/healthz does not name the dark car: %q", h)
	}
	e.w.WaitFor(e.topic("bridge", "info"), 5*time.Second, func(s string) bool { return strings.Contains(s, `"dark":["`+vin1) })
	if c := check(t, runDoctor(t, e.cfg, false), "cars"); c.Status != bridge.Warn || !strings.Contains(c.Finding, vin1) {
		t.Fatalf("doctor does not name the dark car: %+v", c)
	}
	back := time.Now()
	e.w.WaitValue(avail, "online", 20*time.Second)
	e.w.WaitValue(e.topic(vin1, "availability", "detail"), "", 2*time.Second)
	if h := e.healthz(); strings.Contains(h, "offline") {
		t.Fatalf("/healthz after recovery: %q", h)
	}
	t.Logf("offline %.1f s after Ford went down (DarkAfter 1 s); online %.1f s after the 5 s outage's end", took.Seconds(), time.Since(back).Seconds()-max(0, 5-took.Seconds()))
}

// TestBudgetPausedCarIsOfflineAtOnce: when the call budget refuses a car's
// telemetry, the car is offline at once, with the time the next call is
// allowed, although the auth state stays ok (a pause of the budget's pace
// is no alarm). Here a budget of 30 leaves one telemetry call an hour,
// which the vehicle list has spent.
func TestBudgetPausedCarIsOfflineAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true, budget: 30})
	avail := e.topic(vin1, "availability")
	e.w.WaitValue(avail, "offline", 5*time.Second)
	var d mqttapi.Dark
	_ = json.Unmarshal([]byte(e.w.WaitFor(e.topic(vin1, "availability", "detail"), 2*time.Second, func(s string) bool { return s != "" })), &d)
	if d.Until == nil || time.Until(*d.Until) < 50*time.Minute || !strings.Contains(d.Reason, "call budget") || !strings.Contains(d.Reason, "next call is allowed at") {
		t.Fatalf("a budget pause must say until when: %+v", d)
	}
	if st, _ := e.w.Get(e.topic("auth", "state")); st != "ok" {
		t.Fatalf("auth state %q; a pace is no alarm, the car's own availability says it", st)
	}
	if h := e.healthz(); !strings.Contains(h, vin1) {
		t.Fatalf("/healthz: %q", h)
	}
}
