package bridge_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/broker"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// The fault matrix of docs/reliability.md: each row runs the real bridge
// against the simulator and a real broker, and reports what it measured
// (go test -v -run TestFault ./bridge shows the figures).

func TestFaultTransientFaultsRecoverWithoutReauth(t *testing.T) {
	t.Parallel()
	rows := []struct{ name, control string }{
		{"dropped connections", "/_sim/outage?status=0&for=3s"},
		{"5xx storm", "/_sim/outage?status=503&for=3s"},
		{"HTML error pages", "/_sim/outage?status=502&for=3s"},
		{"responses past the client timeout", "/_sim/slow?for=3s&delay=3s"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{signedIn: true})
			states := e.topic("auth", "state")
			e.w.WaitValue(states, "ok", 10*time.Second)
			e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
			before, start := e.calls(), time.Now()
			e.simPost(row.control)
			e.w.WaitEvent(states, 10*time.Second, func(s string) bool { return s == "unavailable" })
			var d bridge.AuthInfo
			_ = json.Unmarshal([]byte(e.w.WaitFor(e.topic("auth", "detail"), 5*time.Second, func(s string) bool { return strings.Contains(s, "unavailable") })), &d)
			if d.RetryAt == nil || !strings.Contains(d.Reason, "retrying by itself") {
				t.Errorf("unavailable detail without a retry time or a plain reason: %+v", d)
			}
			e.w.WaitValue(states, "ok", 20*time.Second)
			took := time.Since(start)
			calls := e.calls() - before
			if slices.Contains(e.w.History(states), "reauth_required") {
				t.Fatalf("false reauth_required: %v", e.w.History(states))
			}
			if n := e.sim.Stats().Refreshes; n != 0 {
				t.Errorf("%d token refreshes for a fault that was not about the token", n)
			}
			// Backoff (0.1 s doubling to 1 s in tests): a 3 s fault may cost a
			// few dozen calls at most, never a tight loop.
			if calls > 40 {
				t.Errorf("%d Ford calls during a 3 s fault", calls)
			}
			t.Logf("%s: back to ok %.1f s after a 3 s fault; %d Ford calls; false reauth 0", row.name, took.Seconds(), calls)
		})
	}
}

func TestFaultRateLimitWaitsForRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	states := e.topic("auth", "state")
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.simPost("/_sim/ratelimit?for=4s")
	start := time.Now()
	e.w.WaitEvent(states, 10*time.Second, func(s string) bool { return s == "rate_limited" })
	var d bridge.AuthInfo
	_ = json.Unmarshal([]byte(e.w.WaitFor(e.topic("auth", "detail"), 5*time.Second, func(s string) bool { return strings.Contains(s, "rate_limited") })), &d)
	if d.RetryAt == nil {
		t.Fatal("rate_limited without retry_at")
	}
	// Commands are refused while limited, without calling Ford.
	e.w.Publish(e.topic(vin1, "command"), `{"command":"lock","id":"rl"}`, false)
	if r := e.result(vin1, "rl", "rejected", 5*time.Second); !strings.Contains(r.Error, "rate limited") && !strings.Contains(r.Error, "waiting until") {
		t.Fatalf("command during a rate limit: %+v", r)
	}
	e.w.WaitValue(states, "ok", 15*time.Second)
	// Every call Ford answered with its 429 counts: the one that met the
	// limit (and one already on its way), none while the bridge waited.
	if n := e.sim.Stats().RateLimited; n > 2 {
		t.Fatalf("%d calls answered 429: the bridge called Ford while it said to wait", n)
	}
	t.Logf("rate limit of 4 s: %d calls met it; ok again after %.1f s", e.sim.Stats().RateLimited, time.Since(start).Seconds())
}

func TestFaultDailyLockoutIsNotAReauth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, sim: fordsim.Options{DailyLimit: 6}})
	states := e.topic("auth", "state")
	e.w.WaitEvent(states, 30*time.Second, func(s string) bool { return s == "rate_limited" })
	var d bridge.AuthInfo
	_ = json.Unmarshal([]byte(e.w.WaitFor(e.topic("auth", "detail"), 5*time.Second, func(s string) bool { return strings.Contains(s, "rate_limited") })), &d)
	if d.RetryAt == nil || time.Until(*d.RetryAt) < 23*time.Hour {
		t.Fatalf("a locked account must wait for Ford's retry time (a day): %+v", d)
	}
	locked := e.calls()
	time.Sleep(2 * time.Second)
	if n := e.calls() - locked; n != 0 {
		t.Fatalf("%d calls to a locked account", n)
	}
	if slices.Contains(e.w.History(states), "reauth_required") {
		t.Fatal("a lockout was reported as reauth_required")
	}
}

func TestFaultTokenExpiresDuringCommandAndStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{CommandDelay: 1500 * time.Millisecond}})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.waitStream(vin1)
	e.w.Publish(e.topic(vin1, "command"), `{"command":"unlock","id":"exp-1"}`, false)
	e.result(vin1, "exp-1", "accepted", 5*time.Second)
	e.simPost("/_sim/expire") // mid-command, mid-stream
	e.result(vin1, "exp-1", "success", 15*time.Second)
	e.w.WaitValue(e.topic(vin1, "lock"), "unlocked", 5*time.Second)
	e.waitStream(vin1) // the stream came back with a fresh token
	e.patch(vin1, `{"metrics":{"odometer":{"value":4242.4}}}`)
	e.w.WaitValue(e.topic(vin1, "odometer"), "4242.4", 10*time.Second)
	if n := e.sim.Stats().Refreshes; n != 1 {
		t.Fatalf("%d refreshes, want exactly 1", n)
	}
	if h := e.w.History(e.topic("auth", "state")); slices.Contains(h, "reauth_required") {
		t.Fatalf("auth states %v", h)
	}
}

func TestFaultStreamClosesStallsOrSendsGarbage(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"close", "stall", "garbage"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{signedIn: true, stream: true})
			e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
			e.waitStream(vin1)
			e.simPost("/_sim/stream?mode=" + mode + "&for=6s")
			e.patch(vin1, `{"metrics":{"odometer":{"value":111.1}}}`) // lost by the faulty stream
			e.w.WaitValue(e.topic(vin1, "odometer"), "111.1", 15*time.Second)
			// After the fault the stream is open again and pushes again.
			time.Sleep(6 * time.Second)
			e.waitStream(vin1)
			e.patch(vin1, `{"metrics":{"odometer":{"value":222.2}}}`)
			e.w.WaitValue(e.topic(vin1, "odometer"), "222.2", 10*time.Second)
			if h := e.w.History(e.topic("auth", "state")); slices.Contains(h, "reauth_required") {
				t.Fatalf("auth states %v", h)
			}
			st := e.sim.Stats()
			t.Logf("stream %s for 6 s: %d stream opens, %d telemetry polls, %d calls in all", mode, st.Calls["stream"], st.Calls["telemetry"], e.calls())
		})
	}
}

func TestFaultCorruptOrForeignTokenFile(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"garbage":        "\x00\x01 not json",
		"truncated":      `{"access_token":"a","refresh_to`,
		"foreign region": `{"access_token":"a","refresh_token":"b","expiry":"2030-01-01T00:00:00Z","region":"deu"}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "token.json"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, envOptions{dir: dir})
			e.w.WaitValue(e.topic("auth", "state"), "reauth_required", 10*time.Second)
			detail := e.w.WaitFor(e.topic("auth", "detail"), 5*time.Second, func(s string) bool { return strings.Contains(s, "sign in again") })
			if !strings.Contains(detail, "damaged") && !strings.Contains(detail, "region") {
				t.Fatalf("reason does not say what is wrong: %s", detail)
			}
			if n := e.calls(); n != 0 {
				t.Fatalf("%d Ford calls with an unusable token", n)
			}
		})
	}
}

func TestFaultBrokerDownAtStartAndCommandsNotRunLate(t *testing.T) {
	t.Parallel()
	addr := bridgetest.FreeAddr(t)
	e := newEnvNoWatcher(t, "tcp://"+addr)
	time.Sleep(1500 * time.Millisecond) // the bridge retries against nothing
	var stop func()
	if s, ok := bridgetest.Mosquitto(t, addr); ok {
		stop = s
	} else {
		b, err := broker.Start(addr)
		if err != nil {
			t.Fatal(err)
		}
		stop = func() { _ = b.Close() }
	}
	defer stop()
	// A command sent before the bridge is connected (not retained): the
	// broker has nobody to give it to, and it must never run.
	early := bridgetest.Watch(t, "tcp://"+addr, e.p+"/#")
	early.Publish(e.topic(vin1, "command"), `{"command":"unlock","id":"early"}`, false)
	early.WaitValue(e.topic("bridge", "availability"), "online", 15*time.Second)
	early.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	if cmds := e.sim.Stats().Commands; len(cmds) != 0 {
		t.Fatalf("a command sent while the bridge was not connected ran: %+v", cmds)
	}
}

// newEnvNoWatcher starts a signed-in bridge against url without waiting for
// the broker (which may not exist yet).
func newEnvNoWatcher(t *testing.T, url string) *env {
	t.Helper()
	sim := fordsim.New(fordsim.Options{CommandDelay: 300 * time.Millisecond})
	srv := httptestServer(t, sim.Handler())
	t.Cleanup(sim.Close)
	region, _ := fordapi.LookupRegion("usa")
	dir := filepath.Join(t.TempDir(), "state")
	_ = fordapi.PrepareStateDir(dir)
	c, _ := fordapi.New(fordapi.Config{Region: region, BaseURL: srv, StateDir: dir, DailyBudget: 100000})
	t.Cleanup(func() { _ = c.Budget().Close() })
	e := &env{t: t, sim: sim, simURL: srv, client: c, p: "fpt" + bridgetest.Suffix()}
	if err := c.SignIn(context.Background(), e.redirect()); err != nil {
		t.Fatal(err)
	}
	e.cfg = config.Config{MQTTURL: url, MQTTClientID: "bridge-" + e.p, TopicPrefix: e.p, HADiscoveryPrefix: "ha" + e.p,
		Region: region, FordBaseURL: srv, PollInterval: time.Second, DailyBudget: 100000,
		CommandsAllowed: []string{"lock", "unlock"}, StateDir: dir}
	e.bridge = bridge.New(e.cfg, c, bridge.Options{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- e.bridge.Run(ctx) }()
	t.Cleanup(func() { e.stop() })
	return e
}

// TestFaultOddVINTopics: a command topic whose segment is not a VIN
// (P/auth/command, P/bridge/command, garbage) is ignored, never answered
// under the bridge's own topics; a VIN in lower case gets a hint.
func TestFaultOddVINTopics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	odd := []string{"..", "ÄÖÜ-ß", strings.Repeat("V", 300), " ", "auth", "bridge", "1FTEW1EP00000000I"}
	for i, vin := range odd {
		e.w.Publish(e.topic(vin, "command"), `{"command":"lock","id":"odd-`+string(rune('a'+i))+`"}`, false)
	}
	e.w.Publish(e.topic("1ftew1ep000000001", "command"), `{"command":"lock","id":"lower"}`, false)
	e.w.WaitEvent(e.topic("1ftew1ep000000001", "command", "result"), 5*time.Second, func(s string) bool {
		return strings.Contains(s, "lower") && strings.Contains(s, "VINs are upper case in topics: publish to "+e.topic(vin1, "command"))
	})
	time.Sleep(300 * time.Millisecond) // the odd ones were published first: any answer would be here
	for _, vin := range odd {
		if h := e.w.History(e.topic(vin, "command", "result")); len(h) != 0 {
			t.Errorf("%s: answered %q; a topic that is not a car's must be ignored", e.topic(vin, "command"), h)
		}
		// The bridge clears only its own command topics.
		if h := e.w.History(e.topic(vin, "command")); len(h) != 1 {
			t.Errorf("%s: %q; the bridge must not write to topics it does not own", e.topic(vin, "command"), h)
		}
	}
	if h := e.w.History(e.topic("1ftew1ep000000001", "command")); len(h) != 1 {
		t.Errorf("the lower-case topic was written to: %q", h)
	}
	if n := len(e.sim.Stats().Commands); n != 0 {
		t.Fatalf("%d commands reached Ford", n)
	}
}

// TestLooseTokenModeIsFixedAtStart: a token file others can read is made
// private when the bridge starts, and the log says so.
func TestLooseTokenModeIsFixedAtStart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	if err := fordapi.PrepareStateDir(dir); err != nil {
		t.Fatal(err)
	}
	region, _ := fordapi.LookupRegion("usa")
	tok := filepath.Join(dir, "token.json")
	if err := fordapi.NewTokenStore(dir, region.Key).Save(&fordapi.Token{Token: &oauth2.Token{AccessToken: "a-secret", RefreshToken: "r-secret",
		Expiry: time.Now().Add(time.Hour)}, RefreshExpiry: time.Now().Add(24 * time.Hour)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tok, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{dir: dir})
	deadline := time.Now().Add(5 * time.Second)
	for len(e.logs.FilterMessageSnippet("made them private").All()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no warning about the token file's mode")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fi, err := os.Stat(tok); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, %v", fi.Mode(), err)
	}
}
