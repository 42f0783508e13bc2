package bridge_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

func TestHomeAssistantBirthRepublishesDiscoveryWithoutCallingFord(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true})
	cfgTopic := e.deviceConfig(vin1)
	// A prefix other than the default gives the bridge device a node id of
	// its own, so two bridges on one broker keep their own devices.
	bridgeTopic := e.cfg.HADiscoveryPrefix + "/device/fordpass_bridge_" + e.p + "/config"
	// The device is whole once the messages' entity joined it (the
	// message centre is read after the car's first telemetry); a config
	// sent after the clearing below would pass for the republish.
	e.w.WaitFor(cfgTopic, 10*time.Second, func(s string) bool { return strings.Contains(s, `"lock"`) && strings.Contains(s, `"messages_unread"`) })
	e.w.WaitFor(bridgeTopic, 5*time.Second, func(s string) bool { return strings.Contains(s, "reauth_required") })
	// HA restarted with a fresh broker state: the configs are gone.
	e.w.Publish(cfgTopic, "", true)
	e.w.Publish(bridgeTopic, "", true)
	e.w.WaitValue(cfgTopic, "", 5*time.Second)
	before := e.calls()
	e.w.Publish(e.cfg.HADiscoveryPrefix+"/status", "online", false)
	e.w.WaitFor(cfgTopic, 5*time.Second, func(s string) bool { return strings.Contains(s, vin1) })
	e.w.WaitFor(bridgeTopic, 5*time.Second, func(s string) bool { return s != "" })
	if after := e.calls(); after != before {
		t.Fatalf("republishing discovery made %d Ford calls", after-before)
	}
}

// TestBirthStormIsCoalesced: 200 births from Home Assistant in a burst
// make one republish, not 200.
func TestBirthStormIsCoalesced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	cfgTopic := e.deviceConfig(vin1)
	// The device is whole once the messages' entity joined it (the
	// message centre is read after the car's first telemetry).
	e.w.WaitFor(cfgTopic, 10*time.Second, func(s string) bool { return strings.Contains(s, `"lock"`) && strings.Contains(s, `"messages_unread"`) })
	time.Sleep(300 * time.Millisecond)
	e.w.Reset(cfgTopic)
	for range 200 {
		e.w.Send(e.cfg.HADiscoveryPrefix+"/status", "online")
	}
	e.w.Publish(e.cfg.HADiscoveryPrefix+"/status", "online", false)
	// The first republish comes within DiscoveryDelay (100 ms here), a
	// second at most after the cooldown (1 s here), whatever the broker's pace.
	time.Sleep(1500 * time.Millisecond)
	if n := len(e.w.History(cfgTopic)); n < 1 || n > 2 {
		t.Fatalf("201 births made %d republishes of the car's config; want one per burst", n)
	}
}

func TestRemovedVehicleConfigIsCleared(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	url := bridgetest.Broker(t)
	e := newEnv(t, envOptions{signedIn: true, sim: fordsim.Options{Vehicles: 2}, dir: dir, mqttURL: url})
	vin2 := fordsim.VIN(2)
	cfg2 := e.deviceConfig(vin2)
	e.w.WaitFor(cfg2, 10*time.Second, func(s string) bool { return strings.Contains(s, `"battery_soc"`) })
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}

	// The user sets FORD_VINS to the first car only and restarts.
	cfg := e.cfg
	cfg.VINs = []string{vin1}
	region, _ := fordapi.LookupRegion("usa")
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: e.simURL, StateDir: dir, DailyBudget: 100000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	b := bridge.New(cfg, c, bridge.Options{Version: "test", BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	e.w.WaitValue(cfg2, "", 10*time.Second)
	cfg1 := e.deviceConfig(vin1)
	late := bridgetest.Watch(t, url, e.cfg.HADiscoveryPrefix+"/#")
	late.WaitFor(cfg1, 5*time.Second, func(s string) bool { return strings.Contains(s, vin1) })
	time.Sleep(300 * time.Millisecond)
	if v, ok := late.Get(cfg2); ok && v != "" {
		t.Fatalf("the removed car's config is still retained")
	}
}

func TestHealthMetricsAndSignInPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.w.WaitValue(e.topic("auth", "state"), "reauth_required", 10*time.Second)
	srv := httptestServer(t, e.bridge.HTTPHandler())

	resp, err := bridgetest.HTTP.Get(srv + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	if readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz %d while connected", resp.StatusCode)
	}
	resp, _ = bridgetest.HTTP.Get(srv + "/metrics")
	metrics := readAll(t, resp)
	for _, m := range []string{`fordpass_auth_state{state="reauth_required"} 1`, "fordpass_mqtt_connected 1", "fordpass_ford_calls_left_24h"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %q", m)
		}
	}

	resp, _ = bridgetest.HTTP.Get(srv + "/")
	page := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "form-action 'self'") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("page headers: %d %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{"Sign-in needed", "fordapp://userauthorized", `action="auth/code"`, "oauth2/v2.0/authorize"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	token := between(page, `name="form_token" value="`, `"`)

	// Forged and oversized posts are refused without calling Ford.
	resp, _ = http.PostForm(srv+"/auth/code", url.Values{"redirect_url": {"x"}, "form_token": {"forged"}})
	if readAll(t, resp); resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, srv+"/auth/code", strings.NewReader(url.Values{"form_token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, _ = bridgetest.HTTP.Do(req)
	if readAll(t, resp); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site post: %d", resp.StatusCode)
	}
	big := url.Values{"form_token": {token}, "redirect_url": {strings.Repeat("a", 64<<10)}}.Encode()
	resp, _ = bridgetest.HTTP.Post(srv+"/auth/code", "application/x-www-form-urlencoded", strings.NewReader(big))
	if readAll(t, resp); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized post: %d", resp.StatusCode)
	}
	if n := e.calls(); n != 0 {
		t.Fatalf("%d Ford calls from refused posts", n)
	}

	// The real thing: follow the link, paste the redirect.
	login, _ := e.w.Get(e.topic("auth", "login_url"))
	resp, _ = http.PostForm(srv+"/auth/code", url.Values{"redirect_url": {bridgetest.FollowLogin(t, login)}, "form_token": {token}})
	page = readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(page, "Signed in.") {
		t.Fatalf("sign-in post: %d", resp.StatusCode)
	}
	for _, secret := range []string{"simcat-", "simrefresh-", "simcode-", "simauto-"} {
		if strings.Contains(page, secret) {
			t.Fatalf("the page shows a secret (%s…)", secret)
		}
	}
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)

	// Broker gone: healthz says so.
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	resp, _ = bridgetest.HTTP.Get(srv + "/healthz")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz %d (%s) after disconnect", resp.StatusCode, body)
	}
}

func TestAuthDetailIsValidJSONWithLoginURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	raw := e.w.WaitFor(e.topic("auth", "detail"), 10*time.Second, func(s string) bool { return strings.Contains(s, "reauth_required") })
	var d map[string]any
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"state", "reason", "since", "login_url"} {
		if d[k] == nil || d[k] == "" {
			t.Errorf("detail lacks %s: %s", k, raw)
		}
	}
	if len(raw) < 255 {
		return
	}
	// The login URL is long: it must not be the state of an HA entity.
	if s, _ := e.w.Get(e.topic("auth", "state")); len(s) > 255 {
		t.Fatal("auth/state longer than an HA state may be")
	}
}
