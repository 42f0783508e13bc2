package fordapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// TestClimateChangesTheCarCannotTakeWriteNothing: a car without a climate
// profile, or a preference its profile lacks, is a ClimateError (an
// answer, not a fault) after one read, and nothing is written.
func TestClimateChangesTheCarCannotTakeWriteNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{Vehicles: 2}, 1000)
	f.signIn(t)
	ctx := context.Background()
	var ce *fordapi.ClimateError
	_, err := f.client.SetClimate(ctx, fordsim.VIN(1), map[string]string{fordapi.ClimateTemperature: "21_0"})
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "no remote climate profile") {
		t.Fatalf("the truck: %v", err)
	}
	_, err = f.client.SetClimate(ctx, fordsim.VIN(2), map[string]string{"RccSauna_Rq": "On", fordapi.ClimateTemperature: "21_0"})
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "has no RccSauna_Rq") || !strings.Contains(err.Error(), "SetPointTemp_Rq") {
		t.Fatalf("an unknown preference: %v", err)
	}
	if st := f.sim.Stats(); st.Calls["climate_profile"] != 2 || st.Calls["climate_profile_update"] != 0 || len(st.Commands) != 0 {
		t.Fatalf("calls %v, commands %v: want two reads and no write", st.Calls, st.Commands)
	}
	if _, err := f.client.SetClimate(ctx, fordsim.VIN(2), map[string]string{fordapi.ClimateSeatRearLeft: "Cooled3"}); err != nil {
		t.Fatal(err)
	}
	if c := f.sim.Stats().Commands; len(c) != 1 || c[0].Properties[fordapi.ClimateSeatRearLeft] != "Cooled3" || c[0].Properties[fordapi.ClimateTemperature] != "22_0" {
		t.Fatalf("written: %+v; want the rear left seat changed and the rest of the profile kept", c)
	}
	// Two failed reads and one read and write, all in the command share.
	if n := f.client.Budget().UsedBy(fordapi.ClassCommand); n != 4 {
		t.Fatalf("%d calls counted as commands, want 4", n)
	}
}

// TestZoneLightsCallsFordsPaths: from off, on is the activation then the
// zone; from a zone, another zone alone; the zone already set, no call;
// off is the activation's DELETE; a car without zone lighting is refused
// by Ford (an error naming zone lighting).
func TestZoneLightsCallsFordsPaths(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{Vehicles: 2}, 1000)
	f.signIn(t)
	region, _ := fordapi.LookupRegion("usa")
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: f.srv.URL, StateDir: f.dir, DailyBudget: 1000, ZoneLightsSettle: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	f.client = c
	ctx := context.Background()
	for _, step := range []struct{ zone, current string }{
		{fordapi.ZoneLightsRear, fordapi.ZoneLightsOff},    // on, then the zone
		{fordapi.ZoneLightsFront, fordapi.ZoneLightsRear},  // the zone alone
		{fordapi.ZoneLightsFront, fordapi.ZoneLightsFront}, // nothing
		{fordapi.ZoneLightsOff, fordapi.ZoneLightsFront},   // off
	} {
		if err := f.client.SetZoneLights(ctx, fordsim.VIN(1), step.zone, step.current); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.client.SetZoneLights(ctx, fordsim.VIN(2), fordapi.ZoneLightsAll, fordapi.ZoneLightsOff); err == nil || !strings.Contains(err.Error(), "zone lighting") {
		t.Fatalf("the EV: %v", err)
	}
	var got []string
	for _, c := range f.sim.Stats().Commands {
		got = append(got, c.Type)
	}
	if strings.Join(got, ",") != "zoneLightsOn,zoneLightsZone,zoneLightsZone,zoneLightsOff" {
		t.Fatalf("Ford got %v", got)
	}
	if n := f.client.Budget().UsedBy(fordapi.ClassCommand); n != 5 {
		t.Fatalf("%d calls counted as commands, want 5 (on, two zones, off, the refused one)", n)
	}
}

// TestDefaultClimateProfile: where Ford holds no profile for a car, a
// change fails unless the client writes the default profile
// (FORD_CLIMATE_DEFAULT_PROFILE), which it then does with the change on
// top, as ha-fordpass's force_remote_climate_control does.
func TestDefaultClimateProfile(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{Vehicles: 2}, 1000)
	f.signIn(t)
	f.sim.ClearClimateProfile(fordsim.VIN(2))
	ctx := context.Background()
	var ce *fordapi.ClimateError
	if _, err := f.client.SetClimate(ctx, fordsim.VIN(2), map[string]string{fordapi.ClimateTemperature: "21_0"}); !errors.As(err, &ce) ||
		!strings.Contains(err.Error(), "FORD_CLIMATE_DEFAULT_PROFILE") {
		t.Fatalf("without the default: %v", err)
	}
	c, err := fordapi.New(fordapi.Config{BaseURL: f.srv.URL, StateDir: f.dir, DailyBudget: 1000, DefaultClimate: true, Region: f.client.Region()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	written, err := c.SetClimate(ctx, fordsim.VIN(2), map[string]string{fordapi.ClimateTemperature: "21_0"})
	if err != nil {
		t.Fatal(err)
	}
	cmds := f.sim.Stats().Commands
	if len(written) != 8 || len(cmds) != 1 || cmds[0].Properties[fordapi.ClimateTemperature] != "21_0" || cmds[0].Properties[fordapi.ClimateRearDefrost] != "Off" {
		t.Fatalf("written %v; Ford got %+v", written, cmds)
	}
}
