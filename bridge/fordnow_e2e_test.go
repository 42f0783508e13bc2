package bridge_test

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/discovery"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// Ford's answers left the vehicles out for hours in August 2026 (ha-fordpass
// #255, #271). No such answer may take a car away.

func (e *env) deviceConfig(vin string) string {
	return discovery.VehicleTopic(discovery.Settings{DiscoveryPrefix: e.cfg.HADiscoveryPrefix, TopicPrefix: e.p}, vin)
}

func (e *env) listCalls() int {
	st := e.sim.Stats()
	return st.Calls["vehicle_list"] + st.Calls["garage"]
}

// waitListCalls waits until Ford has been asked for the list n more times.
func (e *env) waitListCalls(n int) {
	e.t.Helper()
	want := e.listCalls() + n
	deadline := time.Now().Add(15 * time.Second)
	for e.listCalls() < want {
		if time.Now().After(deadline) {
			e.t.Fatalf("the vehicle list was asked %d times, want %d", e.listCalls(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readCache(t *testing.T, dir string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "vehicles.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("vehicles.json: %v: %s", err, data)
	}
	return m
}

func (e *env) noConfigCleared(vins ...string) {
	e.t.Helper()
	for _, vin := range vins {
		if h := e.w.History(e.deviceConfig(vin)); slices.Contains(h, "") || len(h) == 0 {
			e.t.Fatalf("%s: its Home Assistant device was cleared (%d configs seen)", vin, len(h))
		}
	}
}

func (e *env) logged(msg string) int {
	n := 0
	for _, entry := range e.logs.All() {
		if strings.Contains(entry.Message, msg) {
			n++
		}
	}
	return n
}

func TestEmptyVehicleListKeepsEveryCar(t *testing.T) {
	t.Parallel()
	vin2 := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2}, options: func(o *bridge.Options) {
		o.VehicleListTTL, o.EmptyListRetry = 300*time.Millisecond, 300*time.Millisecond
	}})
	e.w.WaitFor(e.deviceConfig(vin2), 10*time.Second, func(s string) bool { return strings.Contains(s, `"battery_soc"`) })
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)

	e.simPost("/_sim/protocol?vehicle_list=empty")
	e.waitListCalls(3)
	e.noConfigCleared(vin1, vin2)
	cache := readCache(t, e.cfg.StateDir)
	if vs, _ := cache["vehicles"].([]any); len(vs) != 2 || cache["empty_answers"] == nil {
		t.Fatalf("the cache after empty answers: %v", cache)
	}
	if e.logged("Ford answered the vehicle list with no vehicles") == 0 || e.logged("FORD_REGION") != 0 {
		t.Fatal("an empty answer with cars known must be logged as Ford's answer, not blamed on FORD_REGION")
	}
	srv := httptestServer(t, e.bridge.HTTPHandler())
	resp, err := bridgetest.HTTP.Get(srv + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "fordpass_vehicle_list_empty_total ") {
		t.Fatal("/metrics does not count the empty answers")
	}
	// Both cars still stream.
	e.waitStream(vin1)
	e.patch(vin1, `{"metrics":{"odometer":{"value":999.9}}}`)
	e.w.WaitValue(e.topic(vin1, "odometer"), "999.9", 10*time.Second)

	// A restart while Ford still answers "no vehicles" keeps them too.
	e.restart()
	e.waitListCalls(2)
	e.noConfigCleared(vin1, vin2)
	e.waitStream(vin2)
	e.patch(vin2, `{"metrics":{"odometer":{"value":1234.5}}}`)
	e.w.WaitValue(e.topic(vin2, "odometer"), "1234.5", 10*time.Second)
	late := bridgetest.Watch(t, e.cfg.MQTTURL, e.p+"/#")
	late.WaitValue(e.topic(vin1, "lock"), "locked", 5*time.Second)

	// Ford's list comes back: the count of empty answers ends.
	e.simPost("/_sim/protocol?vehicle_list=both")
	deadline := time.Now().Add(10 * time.Second)
	for readCache(t, e.cfg.StateDir)["empty_answers"] != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the list came back, the cache still counts empty answers: %v", readCache(t, e.cfg.StateDir))
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.noConfigCleared(vin1, vin2)
}

// TestEmptyVehicleListAtFirstStartIsAskedAgain: a new installation whose
// first list is empty bridges nothing, says why, and asks again soon (the
// hour, shortened here), so the cars appear when Ford lists them.
func TestEmptyVehicleListAtFirstStartIsAskedAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, sim: fordsim.Options{Vehicles: 2}, simControls: []string{"/_sim/protocol?vehicle_list=empty"},
		options: func(o *bridge.Options) { o.EmptyListRetry = 300 * time.Millisecond }})
	e.waitListCalls(2)
	if e.logged("FORD_REGION may be wrong") == 0 {
		t.Fatal("an empty first list must point at FORD_REGION")
	}
	if cfg, ok := e.w.Get(e.deviceConfig(vin1)); ok {
		t.Fatalf("a car was bridged from an empty list: %.80s", cfg)
	}
	e.simPost("/_sim/protocol?vehicle_list=both")
	e.w.WaitFor(e.deviceConfig(vin1), 10*time.Second, func(s string) bool { return strings.Contains(s, vin1) })
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
}

// shiftClock is a clock that runs with real time plus an offset a test can
// move forward.
type shiftClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *shiftClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *shiftClock) Add(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// TestCarMissingFromTheListIsKeptForAWeek: a car Ford's list leaves out is
// still bridged (Ford's list has been wrong before); after seven days of
// lists without it, its device and retained topics are cleared.
func TestCarMissingFromTheListIsKeptForAWeek(t *testing.T) {
	t.Parallel()
	clock := &shiftClock{}
	vin2 := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2}, options: func(o *bridge.Options) {
		o.VehicleListTTL, o.Now = 300*time.Millisecond, clock.Now
	}})
	e.w.WaitFor(e.deviceConfig(vin2), 10*time.Second, func(s string) bool { return strings.Contains(s, `"battery_soc"`) })
	e.w.WaitValue(e.topic(vin2, "lock"), "locked", 10*time.Second)

	e.simPost("/_sim/account?hide=" + vin2)
	e.waitListCalls(3)
	clock.Add(6 * 24 * time.Hour) // six days later, still missing
	e.waitListCalls(3)
	e.noConfigCleared(vin2)
	if ms, _ := readCache(t, e.cfg.StateDir)["missing_since"].(map[string]any); ms[vin2] == nil {
		t.Fatalf("the cache does not say since when the car is missing: %v", readCache(t, e.cfg.StateDir))
	}
	e.waitStream(vin2)
	e.patch(vin2, `{"metrics":{"odometer":{"value":77.7}}}`)
	e.w.WaitValue(e.topic(vin2, "odometer"), "77.7", 10*time.Second)

	clock.Add(24*time.Hour + time.Minute) // past seven days
	e.w.WaitValue(e.deviceConfig(vin2), "", 10*time.Second)
	e.w.WaitValue(e.topic(vin2, "lock"), "", 5*time.Second)
	e.w.WaitValue(e.topic(vin2, "state"), "", 5*time.Second)
	if e.logged("removing it") == 0 {
		t.Fatal("the removal is not logged")
	}
	e.noConfigCleared(vin1)
}

// TestRESTTelemetryGoneTheSocketCarriesTheCar: with Ford's REST telemetry
// answering 404 from the start, a new sign-in shows the car's state from
// the socket alone, live changes keep coming, REST is asked once, and the
// socket is opened once.
func TestRESTTelemetryGoneTheSocketCarriesTheCar(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{stream: true, simControls: []string{"/_sim/protocol?rest_telemetry=gone"}})
	e.w.WaitValue(e.topic("auth", "state"), "reauth_required", 10*time.Second)
	e.w.Publish(e.topic("auth", "code", "set"), e.redirect(), false)
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.w.WaitFor(e.topic(vin1, "odometer"), 5*time.Second, func(s string) bool { return s != "" })
	e.w.WaitFor(e.deviceConfig(vin1), 5*time.Second, func(s string) bool { return strings.Contains(s, `"odometer"`) })
	for i, v := range []string{"1001.5", "1002.5", "1003.5"} {
		e.patch(vin1, `{"metrics":{"odometer":{"value":`+v+`}}}`)
		e.w.WaitValue(e.topic(vin1, "odometer"), v, 10*time.Second)
		if i == 0 {
			// A command's outcome comes from the socket too.
			e.w.Publish(e.topic(vin1, "command"), `{"command":"unlock","id":"rest-gone"}`, false)
			e.result(vin1, "rest-gone", "success", 10*time.Second)
		}
	}
	time.Sleep(1500 * time.Millisecond) // past the fill-in's wait
	st := e.sim.Stats()
	if st.Calls["telemetry"] > 1 || st.Calls["stream"] != 1 {
		t.Fatalf("calls %v: want at most one REST try and one socket", st.Calls)
	}
	e.w.WaitValue(e.topic(vin1, "lock"), "unlocked", 5*time.Second)
	if h := e.w.History(e.topic("auth", "state")); slices.Contains(h, "unavailable") {
		t.Fatalf("auth states %v", h)
	}
	t.Logf("REST gone: sign-in to live changes with %d REST calls and %d socket", st.Calls["telemetry"], st.Calls["stream"])
}

// TestRejectedDuplicateKeyCommandAnswersTheCallersID: the result of a
// command refused for a repeated key carries the id the flow sent.
func TestRejectedDuplicateKeyCommandAnswersTheCallersID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.w.Publish(e.topic(vin1, "command"), `{"command":"lock","command":"unlock","id":"flow-dup"}`, false)
	if r := e.result(vin1, "flow-dup", "rejected", 5*time.Second); !strings.Contains(r.Error, `"command" appears twice`) {
		t.Fatalf("result %+v", r)
	}
	if n := len(e.sim.Stats().Commands); n != 0 {
		t.Fatalf("%d commands reached Ford", n)
	}
}

// TestRESTGonePollingReadsTheSocket: with the stream off (FORD_STREAM=false)
// and REST telemetry answering 404, polls read the car's record from a
// socket opened for the read: the state appears and a change shows at the
// next poll, with REST asked once.
func TestRESTGonePollingReadsTheSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, simControls: []string{"/_sim/protocol?rest_telemetry=gone"}})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.patch(vin1, `{"metrics":{"odometer":{"value":2468.5}}}`)
	e.w.WaitValue(e.topic(vin1, "odometer"), "2468.5", 10*time.Second) // the poll interval is 1 s in tests
	st := e.sim.Stats()
	if st.Calls["telemetry"] != 1 || st.Calls["stream"] < 2 {
		t.Fatalf("calls %v: want one REST try, and the polls through sockets", st.Calls)
	}
	if a, _ := e.w.Get(e.topic(vin1, "availability")); a != "online" {
		t.Fatalf("availability %q", a)
	}
}
