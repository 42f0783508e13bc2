package fordapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

type fixture struct {
	sim    *fordsim.Sim
	srv    *httptest.Server
	client *fordapi.Client
	dir    string
}

func newFixture(t *testing.T, o fordsim.Options, budget int) *fixture {
	t.Helper()
	if o.CommandDelay == 0 {
		o.CommandDelay = 200 * time.Millisecond
	}
	sim := fordsim.New(o)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	f := &fixture{sim: sim, srv: srv, dir: t.TempDir()}
	f.client = f.newClient(t, budget)
	return f
}

func (f *fixture) newClient(t *testing.T, budget int) *fordapi.Client {
	t.Helper()
	region, _ := fordapi.LookupRegion("usa")
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: f.srv.URL, StateDir: f.dir, DailyBudget: budget,
		HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	return c
}

// redirectFor follows the login URL like a browser whose user signs in at
// once, and returns the fordapp:// redirect.
func redirectFor(t *testing.T, c *fordapi.Client) string {
	t.Helper()
	u, err := c.LoginURL()
	if err != nil {
		t.Fatal(err)
	}
	redirect, err := fordsim.FollowLogin(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return redirect
}

func (f *fixture) signIn(t *testing.T) {
	t.Helper()
	if err := f.client.SignIn(context.Background(), redirectFor(t, f.client)); err != nil {
		t.Fatalf("sign in: %v", err)
	}
}

func TestSignInVehiclesTelemetryCommand(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{Vehicles: 2}, 0)
	ctx := context.Background()
	if _, err := f.client.Vehicles(ctx); !errors.Is(err, fordapi.ErrReauthRequired) {
		t.Fatalf("before sign-in: got %v, want ErrReauthRequired", err)
	}
	f.signIn(t)
	st, err := os.Stat(f.client.TokenPath())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v", err, st.Mode())
	}
	vs, err := f.client.Vehicles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].VIN != fordsim.VIN(1) || vs[0].EV || !vs[1].EV || vs[1].Nickname == "" || !vs[0].Can.Has(fordapi.CapRemoteStart) {
		t.Fatalf("vehicles: %+v", vs)
	}
	tel, err := f.client.Telemetry(ctx, vs[0].VIN)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"odometer", "fuel_level", "fuel_range", "battery_12v_voltage", "lock", "ignition", "remote_start",
		"alarm", "door_driver", "door_tailgate", "window_driver", "tire_pressure_front_left", "door_hood"} {
		if _, ok := tel.Field(k); !ok {
			t.Errorf("field %s missing from %v", k, tel.Fields)
		}
	}
	if tel.Get("lock").String() != "locked" || tel.Location == nil || tel.UpdatedAt.IsZero() {
		t.Fatalf("telemetry: %+v", tel)
	}
	id, err := f.client.SendCommand(ctx, vs[0].VIN, fordapi.CmdUnlock, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := f.client.WaitCommand(wctx, vs[0].VIN, fordapi.CmdUnlock, id, nil, nil); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	tel, _ = f.client.Telemetry(ctx, vs[0].VIN)
	if got := tel.Get("lock").String(); got != "unlocked" {
		t.Fatalf("lock after unlock = %q", got)
	}
	if n := len(f.sim.Stats().Commands); n != 1 {
		t.Fatalf("simulator saw %d commands", n)
	}
}

func TestCommandFailureIsReported(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{FailCommands: true}, 0)
	f.signIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vin := fordsim.VIN(1)
	id, err := f.client.SendCommand(ctx, vin, fordapi.CmdLock, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.client.WaitCommand(ctx, vin, fordapi.CmdLock, id, nil, nil)
	var ce *fordapi.CommandError
	if !errors.As(err, &ce) || ce.State != "command_failed_on_device" || !strings.Contains(ce.Detail, "SIM-1") {
		t.Fatalf("got %v", err)
	}
}

func TestWrongCodeKeepsPreviousToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 0)
	f.signIn(t)
	before, _ := os.ReadFile(f.client.TokenPath())
	err := f.client.SignIn(context.Background(), "fordapp://userauthorized/?code=not-a-real-code-but-long-enough-to-be-tried")
	if !errors.Is(err, fordapi.ErrInvalidCode) {
		t.Fatalf("got %v, want ErrInvalidCode", err)
	}
	after, _ := os.ReadFile(f.client.TokenPath())
	if string(before) != string(after) {
		t.Fatal("a rejected code changed the token file")
	}
	if _, err := f.client.Vehicles(context.Background()); err != nil {
		t.Fatalf("previous sign-in no longer works: %v", err)
	}
}

func TestPendingSignInSurvivesRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 0)
	redirect := redirectFor(t, f.client)
	restarted := f.newClient(t, 0) // a new process, same state directory
	if err := restarted.SignIn(context.Background(), redirect); err != nil {
		t.Fatalf("sign-in after restart: %v", err)
	}
}

func TestDeadRefreshTokenStopsCalling(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 0)
	f.signIn(t)
	f.sim.Revoke()
	f.sim.Expire()
	ctx := context.Background()
	_, err := f.client.Telemetry(ctx, fordsim.VIN(1))
	if !errors.Is(err, fordapi.ErrReauthRequired) || fordapi.IsTransient(err) {
		t.Fatalf("got %v, want ErrReauthRequired", err)
	}
	before := f.sim.Stats()
	if before.Refreshes != 1 {
		t.Fatalf("refresh attempts = %d, want exactly 1", before.Refreshes)
	}
	for range 5 {
		if _, err := f.client.Telemetry(ctx, fordsim.VIN(1)); !errors.Is(err, fordapi.ErrReauthRequired) {
			t.Fatalf("got %v", err)
		}
	}
	if after := f.sim.Stats(); after.CallsTotal != before.CallsTotal {
		t.Fatalf("%d calls made after the refresh token died", after.CallsTotal-before.CallsTotal)
	}
	f.signIn(t) // a new code restores service without a new client
	if _, err := f.client.Telemetry(ctx, fordsim.VIN(1)); err != nil {
		t.Fatalf("after new sign-in: %v", err)
	}
}

func TestOneRefreshForManyCallers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 100000)
	f.signIn(t)
	if _, err := f.client.Telemetry(context.Background(), fordsim.VIN(1)); err != nil {
		t.Fatal(err)
	}
	f.sim.Expire()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			if _, err := f.client.Telemetry(context.Background(), fordsim.VIN(1)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.sim.Stats().Refreshes; n != 1 {
		t.Fatalf("simulator counted %d refreshes, want 1", n)
	}
	// The rotated token was saved: a fresh process uses it without signing in.
	if _, err := f.newClient(t, 100000).Vehicles(context.Background()); err != nil {
		t.Fatalf("saved token unusable: %v", err)
	}
}

func TestSimulatorFaultsAreClassified(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 0)
	f.signIn(t)
	ctx := context.Background()
	vin := fordsim.VIN(1)

	f.sim.Outage(503, time.Minute)
	_, err := f.client.Telemetry(ctx, vin)
	var se *fordapi.StatusError
	if !errors.As(err, &se) || se.Status != 503 || !fordapi.IsTransient(err) {
		t.Fatalf("503 outage: got %v", err)
	}
	f.sim.Outage(0, time.Minute)
	if _, err = f.client.Telemetry(ctx, vin); !fordapi.IsTransient(err) || errors.Is(err, fordapi.ErrReauthRequired) {
		t.Fatalf("dropped connections: got %v", err)
	}
	f.sim.Outage(503, 0)

	resp, _ := http.Post(f.srv.URL+"/_sim/ratelimit?for=90s", "", nil)
	resp.Body.Close()
	_, err = f.client.Telemetry(ctx, vin)
	var rl *fordapi.RateLimitError
	if !errors.As(err, &rl) || time.Until(rl.RetryAt) < 80*time.Second {
		t.Fatalf("rate limit: got %v", err)
	}
	resp, _ = http.Post(f.srv.URL+"/_sim/ratelimit?for=0s", "", nil)
	resp.Body.Close()

	if _, err = f.client.Telemetry(ctx, "1FTEW1EP999999999"); !errors.Is(err, fordapi.ErrVehicleNotAuthorized) {
		t.Fatalf("foreign VIN: got %v", err)
	}
	if _, err = f.client.Telemetry(ctx, vin); err != nil {
		t.Fatalf("after faults: %v", err)
	}
}

func TestBudgetRefusesLocallyAndSurvivesRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 10) // sign-in 6, commands 2, telemetry 2 (1 an hour)
	f.signIn(t)                               // 2 calls, from the sign-in share
	ctx := context.Background()
	if _, err := f.client.Telemetry(ctx, fordsim.VIN(1)); err != nil { // a token exchange (own class) and the GET
		t.Fatal(err)
	}
	_, err := f.client.Telemetry(ctx, fordsim.VIN(1))
	var be *fordapi.BudgetError
	if !errors.As(err, &be) || !be.Paced || be.Class != fordapi.ClassTelemetry || fordapi.IsTransient(err) {
		t.Fatalf("got %v, want a paced telemetry BudgetError", err)
	}
	if strings.Contains(err.Error(), "rate limited by Ford") || !strings.Contains(err.Error(), "refused locally") {
		t.Fatalf("a local refusal must say so, not blame Ford: %v", err)
	}
	st := f.sim.Stats()
	calls := st.CallsTotal - st.Calls["b2c_authorize"] // the browser's call, not ours
	counted := func(c *fordapi.Client) int { return c.Budget().Used() + c.Budget().UsedBy(fordapi.ClassToken) }
	// A crash right now: the first call of the burst is on disk already.
	if crashed := counted(f.newClient(t, 10)); crashed < 1 {
		t.Fatalf("after a crash the budget counts %d calls", crashed)
	}
	if err := f.client.Budget().Close(); err != nil { // a clean shutdown
		t.Fatal(err)
	}
	restarted := f.newClient(t, 10)
	if used := counted(restarted); used != calls {
		t.Fatalf("budget after restart counts %d calls, simulator saw %d", used, calls)
	}
	for range 20 { // commands may use their share, never more
		_, _ = restarted.SendCommand(ctx, fordsim.VIN(1), fordapi.CmdLock, "", nil)
	}
	if st := f.sim.Stats(); st.Calls["command"] != 2 {
		t.Fatalf("simulator counted %d commands with a command share of 2", st.Calls["command"])
	}
	if used := restarted.Budget().Used(); used > 10 {
		t.Fatalf("%d calls under a ceiling of 10", used)
	}
}

func TestStreamMergesDeltasAndRotatesToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{AutonomicTTL: 2 * time.Second, Heartbeat: 200 * time.Millisecond}, 100000)
	f.signIn(t)
	vin := fordsim.VIN(1)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	updates := make(chan *fordapi.Telemetry, 16)
	done := make(chan error, 1)
	go func() {
		done <- f.client.Stream(ctx, vin, fordapi.StreamOptions{TokenCheck: 100 * time.Millisecond},
			func(t *fordapi.Telemetry) { updates <- t })
	}()
	select { // the socket's first frame is the car's whole record
	case tel := <-updates:
		if tel.Get("lock").String() != "locked" || tel.Get("odometer").String() == "" {
			t.Fatalf("first frame is not the whole record: %v", tel.Fields)
		}
	case <-ctx.Done():
		t.Fatal("no record over the stream")
	}
	time.Sleep(3 * time.Second) // longer than one Autonomic token lives
	if err := f.sim.Patch(vin, map[string]any{"metrics": map[string]any{"odometer": map[string]any{"value": 20000.5}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case tel := <-updates:
		if got := tel.Get("odometer").String(); got != "20000.5" {
			t.Fatalf("odometer = %s", got)
		}
		if tel.Get("lock").String() != "locked" {
			t.Fatal("delta merge lost the rest of the record")
		}
	case err := <-done:
		t.Fatalf("stream ended: %v", err)
	case <-ctx.Done():
		t.Fatal("no update over the stream")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stream returned %v on cancel", err)
	}
}

// A socket held by one goroutine still ends with the cause a caller acts
// on: a silent socket is stalled (transient, the bridge polls), and a token
// that cannot be renewed any more is a re-authorization, found by the
// renewal timer while the reader waits.
func TestStreamEndsWithItsCause(t *testing.T) {
	t.Parallel()
	t.Run("stalled", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, fordsim.Options{Heartbeat: time.Hour}, 100000)
		f.signIn(t)
		resp, err := http.Post(f.srv.URL+"/_sim/stream?mode=stall&for=10s", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		err = f.client.Stream(context.Background(), fordsim.VIN(1), fordapi.StreamOptions{StallAfter: 300 * time.Millisecond}, func(*fordapi.Telemetry) {})
		if !errors.Is(err, fordapi.ErrStreamStalled) || !fordapi.IsTransient(err) {
			t.Fatalf("a silent socket ended with %v, want the transient ErrStreamStalled", err)
		}
	})
	t.Run("renewal refused", func(t *testing.T) {
		t.Parallel()
		// The Autonomic token is renewed before its 2 s are up; by then
		// the FordPass token has expired and its refresh token is dead.
		f := newFixture(t, fordsim.Options{Heartbeat: time.Hour, AccessTTL: time.Second, AutonomicTTL: 2 * time.Second}, 100000)
		f.signIn(t)
		done := make(chan error, 1)
		go func() {
			done <- f.client.Stream(context.Background(), fordsim.VIN(1), fordapi.StreamOptions{TokenCheck: 50 * time.Millisecond},
				func(*fordapi.Telemetry) {})
		}()
		waitUntil(t, func() bool { return f.sim.Streams(fordsim.VIN(1)) > 0 })
		f.sim.Revoke()
		select {
		case err := <-done:
			if !errors.Is(err, fordapi.ErrReauthRequired) || !strings.Contains(err.Error(), "renewing the stream's token") {
				t.Fatalf("stream ended with %v, want a re-authorization from the renewal", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the stream outlived its token")
		}
	})
}

func TestCorruptTokenFileNeedsReauth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 0)
	for _, content := range []string{"{not json", `{"access_token":"x"}`, ""} {
		if err := os.WriteFile(filepath.Join(f.dir, "token.json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		st := f.newClient(t, 0).Status()
		if st.SignedIn || !strings.Contains(st.Reason, "sign in again") {
			t.Fatalf("content %q: status %+v", content, st)
		}
	}
}

// TestTokenFromAnotherProcessIsAdopted: `fordpass2mqtt login` (or doctor
// --live) run beside a running bridge writes the token file; the bridge must
// use the new token rather than refresh with a rotated-away one.
func TestTokenFromAnotherProcessIsAdopted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 0)
	if st := f.client.Status(); st.SignedIn {
		t.Fatal("signed in without a token")
	}
	other := f.newClient(t, 0)
	if err := other.SignIn(context.Background(), redirectFor(t, other)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if st := f.client.Status(); !st.SignedIn {
		t.Fatalf("the running client did not notice the new token: %+v", st)
	}
	// The other process refreshes (rotating the refresh token) ...
	f.sim.Expire()
	if _, err := other.Vehicles(context.Background()); err != nil {
		t.Fatal(err)
	}
	// ... and the running one goes on with the rotated token, not a dead one.
	if _, err := f.client.Vehicles(context.Background()); err != nil {
		t.Fatalf("after another process refreshed: %v", err)
	}
	if n := f.sim.Stats().Refreshes; n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
}

// TestCommandWhoseStatusCheckIsRefusedIsOutcomeUnknown: Ford accepted the
// command; only the status check after it was refused by the budget, so
// the outcome is unknown, not a failure.
func TestCommandWhoseStatusCheckIsRefusedIsOutcomeUnknown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 10) // a command share of 2
	f.signIn(t)
	ctx := context.Background()
	vin := fordsim.VIN(1)
	if _, err := f.client.SendCommand(ctx, vin, fordapi.CmdLock, "", nil); err != nil {
		t.Fatal(err)
	}
	id, err := f.client.SendCommand(ctx, vin, fordapi.CmdUnlock, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.client.WaitCommand(ctx, vin, fordapi.CmdUnlock, id, nil, nil)
	if !errors.Is(err, fordapi.ErrOutcomeUnknown) || !errors.Is(err, fordapi.ErrBudgetExhausted) {
		t.Fatalf("got %v, want outcome unknown because the budget refused the check", err)
	}
}

func (f *fixture) simControl(t *testing.T, path string) {
	t.Helper()
	resp, err := http.Post(f.srv.URL+path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("%s: %d", path, resp.StatusCode)
	}
}

// TestAutonomicExchangeFollowsFordToTheRefreshToken: when Ford stops
// accepting the access token as the exchange's subject, the client tries
// the refresh token once, remembers it (across restarts), and the next
// exchanges cost one call each again.
func TestAutonomicExchangeFollowsFordToTheRefreshToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 0)
	f.signIn(t)
	f.simControl(t, "/_sim/protocol?autonomic_subject=refresh")
	ctx := context.Background()
	if _, err := f.client.Telemetry(ctx, fordsim.VIN(1)); err != nil {
		t.Fatalf("after Ford's change: %v", err)
	}
	if p := f.client.Protocol(); p.AutonomicSubject != fordapi.SubjectRefresh {
		t.Fatalf("protocol %+v, want the refresh token remembered", p)
	}
	if n := f.sim.Stats().Calls["autonomic_token"]; n != 2 {
		t.Fatalf("%d exchanges for the first token after the change, want 2 (refused, then the refresh token)", n)
	}
	restarted := f.newClient(t, 0)
	if p := restarted.Protocol(); p.AutonomicSubject != fordapi.SubjectRefresh {
		t.Fatalf("after a restart: %+v", p)
	}
	if _, err := restarted.Telemetry(ctx, fordsim.VIN(1)); err != nil {
		t.Fatal(err)
	}
	if n := f.sim.Stats().Calls["autonomic_token"]; n != 3 {
		t.Fatalf("%d exchanges; the remembered subject must work at the first try", n)
	}
	// And back, should Ford return to the access token.
	f.simControl(t, "/_sim/protocol?autonomic_subject=access")
	f.simControl(t, "/_sim/expire")
	if _, err := restarted.Telemetry(ctx, fordsim.VIN(1)); err != nil {
		t.Fatalf("after Ford changed back: %v", err)
	}
	if p := restarted.Protocol(); p.AutonomicSubject != fordapi.SubjectAccess {
		t.Fatalf("protocol %+v, want the access token again", p)
	}
}

// TestVehicleListFollowsFordToTheGarage: expdashboard answering 404 makes
// the client list vehicles from the user garage (and remember it), and the
// other way round.
func TestVehicleListFollowsFordToTheGarage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{Vehicles: 2}, 0)
	f.signIn(t)
	ctx := context.Background()
	f.simControl(t, "/_sim/protocol?vehicle_list=garage")
	vs, err := f.client.Vehicles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].VIN != fordsim.VIN(1) || vs[0].Model != "F-150" || vs[1].Nickname != "Mach-E 2" || !vs[1].EV || !vs[0].Can.Has(fordapi.CapRemoteStart) {
		t.Fatalf("vehicles from the garage: %+v", vs)
	}
	if p := f.client.Protocol(); p.VehicleList != fordapi.ListGarage {
		t.Fatalf("protocol %+v", p)
	}
	before := f.sim.Stats().Calls
	if _, err := f.client.Vehicles(ctx); err != nil {
		t.Fatal(err)
	}
	after := f.sim.Stats().Calls
	if after["vehicle_list"] != before["vehicle_list"] || after["garage"] != before["garage"]+1 {
		t.Fatalf("the remembered list must be asked first: %v → %v", before, after)
	}
	f.simControl(t, "/_sim/protocol?vehicle_list=expdashboard")
	if vs, err := f.client.Vehicles(ctx); err != nil || len(vs) != 2 {
		t.Fatalf("back to expdashboard: %v, %v", vs, err)
	}
	if p := f.client.Protocol(); p.VehicleList != fordapi.ListDashboard {
		t.Fatalf("protocol %+v", p)
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRefusedRefreshHealsByItself: Ford refuses every renewal for a while
// (460, as if the sign-in were dead) during an outage of its own. The
// client says a sign-in is needed at once and makes no other call, but
// keeps the refresh token and tries it again on the schedule (one renewal,
// in the sign-in share); once Ford recovers it is signed in again with no
// new sign-in. A new sign-in made meanwhile wins.
func TestRefusedRefreshHealsByItself(t *testing.T) {
	t.Parallel()
	var off atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(off.Load())) }
	f := newFixture(t, fordsim.Options{Now: now}, 0)
	region, _ := fordapi.LookupRegion("usa")
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: f.srv.URL, StateDir: f.dir, Now: now,
		HTTPClient: &http.Client{Timeout: 5 * time.Second}, HealSchedule: []time.Duration{10 * time.Minute, time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	f.client = c
	f.signIn(t)
	ctx := context.Background()
	f.sim.AuthOutage("fordpass", 30*time.Minute)
	f.sim.Expire()
	if _, err := c.Telemetry(ctx, fordsim.VIN(1)); !errors.Is(err, fordapi.ErrReauthRequired) || !strings.Contains(err.Error(), "by itself") {
		t.Fatalf("a renewal refused in Ford's outage: %v", err)
	}
	if tried, _ := c.RetryRefused(ctx); tried || c.Status().SignedIn {
		t.Fatal("tried again before its time, or signed in")
	}
	calls := f.sim.Stats().CallsTotal
	off.Add(int64(11 * time.Minute)) // Ford still refuses
	if tried, healed := c.RetryRefused(ctx); !tried || healed {
		t.Fatalf("the first try again: tried %v healed %v", tried, healed)
	}
	if n := f.sim.Stats().CallsTotal - calls; n != 1 {
		t.Fatalf("the try again made %d calls", n)
	}
	off.Add(int64(61 * time.Minute)) // Ford recovered
	if tried, healed := c.RetryRefused(ctx); !tried || !healed || !c.Status().SignedIn {
		t.Fatalf("after the outage: tried %v healed %v", tried, healed)
	}
	if _, err := c.Telemetry(ctx, fordsim.VIN(1)); err != nil {
		t.Fatalf("a read after healing: %v", err)
	}
	// Refused again, then a new sign-in: nothing is tried again after it.
	f.sim.AuthOutage("fordpass", 30*time.Minute)
	f.sim.Expire()
	_, _ = c.Telemetry(ctx, fordsim.VIN(1))
	f.sim.AuthOutage("fordpass", 0)
	f.signIn(t)
	off.Add(int64(11 * time.Minute))
	if tried, _ := c.RetryRefused(ctx); tried {
		t.Fatal("the refused token was tried again after a new sign-in")
	}
}
