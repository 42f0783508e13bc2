package bridge_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
	"go.uber.org/zap"
)

// TestOneSocketPerToken: Ford binds the telemetry socket to one car per
// token (ha-fordpass's README says the app's socket is bound to a single
// vehicle at a time), with REST telemetry gone as in the FordPass app: a
// car's socket closes when another car's opens. Three cars start
// streaming and close each other's sockets; the bridge notices, says so
// once, remembers it in protocol.json and streams one car, reading the
// other two by short socket visits on the poll interval: every car's
// change reaches MQTT within about three poll intervals, and the sockets
// opened stay bounded per poll interval (no reopen loop). A car a poll
// finds running, then a car a command goes to, becomes the one that
// streams.
//
// FP_ONE_SOCKET_POLL sets the poll interval (2 s here; 60s for the
// closing note's measurement, which then also counts the sockets of a
// 4-minute window).
func TestOneSocketPerToken(t *testing.T) {
	t.Parallel()
	poll := 2 * time.Second
	if d, err := time.ParseDuration(os.Getenv("FP_ONE_SOCKET_POLL")); err == nil {
		poll = d
	}
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 3},
		simControls: []string{"/_sim/protocol?sockets_per_token=1&rest_telemetry=gone"},
		mutate:      func(c *config.Config) { c.PollInterval = poll }})
	vins := []string{fordsim.VIN(1), fordsim.VIN(2), fordsim.VIN(3)}
	waitLog(t, e, "Ford closes a car's telemetry socket when another car's opens", 30*time.Second)
	found := time.Now()
	opened := e.sim.Stats().Calls["stream"]
	t.Logf("found after %d sockets", opened)
	if data, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "protocol.json")); err != nil || !strings.Contains(string(data), `"one_socket_since"`) {
		t.Fatalf("protocol.json does not remember it: %s %v", data, err)
	}
	for i, vin := range vins {
		value := fmt.Sprintf("%d.5", 8100+i)
		start := time.Now()
		e.patch(vin, `{"metrics":{"odometer":{"value":`+value+`}}}`)
		e.w.WaitValue(e.topic(vin, "odometer"), value, 3*poll+10*time.Second)
		t.Logf("%s: its change reached MQTT after %s", vin, time.Since(start).Round(time.Millisecond))
	}
	if os.Getenv("FP_ONE_SOCKET_POLL") != "" {
		// The measurement's window: the sockets of 4 poll intervals.
		<-time.After(time.Until(found.Add(4 * poll)))
	}
	elapsed := time.Since(found)
	st := e.sim.Stats()
	sockets := st.Calls["stream"] - opened
	intervals := int(elapsed/poll) + 1
	t.Logf("%d sockets opened, %d displaced in all, in %s (%d poll intervals) after it was found", sockets, st.SocketsDisplaced, elapsed.Round(time.Millisecond), intervals)
	// Each interval: two visits, and the streaming car taking its socket
	// back after each.
	if limit := 5*intervals + 3; sockets > limit {
		t.Fatalf("%d sockets in %d poll intervals; at most %d", sockets, intervals, limit)
	}

	// A poll that finds the second car running (its ignition on) makes it
	// the car that streams.
	e.patch(vins[1], `{"metrics":{"ignitionStatus":{"value":"ON"}}}`)
	bridgetest.Eventually(t, 3*poll+10*time.Second, "the running car streams", func() bool {
		return e.logs.FilterMessageSnippet("this car streams now").FilterField(zap.String("vin", fordapi.ShortVIN(vins[1]))).Len() > 0
	})

	// A command to the third car: it streams now, and its outcome comes
	// over its own socket.
	e.w.Publish(e.topic(vins[2], "command"), `{"command":"lock","id":"one-1"}`, false)
	e.result(vins[2], "one-1", "success", 20*time.Second)
	bridgetest.Eventually(t, 10*time.Second, "the commanded car streams", func() bool {
		return e.logs.FilterMessageSnippet("this car streams now").FilterField(zap.String("vin", fordapi.ShortVIN(vins[2]))).Len() > 0
	})
	e.waitStream(vins[2])
	var proto map[string]any
	data, _ := os.ReadFile(filepath.Join(e.cfg.StateDir, "protocol.json"))
	_ = json.Unmarshal(data, &proto)
	t.Logf("protocol.json: %v", proto)
}
