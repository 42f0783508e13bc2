package fordapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// fakeClock is shared by the simulator and the client, so two simulated
// days pass in a second of real time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// signedInDay is a simulator and a signed-in client that share a fake
// clock, so simulated days pass in a fraction of a second.
func signedInDay(t *testing.T, o fordsim.Options) (*fakeClock, *fordsim.Sim, *fordapi.Client) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}
	o.Now = clock.Now
	sim := fordsim.New(o)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	region, _ := fordapi.LookupRegion("usa")
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: srv.URL, StateDir: t.TempDir(), DailyBudget: 250,
		Now: clock.Now, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	if err := c.SignIn(context.Background(), redirectFor(t, c)); err != nil {
		t.Fatal(err)
	}
	return clock, sim, c
}

// TestBudgetHoldsOverTwoSimulatedDays polls as greedily as a caller can
// (every simulated minute) and sends a command every three hours, against a
// simulator that locks the account past 250 calls in 24 h, as Ford does.
// The budget must keep every rolling day under the limit, keep room for
// every command, and still deliver telemetry all day long.
func TestBudgetHoldsOverTwoSimulatedDays(t *testing.T) {
	t.Parallel()
	clock, sim, c := signedInDay(t, fordsim.Options{DailyLimit: 250})
	ctx := context.Background()
	vin := fordsim.VIN(1)
	var polls, paced, commandsOK, commandsRefused, limited int
	pollsPerHour := map[int]int{}
	for minute := 1; minute <= 2*24*60; minute++ {
		clock.Add(time.Minute)
		_, err := c.Telemetry(ctx, vin)
		var be *fordapi.BudgetError
		switch {
		case err == nil:
			polls++
			pollsPerHour[minute/60]++
		case errors.As(err, &be) && be.Paced:
			paced++
		case errors.Is(err, fordapi.ErrRateLimited):
			limited++
		case errors.Is(err, fordapi.ErrBudgetExhausted):
			paced++
		default:
			t.Fatalf("minute %d: %v", minute, err)
		}
		if minute%180 == 0 {
			if _, err := c.SendCommand(ctx, vin, fordapi.CmdLock, "", nil); err != nil {
				if errors.Is(err, fordapi.ErrRateLimited) {
					limited++
				}
				commandsRefused++
			} else {
				commandsOK++
			}
		}
	}
	st := sim.Stats()
	t.Logf("2 simulated days: %d telemetry fetches (%.0f/day), %d refused locally to keep the pace, %d/%d commands sent, %d token refreshes, %d Ford calls in all (%.0f/day); Ford 429s: %d",
		polls, float64(polls)/2, paced, commandsOK, commandsOK+commandsRefused, st.Refreshes, st.CallsTotal-st.Calls["b2c_authorize"],
		float64(st.CallsTotal-st.Calls["b2c_authorize"])/2, limited)
	if limited != 0 {
		t.Fatalf("the simulator locked the account %d times: the budget let more than 250 calls through in 24 h", limited)
	}
	if commandsRefused != 0 {
		t.Fatalf("%d commands refused: the reserve must keep room for them", commandsRefused)
	}
	for h := 0; h < 48; h++ {
		if pollsPerHour[h] == 0 {
			t.Fatalf("no telemetry in hour %d: the budget must be spread over the day, not spent in the morning", h)
		}
	}
}

func TestBudgetShares(t *testing.T) {
	t.Parallel()
	b, err := fordapi.NewBudget("", 250, nil)
	if err != nil {
		t.Fatal(err)
	}
	type share struct{ day, hour int }
	want := map[fordapi.Class]share{
		fordapi.ClassTelemetry: {175, 7}, fordapi.ClassCommand: {50, 16}, fordapi.ClassSignIn: {25, 25},
		fordapi.ClassToken: {fordapi.TokenDaily, fordapi.TokenHourly},
	}
	sum := 0
	for k, w := range want {
		if got := (share{b.Share(k), b.Hourly(k)}); got != w {
			t.Errorf("%s: share %d a day, %d an hour; want %d, %d", k, got.day, got.hour, w.day, w.hour)
		}
		if k != fordapi.ClassToken {
			sum += b.Share(k)
		}
	}
	if sum != b.Limit() {
		t.Errorf("the shares under the ceiling add up to %d, not %d", sum, b.Limit())
	}
	if got := b.PollEvery(1); got != 24*time.Hour/151 { // 175 less 24 for token refreshes and lists
		t.Fatalf("one car polls every %s, want %s", got, 24*time.Hour/151)
	}
	if got := b.PollEvery(9); got != 9*24*time.Hour/151 {
		t.Fatalf("nine cars poll every %s", got)
	}
}

// TestStreamRunsAllDayWithinTheModel keeps one car's stream open for a
// simulated day on the default budget, against a simulator that locks the
// account past 250 calls in 24 h. The stream renews its Autonomic token
// about every 4.5 minutes; those renewals have their own allowance, so the
// stream never pauses and never reopens.
func TestStreamRunsAllDayWithinTheModel(t *testing.T) {
	t.Parallel()
	clock, sim, c := signedInDay(t, fordsim.Options{DailyLimit: 250, Heartbeat: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Stream(ctx, fordsim.VIN(1), fordapi.StreamOptions{TokenCheck: time.Millisecond, StallAfter: 5 * time.Second},
			func(*fordapi.Telemetry) {})
	}()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			select {
			case err := <-done:
				t.Fatalf("at %s the stream ended: %v", clock.Now().Format("15:04"), err)
			default:
			}
			if time.Now().After(deadline) {
				st := sim.Stats()
				t.Fatalf("at %s: %s did not happen (Ford calls %v; budget: telemetry %d, token %d)", clock.Now().Format("15:04"), what,
					st.Calls, c.Budget().UsedBy(fordapi.ClassTelemetry), c.Budget().UsedBy(fordapi.ClassToken))
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("the stream opening", func() bool { return sim.Streams(fordsim.VIN(1)) == 1 })
	expiry, accepted := c.AutonomicExpiry(), 0
	end := clock.Now().Add(24 * time.Hour)
	for clock.Now().Before(end) {
		clock.Add(15 * time.Second)
		if !clock.Now().Add(45 * time.Second).Before(expiry) { // the stream renews 45 s before the end
			// Renewed, and the socket has the new token: the simulator
			// checks it against its clock, which the loop moves on.
			waitFor("the token renewal", func() bool {
				return c.AutonomicExpiry().After(expiry) && sim.Stats().StreamTokens > accepted
			})
			expiry, accepted = c.AutonomicExpiry(), sim.Stats().StreamTokens
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the stream ended with %v", err)
	}
	st := sim.Stats()
	under := c.Budget().Used()
	t.Logf("one simulated day of streaming: 1 socket, %d token renewals, %d FordPass token refreshes, %d calls under the 250 ceiling",
		st.Calls["autonomic_token"], st.Refreshes, under)
	if st.Calls["stream"] != 1 {
		t.Fatalf("the stream was opened %d times in the day; it must never pause", st.Calls["stream"])
	}
	if st.Calls["autonomic_token"] < 300 || st.Calls["autonomic_token"] > fordapi.TokenDaily {
		t.Fatalf("%d token renewals in a day", st.Calls["autonomic_token"])
	}
	if under > 60 {
		t.Fatalf("%d calls under the ceiling for a day of streaming", under)
	}
}

// TestClassesCannotStarveEachOther runs a greedy poller, a looping command
// flow and a sign-in flood in the same simulated day. Each spends its own
// share and nothing else: telemetry arrives every hour, commands stop at
// their share, the flood costs a few exchanges and a real sign-in right
// after it works, and Ford never locks the account.
func TestClassesCannotStarveEachOther(t *testing.T) {
	t.Parallel()
	clock, sim, c := signedInDay(t, fordsim.Options{DailyLimit: 250, CommandDelay: time.Millisecond})
	ctx := context.Background()
	vin := fordsim.VIN(1)
	pollsPerHour := map[int]int{}
	var commands, limited, floodCalls int
	end := clock.Now().Add(24 * time.Hour)
	for minute := 1; clock.Now().Add(time.Minute).Before(end); minute++ {
		clock.Add(time.Minute)
		if _, err := c.Telemetry(ctx, vin); err == nil {
			pollsPerHour[minute/60]++
		} else if errors.Is(err, fordapi.ErrRateLimited) {
			limited++
		}
		if _, err := c.SendCommand(ctx, vin, fordapi.CmdLock, "", nil); err == nil {
			commands++
		} else if errors.Is(err, fordapi.ErrRateLimited) {
			limited++
		}
		if minute == 12*60 {
			before := sim.Stats().Calls["b2c_token"]
			for i := range 60 {
				_ = c.SignIn(ctx, "fordapp://userauthorized/?code=eyJib2d1cyJ9."+strings.Repeat("x", 40)+strconv.Itoa(i))
				clock.Add(time.Second)
			}
			floodCalls = sim.Stats().Calls["b2c_token"] - before
			real := redirectFor(t, c)
			var err error
			for range 60 { // the user pastes the real code and it goes through within a minute
				if err = c.SignIn(ctx, real); !errors.As(err, new(*fordapi.SignInThrottleError)) {
					break
				}
				clock.Add(time.Second)
			}
			if err != nil {
				t.Fatalf("the real code after the flood: %v", err)
			}
		}
	}
	t.Logf("a day of greedy polling, a command every minute and a 60-code flood: %d commands sent, flood cost %d exchanges, %d calls under the ceiling, Ford 429s: %d",
		commands, floodCalls, c.Budget().Used(), limited)
	if limited != 0 {
		t.Fatalf("Ford locked the account %d times", limited)
	}
	if commands != c.Budget().Share(fordapi.ClassCommand) {
		t.Fatalf("%d commands sent; the command share is %d", commands, c.Budget().Share(fordapi.ClassCommand))
	}
	if floodCalls > 10 {
		t.Fatalf("60 bogus codes cost %d exchanges", floodCalls)
	}
	for h := range 24 {
		if pollsPerHour[h] == 0 {
			t.Fatalf("no telemetry in hour %d", h)
		}
	}
}

// TestDamagedBudgetFileFailsSafe: an unreadable count must not hand out a
// fresh day; the budget assumes this hour's share is spent and says so.
func TestDamagedBudgetFileFailsSafe(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "calls.json")
	if err := os.WriteFile(path, []byte(`{"classes":{"telemetry":[1,2,`), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	b, err := fordapi.NewBudget(path, 250, func() time.Time { return now })
	if b == nil || err == nil || !strings.Contains(err.Error(), "damaged") || !b.Damaged() {
		t.Fatalf("budget %v, error %v", b, err)
	}
	for _, k := range []fordapi.Class{fordapi.ClassTelemetry, fordapi.ClassCommand, fordapi.ClassToken} {
		if at := b.NextAllowed(k); !at.Equal(now.Add(time.Hour)) {
			t.Errorf("%s: next call allowed at %s, want an hour on", k, at)
		}
	}
}

// TestBudgetFileOfTheOldFormatIsCounted: a calls.json written before the
// classes existed still counts (as telemetry) after an upgrade.
func TestBudgetFileOfTheOldFormatIsCounted(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "calls.json")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	old := fmt.Sprintf(`{"calls":[%d,%d,%d]}`, now.Add(-time.Minute).UnixMilli(), now.Add(-2*time.Minute).UnixMilli(), now.Add(-25*time.Hour).UnixMilli())
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := fordapi.NewBudget(path, 250, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if b.UsedBy(fordapi.ClassTelemetry) != 2 || b.Used() != 2 {
		t.Fatalf("telemetry %d, all %d; want the 2 calls of the last 24 h", b.UsedBy(fordapi.ClassTelemetry), b.Used())
	}
}

// TestClosedBudgetWritesNothingLater: a burst's last calls are written a
// second later; Close writes them at once and leaves nothing to write after
// it returns, so a shutdown keeps every call and a removed state directory
// is never written into again.
func TestClosedBudgetWritesNothingLater(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "calls.json")
	b, err := fordapi.NewBudget(path, 250, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 { // the first is written at once, the other four are scheduled
		if err := b.Take(fordapi.ClassTelemetry); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := fordapi.NewBudget(path, 250, nil)
	if err != nil || again.Used() != 5 {
		t.Fatalf("after Close the file holds %d calls (%v); want all 5", again.Used(), err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // past the scheduled write
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the budget was written after Close: %v", err)
	}
	if err := b.Take(fordapi.ClassTelemetry); err != nil {
		t.Fatal(err)
	}
	if again, _ := fordapi.NewBudget(path, 250, nil); again.Used() != 6 {
		t.Fatalf("a call after Close is not written at once: the file holds %d", again.Used())
	}
}
