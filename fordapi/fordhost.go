package fordapi

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The commands below are not Autonomic commands: they are calls to Ford's
// own hosts with the FordPass token, which answer 200 when taken and report
// no command id, so there is no outcome to wait for (FORDPASS-API.md §3.3).
// Each counts in the command share of the budget.

// Remote climate preferences, as Ford names them in a car's profile
// (ha-fordpass fordpass_handler.py, set_rcc_*).
const (
	ClimateTemperature      = "SetPointTemp_Rq"           // "21_5", "LO" or "HI"
	ClimateRearDefrost      = "RccRearDefrost_Rq"         // "On" or "Off"
	ClimateHeatedWindshield = "RccHeatedWindshield_Rq"    // "On" or "Off"
	ClimateHeatedWheel      = "RccHeatedSteeringWheel_Rq" // "On" or "Off"
	ClimateSeatFrontLeft    = "RccLeftFrontClimateSeat_Rq"
	ClimateSeatFrontRight   = "RccRightFrontClimateSeat_Rq"
	ClimateSeatRearLeft     = "RccLeftRearClimateSeat_Rq"
	ClimateSeatRearRight    = "RccRightRearClimateSeat_Rq" // seats: "Off", "Heated1"…"Heated3", "Cooled1"…"Cooled3"
)

// ClimatePreference is one entry of a car's remote climate profile.
type ClimatePreference struct {
	Type  string `json:"preferenceType"`
	Value string `json:"preferenceValue"`
}

// ClimateError is a change the car's climate profile cannot take: Ford
// holds no profile for the car, or the profile lacks a preference. It is
// an answer, not a fault; nothing was written.
type ClimateError struct{ Reason string }

func (e *ClimateError) Error() string { return e.Reason }

// ClimateProfile reads a car's remote climate profile (empty: Ford holds
// none for the car), in the budget class of ctx (telemetry unless it
// says otherwise: a read of the car's state; SetClimate reads it in the
// command share).
func (c *Client) ClimateProfile(ctx context.Context, vin string) ([]ClimatePreference, error) {
	body, _ := json.Marshal(map[string]string{"vin": vin})
	resp, err := c.authedCall(ctx, c.catLayer(), request{endpoint: "climate_profile", method: http.MethodPost,
		url: c.hosts.vehicle + PathClimateProfile, body: body})
	if err != nil {
		return nil, fmt.Errorf("reading the climate profile: %w", err)
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("reading the climate profile: %w", fordError("climate_profile", resp))
	}
	var profile struct {
		Prefs []ClimatePreference `json:"rccUserProfiles"`
	}
	if err := json.Unmarshal(resp.body, &profile); err != nil {
		return nil, fmt.Errorf("reading the climate profile: %w", err)
	}
	return profile.Prefs, nil
}

// SetClimate changes a car's remote climate profile, which its next remote
// start uses: it reads the profile, changes the preferences given (Ford's
// names, see ClimateTemperature) and writes the whole profile back with
// remote climate on, as the FordPass app and ha-fordpass do. It returns
// the profile written. A preference the profile does not have is refused
// before anything is written.
func (c *Client) SetClimate(ctx context.Context, vin string, changes map[string]string) ([]ClimatePreference, error) {
	ctx = ForCommand(ctx)
	prefs, err := c.ClimateProfile(ctx, vin)
	if err != nil {
		return nil, err
	}
	if len(prefs) == 0 {
		return nil, &ClimateError{"Ford holds no remote climate profile for this car; create one in the FordPass app first"}
	}
	var missing []string
	for _, typ := range slices.Sorted(maps.Keys(changes)) {
		i := slices.IndexFunc(prefs, func(p ClimatePreference) bool { return p.Type == typ })
		if i < 0 {
			missing = append(missing, typ)
			continue
		}
		prefs[i].Value = changes[typ]
	}
	if len(missing) > 0 {
		have := make([]string, len(prefs))
		for i, p := range prefs {
			have[i] = p.Type
		}
		return nil, &ClimateError{fmt.Sprintf("this car's climate profile has no %s (it has %s)", strings.Join(missing, ", "), strings.Join(have, ", "))}
	}
	body, _ := json.Marshal(map[string]any{"crccStateFlag": "On", "userPreferences": prefs, "vin": vin})
	resp, err := c.authedCall(ctx, c.catLayer(), request{endpoint: "climate_profile_update", method: http.MethodPut,
		url: c.hosts.vehicle + PathClimateProfileUpdate, body: body})
	if err != nil {
		return nil, fmt.Errorf("writing the climate profile: %w", err)
	}
	if resp.status < 200 || resp.status > 205 {
		return nil, fmt.Errorf("writing the climate profile: %w", fordError("climate_profile_update", resp))
	}
	return prefs, nil
}

// Zone lighting zones, as Ford numbers them (ha-fordpass const_shared.py,
// ZONE_LIGHTS_VALUE_*); ZoneLightsOff turns the lights off.
const (
	ZoneLightsAll       = "0"
	ZoneLightsFront     = "1"
	ZoneLightsRear      = "2"
	ZoneLightsDriver    = "3"
	ZoneLightsPassenger = "4"
	ZoneLightsOff       = "off"
)

// SetZoneLights turns a car's zone lighting off, or on in a zone: the
// lights are switched on, and after Config.ZoneLightsSettle (the car needs
// a moment; ha-fordpass waits 5 s) the zone is picked.
func (c *Client) SetZoneLights(ctx context.Context, vin, zone string) error {
	ctx = ForCommand(ctx)
	body, _ := json.Marshal(map[string]string{"vin": vin})
	call := func(method, path string) error {
		resp, err := c.authedCall(ctx, c.catLayer(), request{endpoint: "zone_lighting", method: method, url: c.hosts.mps + path, body: body})
		if err != nil {
			return fmt.Errorf("zone lighting: %w", err)
		}
		if resp.status < 200 || resp.status > 205 {
			return fmt.Errorf("zone lighting: %w", fordError("zone_lighting", resp))
		}
		return nil
	}
	if zone == ZoneLightsOff {
		return call(http.MethodDelete, PathZoneLightsActivation)
	}
	if err := call(http.MethodPut, PathZoneLightsActivation); err != nil {
		return err
	}
	t := time.NewTimer(c.settle)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("zone lighting: the lights are on, but the zone was not picked: %w", ctx.Err())
	case <-t.C:
	}
	return call(http.MethodPut, PathZoneLightsZone(zone))
}
