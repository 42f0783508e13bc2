package fordapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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

// TestBudgetHoldsOverTwoSimulatedDays polls as greedily as a caller can
// (every simulated minute) and sends a command every three hours, against a
// simulator that locks the account past 250 calls in 24 h, as Ford does.
// The budget must keep every rolling day under the limit, keep room for
// every command, and still deliver telemetry all day long.
func TestBudgetHoldsOverTwoSimulatedDays(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}
	sim := fordsim.New(fordsim.Options{Now: clock.Now, DailyLimit: 250})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	region, _ := fordapi.LookupRegion("usa")
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: srv.URL, StateDir: t.TempDir(), DailyBudget: 250,
		Now: clock.Now, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SignIn(context.Background(), redirectFor(t, c)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	vin := fordsim.VIN(1)
	var polls, paced, commandsOK, commandsRefused, limited int
	pollsPerHour := map[int]int{}
	for minute := 1; minute <= 2*24*60; minute++ {
		clock.Add(time.Minute)
		_, _, err := c.Telemetry(ctx, vin)
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
			if _, err := c.SendCommand(ctx, vin, fordapi.CmdLock, nil); err != nil {
				if errors.Is(err, fordapi.ErrRateLimited) {
					limited++
				}
				commandsRefused++
			} else {
				commandsOK++
			}
		}
	}
	st := sim.Snapshot()
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

func TestPollEveryFitsTheShare(t *testing.T) {
	b, err := fordapi.NewBudget("", 250, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Reserve() != 50 || b.Share() != 200 || b.Hourly() != 8 {
		t.Fatalf("reserve %d, share %d, hourly %d", b.Reserve(), b.Share(), b.Hourly())
	}
	if got := b.PollEvery(1); got != 864*time.Second { // 24 h × 2 calls / 200
		t.Fatalf("one car polls every %s, want 14m24s", got)
	}
	if got := b.PollEvery(9); got != 72*time.Minute {
		t.Fatalf("nine cars poll every %s, want 1h12m", got)
	}
}
