package fordapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// Ford is retiring the REST telemetry endpoint: the FordPass app reads the
// websocket only (ha-fordpass #258). These tests hold the client to that.

// streamUpdates runs Stream in the background and hands its updates out.
func streamUpdates(t *testing.T, ctx context.Context, c *fordapi.Client, opts fordapi.StreamOptions) (<-chan *fordapi.Telemetry, <-chan error) {
	t.Helper()
	updates, done := make(chan *fordapi.Telemetry, 64), make(chan error, 1)
	go func() {
		done <- c.Stream(ctx, fordsim.VIN(1), opts, func(tel *fordapi.Telemetry) {
			select {
			case updates <- tel:
			default:
				t.Error("a stream update was dropped by the test")
			}
		})
	}()
	return updates, done
}

func nextUpdate(t *testing.T, updates <-chan *fordapi.Telemetry, done <-chan error, what string) *fordapi.Telemetry {
	t.Helper()
	select {
	case tel := <-updates:
		return tel
	case err := <-done:
		t.Fatalf("waiting for %s, the stream ended: %v", what, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s over the stream", what)
	}
	return nil
}

// TestStreamBuildsTheRecordFromTheSocket: the first frame is the car's
// whole record; no REST call is made for it, and a delta merges on top.
func TestStreamBuildsTheRecordFromTheSocket(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{Heartbeat: 100 * time.Millisecond}, 0)
	f.signIn(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates, done := streamUpdates(t, ctx, f.client, fordapi.StreamOptions{FillAfter: 300 * time.Millisecond})
	tel := nextUpdate(t, updates, done, "the record")
	if tel.Get("lock").String() != "locked" || tel.Get("odometer").String() == "" || tel.Location == nil {
		t.Fatalf("the first frame did not give the whole record: %v", tel.Fields)
	}
	time.Sleep(600 * time.Millisecond) // past FillAfter: no fill-in is needed
	if err := f.sim.Patch(fordsim.VIN(1), map[string]any{"metrics": map[string]any{"odometer": map[string]any{"value": 777.7}}}); err != nil {
		t.Fatal(err)
	}
	tel = nextUpdate(t, updates, done, "the delta")
	if tel.Get("odometer").String() != "777.7" || tel.Get("lock").String() != "locked" {
		t.Fatalf("delta merge: %v", tel.Fields)
	}
	if n := f.sim.Stats().Calls["telemetry"]; n != 0 {
		t.Fatalf("%d REST telemetry calls for a socket that sent the record", n)
	}
}

// TestStreamFillsInFromRESTOnlyWhenTheSocketSendsNoRecord: a socket that
// sends deltas only is filled in once from REST where Ford serves it; where
// Ford answers 404, the failed fill-in leaves the socket open and its
// deltas keep coming.
func TestStreamFillsInFromRESTOnlyWhenTheSocketSendsNoRecord(t *testing.T) {
	t.Parallel()
	t.Run("REST answers", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, fordsim.Options{}, 0)
		f.signIn(t)
		f.simControl(t, "/_sim/protocol?stream_record=none")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		updates, done := streamUpdates(t, ctx, f.client, fordapi.StreamOptions{FillAfter: 200 * time.Millisecond})
		tel := nextUpdate(t, updates, done, "the fill-in")
		if tel.Get("lock").String() != "locked" || tel.Get("odometer").String() == "" {
			t.Fatalf("fill-in: %v", tel.Fields)
		}
		if n := f.sim.Stats().Calls["telemetry"]; n != 1 {
			t.Fatalf("%d REST calls for one fill-in", n)
		}
	})
	t.Run("REST gone", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, fordsim.Options{Heartbeat: 100 * time.Millisecond}, 0)
		f.signIn(t)
		f.simControl(t, "/_sim/protocol?stream_record=none&rest_telemetry=gone")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		updates, done := streamUpdates(t, ctx, f.client, fordapi.StreamOptions{FillAfter: 100 * time.Millisecond, StallAfter: 2 * time.Second})
		waitUntil(t, func() bool { return f.sim.Stats().Calls["telemetry"] == 1 })
		time.Sleep(500 * time.Millisecond)
		if n := f.sim.Streams(fordsim.VIN(1)); n != 1 {
			t.Fatalf("%d open sockets after a failed fill-in, want the one kept open", n)
		}
		if err := f.sim.Patch(fordsim.VIN(1), map[string]any{"metrics": map[string]any{"odometer": map[string]any{"value": 4321.0}}}); err != nil {
			t.Fatal(err)
		}
		if tel := nextUpdate(t, updates, done, "the delta"); tel.Get("odometer").String() != "4321" {
			t.Fatalf("delta: %v", tel.Fields)
		}
		st := f.sim.Stats()
		if st.Calls["stream"] != 1 || st.Calls["telemetry"] != 1 {
			t.Fatalf("calls %v: want one socket and one REST try", st.Calls)
		}
	})
}

// TestRESTTelemetryGoneIsRememberedForADay: after Ford answers 404, the
// client reads the record from a socket, does not ask REST again that day
// (not after a restart either), and tries once when the day is over.
func TestRESTTelemetryGoneIsRememberedForADay(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	sim := fordsim.New(fordsim.Options{Now: clock.Now})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	dir := t.TempDir()
	newClient := func() *fordapi.Client {
		region, _ := fordapi.LookupRegion("usa")
		c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: srv.URL, StateDir: dir, Now: clock.Now,
			HTTPClient: &http.Client{Timeout: 5 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Budget().Close() })
		return c
	}
	c := newClient()
	if err := c.SignIn(context.Background(), redirectFor(t, c)); err != nil {
		t.Fatal(err)
	}
	post := func(path string) {
		resp, err := http.Post(srv.URL+path, "", nil)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	post("/_sim/protocol?rest_telemetry=gone")
	ctx := context.Background()
	read := func(c *fordapi.Client, wantREST, wantSockets int) {
		t.Helper()
		tel, err := c.Telemetry(ctx, fordsim.VIN(1))
		if err != nil {
			t.Fatalf("telemetry with REST gone: %v", err)
		}
		if tel.Get("lock").String() != "locked" || tel.Get("odometer").String() == "" {
			t.Fatalf("record from the socket: %v", tel.Fields)
		}
		if st := sim.Stats(); st.Calls["telemetry"] != wantREST || st.Calls["stream"] != wantSockets {
			t.Fatalf("calls %v, want %d REST and %d sockets", st.Calls, wantREST, wantSockets)
		}
	}
	read(c, 1, 1) // the 404, then the socket
	read(c, 1, 2) // the socket only
	data, err := os.ReadFile(filepath.Join(dir, "protocol.json"))
	if err != nil || !strings.Contains(string(data), "rest_telemetry_gone") {
		t.Fatalf("protocol.json: %s %v", data, err)
	}
	restarted := newClient()
	read(restarted, 1, 3) // remembered across a restart
	clock.Add(23 * time.Hour)
	read(restarted, 1, 4)
	clock.Add(2 * time.Hour) // a day after the 404: one try
	read(restarted, 2, 5)
	post("/_sim/protocol?rest_telemetry=ok")
	clock.Add(25 * time.Hour)
	read(restarted, 3, 5) // REST answers again: no socket
	if p := restarted.Protocol(); !p.RESTTelemetryGone.IsZero() {
		t.Fatalf("REST answered, but the client still thinks it gone: %+v", p)
	}
}

// TestCommandOutcomeFromTheOpenStream: while the socket is open, a
// command's outcome comes from the command states it pushes; Ford is not
// polled.
func TestCommandOutcomeFromTheOpenStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{CommandDelay: 600 * time.Millisecond}, 0)
	f.signIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	updates, done := streamUpdates(t, ctx, f.client, fordapi.StreamOptions{})
	nextUpdate(t, updates, done, "the record")
	id, err := f.client.SendCommand(ctx, fordsim.VIN(1), fordapi.CmdUnlock, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.WaitCommand(ctx, fordsim.VIN(1), fordapi.CmdUnlock, id, updates, nil); err != nil {
		t.Fatalf("unlock over the stream: %v", err)
	}
	if n := f.sim.Stats().Calls["telemetry"]; n != 0 {
		t.Fatalf("%d status polls while the stream was open", n)
	}
}

// TestUnsavedTokenIsKnownAndSavedAgain: a rotated token that cannot be
// written is used, reported by Status, and saved by SaveToken once the file
// can be written.
func TestUnsavedTokenIsKnownAndSavedAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 0)
	f.signIn(t)
	ctx := context.Background()
	if _, err := f.client.Telemetry(ctx, fordsim.VIN(1)); err != nil {
		t.Fatal(err)
	}
	path := f.client.TokenPath()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	f.simControl(t, "/_sim/expire")
	if _, err := f.client.Telemetry(ctx, fordsim.VIN(1)); err != nil {
		t.Fatalf("an unsaved token must still be used: %v", err)
	}
	if st := f.client.Status(); st.Unsaved == "" || !st.SignedIn {
		t.Fatalf("status after a failed save: %+v", st)
	}
	if err := f.client.SaveToken(); err == nil {
		t.Fatal("SaveToken succeeded with a directory in the way")
	}
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := f.client.SaveToken(); err != nil {
		t.Fatal(err)
	}
	if st := f.client.Status(); st.Unsaved != "" {
		t.Fatalf("still unsaved: %+v", st)
	}
	restarted := f.newClient(t, 0)
	if _, err := restarted.Telemetry(ctx, fordsim.VIN(1)); err != nil {
		t.Fatalf("the saved token does not work after a restart: %v", err)
	}
}

// TestChargingCommandsNeedTheirVersion: the charging commands go to the
// newer command path with version 1.0.1; another version is refused with
// Ford's 404 body, and a fuel car cannot charge.
func TestChargingCommandsNeedTheirVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{Vehicles: 2}, 0)
	f.signIn(t)
	ctx := context.Background()
	if _, err := f.client.SendCommand(ctx, fordsim.VIN(2), fordapi.CmdStartCharge, "1.0.0", nil); err == nil ||
		!strings.Contains(err.Error(), "Command startGlobalCharge with version 1.0.0 not found") {
		t.Fatalf("a wrong version: %v", err)
	}
	if _, err := f.client.SendCommand(ctx, fordsim.VIN(1), fordapi.CmdStartCharge, fordapi.ChargeVersion, nil); err == nil {
		t.Fatal("the fuel truck took a charging command")
	}
	id, err := f.client.SendCommand(ctx, fordsim.VIN(2), fordapi.CmdStartCharge, fordapi.ChargeVersion, nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := f.client.WaitCommand(wctx, fordsim.VIN(2), fordapi.CmdStartCharge, id, nil, nil); err != nil {
		t.Fatalf("start charging: %v", err)
	}
	tel, _ := f.client.Telemetry(ctx, fordsim.VIN(2))
	if got := tel.Get("charging_status").String(); got != "in_progress" {
		t.Fatalf("charging status %q", got)
	}
}

// TestDamagedCodesFileIsNoObstacle: a damaged codes.json (the codes tried,
// as hashes) is read as none; a sign-in still works, and the file is
// written again whole.
func TestDamagedCodesFileIsNoObstacle(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, 0)
	if err := os.WriteFile(filepath.Join(f.dir, "codes.json"), []byte(`{"abc": "not a time"`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := f.newClient(t, 0)
	if err := c.SignIn(context.Background(), redirectFor(t, c)); err != nil {
		t.Fatalf("sign-in with a damaged codes.json: %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(f.dir, "codes.json"))
	if !strings.HasPrefix(string(data), "{") || strings.Contains(string(data), "simcode-") || !strings.HasSuffix(strings.TrimSpace(string(data)), "}") {
		t.Fatalf("codes.json after the sign-in: %s", data)
	}
}

// TestCommandWireTypes: a command of the newer path goes as <type>Command,
// but the departure-time commands by their bare type, as the FordPass app
// sends them (ha-fordpass fordpass_bridge.py); the older path always
// takes the bare type.
func TestCommandWireTypes(t *testing.T) {
	for _, c := range []struct{ typ, version, want string }{
		{fordapi.CmdStartCharge, fordapi.ChargeVersion, "startGlobalChargeCommand"},
		{fordapi.CmdEnableDepartureTimes, fordapi.DepartureVersion, "enableDepartureTimes"},
		{fordapi.CmdDisableDepartureTimes, fordapi.DepartureVersion, "disableDepartureTimes"},
		{fordapi.CmdLock, "", "lock"},
	} {
		if got := fordapi.WireType(c.typ, c.version); got != c.want {
			t.Errorf("%s %q: sent as %q, want %q", c.typ, c.version, got, c.want)
		}
	}
}
