//go:build !nodemo

package main

import (
	"testing"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// TestDemoEVChargesLikeACar: over the demo's days, seen through a Ford
// client as the bridge sees it, the EV drives only unplugged, draws power
// only while it charges, never charges past its target, and a charge that
// was paused stays paused until it is unplugged.
func TestDemoEVChargesLikeACar(t *testing.T) {
	t.Parallel()
	sim, fordURL := bridgetest.Ford(t, fordsim.Options{Vehicles: 2})
	c := bridgetest.Client(t, fordapi.Config{BaseURL: fordURL, StateDir: t.TempDir(), DailyBudget: 5000})
	bridgetest.SignIn(t, c)
	ev := fordsim.VIN(2)
	d := newDemoCars(sim)
	read := func() *fordapi.Telemetry {
		t.Helper()
		tel, err := c.Telemetry(t.Context(), ev)
		if err != nil {
			t.Fatal(err)
		}
		return tel
	}
	charged, paused := false, false
	for step := range 36 {
		if err := d.step(step); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if step == 15 { // plugged in and charging: evcc pauses it
			if err := sim.Patch(ev, map[string]any{"metrics": map[string]any{"xevBatteryChargeDisplayStatus": map[string]any{"value": "PAUSED"}}}); err != nil {
				t.Fatal(err)
			}
			paused = true
		}
		tel := read()
		status, plug := tel.Get("charging_status").String(), tel.Get("charge_plug").String()
		power, soc, target := tel.Get("charging_power").Float(), tel.Get("battery_soc").Float(), tel.Get("charge_target").Float()
		if soc > target {
			t.Fatalf("step %d: charged to %.1f %% past the target %.0f %%", step, soc, target)
		}
		if (status == "in_progress" && plug == "connected" && soc < target) != (power > 0) {
			t.Fatalf("step %d: %s, %s, %.1f %% of %.0f %%, drawing %.0f W", step, status, plug, soc, target, power)
		}
		if tel.Get("ignition").String() == "on" && plug != "disconnected" {
			t.Fatalf("step %d: driving plugged in", step)
		}
		if paused && plug == "connected" && status != "paused" {
			t.Fatalf("step %d: the paused charge became %s", step, status)
		}
		if plug == "disconnected" {
			paused = false
		}
		charged = charged || power > 0
		if step%6 == 5 {
			t.Logf("day %d: %.1f %% of %.0f %%, %s", step/6, soc, target, status)
		}
	}
	if !charged {
		t.Fatal("the EV never charged")
	}
}
