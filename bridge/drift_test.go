package bridge_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
)

// TestProtocolDriftIsReportedOnceWithoutValues sends what a newer Ford
// backend might: a metric this version has never heard of, and a known one
// in a shape it cannot read, over and over with changing values and a
// flapping type. The rest of the record is still published; each name is
// logged once; drift.json and doctor name the metrics and their JSON types
// but never a value.
func TestProtocolDriftIsReportedOnceWithoutValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true})
	e.waitStream(vin1)
	for i := range 6 {
		gadget := any(4242.5 + float64(i)) // a number, then a string: the first type is the one reported
		if i%2 == 1 {
			gadget = "secret-gadget-value"
		}
		patch, _ := json.Marshal(map[string]any{"metrics": map[string]any{
			"futureGadgetLevel": map[string]any{"value": gadget, "updateTime": "2026-11-28T10:00:00Z"},
			"oilLifeRemaining":  map[string]any{"value": "plenty-left"},
			"odometer":          map[string]any{"value": 54321.5 + float64(i)},
		}})
		e.patch(vin1, string(patch))
		e.w.WaitValue(e.topic(vin1, "odometer"), fmt.Sprintf("%.1f", 54321.5+float64(i)), 10*time.Second)
	}

	count := func(msg string) int { return e.logs.FilterMessageSnippet(msg).Len() }
	if n := count("does not know"); n != 1 {
		t.Errorf("the unknown metric was logged %d times over 6 updates, want once", n)
	}
	if n := count("cannot read"); n != 1 {
		t.Errorf("the unreadable metric was logged %d times over 6 updates, want once", n)
	}

	data, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "drift.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d bridge.Drift
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("drift.json: %v", err)
	}
	if d.Unknown["futureGadgetLevel"] != "number" || len(d.Unreadable) != 1 || d.Unreadable[0] != "oilLifeRemaining" {
		t.Errorf("drift.json = %s, want futureGadgetLevel as a number and oilLifeRemaining unreadable", data)
	}
	for _, value := range []string{"4242", "secret-gadget", "plenty-left"} {
		if strings.Contains(string(data), value) {
			t.Errorf("drift.json carries a value (%s): %s", value, data)
		}
	}

	c := check(t, runDoctor(t, e.cfg, false), "protocol drift")
	if c.Status != bridge.Warn || !strings.Contains(c.Finding, "futureGadgetLevel (number)") || !strings.Contains(c.Finding, "oilLifeRemaining") {
		t.Errorf("doctor: %+v, want a warning naming futureGadgetLevel (number) and oilLifeRemaining", c)
	}
	if strings.Contains(c.Finding, "4242") || strings.Contains(c.Finding, "plenty") {
		t.Errorf("doctor's finding carries a value: %s", c.Finding)
	}
}
