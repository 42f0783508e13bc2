package bridge

import (
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// countingHost counts the discovery rebuilds a car asks for.
type countingHost struct {
	carLink
	rebuilds int
}

func (h *countingHost) vehicleChanged(*vehicle) { h.rebuilds++ }

// A car's Home Assistant config is rebuilt when the set of its fields
// changes, also when one door is reported instead of another (same count),
// and not for an update of values.
func TestDiscoveryFollowsTheFieldNames(t *testing.T) {
	t.Parallel()
	v, _ := benchVehicle(t)
	h := &countingHost{carLink: v.host.(carLink)}
	h.now = time.Now
	v.host, v.set.discovery = h, true
	tel := func(fields ...fordapi.Field) *fordapi.Telemetry { return &fordapi.Telemetry{Fields: fields} }
	closed, open := fordapi.Word("closed"), fordapi.Word("open")
	steps := []struct {
		tel  *fordapi.Telemetry
		want int
	}{
		{tel(fordapi.Field{Name: "door_driver", Value: closed}, fordapi.Field{Name: "odometer", Value: fordapi.Number(1)}), 1},
		{tel(fordapi.Field{Name: "door_driver", Value: open}, fordapi.Field{Name: "odometer", Value: fordapi.Number(2)}), 1},
		{tel(fordapi.Field{Name: "door_passenger", Value: open}, fordapi.Field{Name: "odometer", Value: fordapi.Number(2)}), 2},
		{tel(fordapi.Field{Name: "door_passenger", Value: open}), 3},
	}
	for i, s := range steps {
		v.publish(s.tel)
		if h.rebuilds != s.want {
			t.Fatalf("after update %d: %d config rebuilds, want %d", i, h.rebuilds, s.want)
		}
	}
}

// A car is offline after the delay when Ford may not be called and its
// socket is not open; an open socket is a working channel whatever the
// account's state says, and a budget refusal takes it offline at once.
func TestCarDarknessRules(t *testing.T) {
	t.Parallel()
	v, _ := benchVehicle(t)
	v.host.(carLink).now = time.Now
	t0 := time.Now()
	shown := func() string {
		v.availMu.Lock()
		defer v.availMu.Unlock()
		return v.dark.shown
	}
	v.reached()
	v.streaming = true
	v.checkDark(t0, time.Minute, "rate limited")
	v.checkDark(t0.Add(2*time.Minute), time.Minute, "rate limited")
	if shown() != "online" {
		t.Fatalf("an open socket went dark: %s", shown())
	}
	v.streaming = false
	v.checkDark(t0.Add(3*time.Minute), time.Minute, "rate limited")
	if shown() != "online" {
		t.Fatal("offline before the delay")
	}
	v.checkDark(t0.Add(4*time.Minute+time.Second), time.Minute, "rate limited")
	if shown() != "offline" {
		t.Fatal("still online after the delay without a channel")
	}
	v.reached()
	v.unreached(&fordapi.BudgetError{Class: fordapi.ClassTelemetry, RetryAt: t0.Add(time.Hour)})
	if shown() != "offline" || v.dark.until.IsZero() {
		t.Fatal("a budget pause must take the car offline at once, with until when")
	}
}
