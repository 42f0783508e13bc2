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
	if len(prefs) == 0 && c.defaultClimate {
		prefs = DefaultClimateProfile()
	}
	if len(prefs) == 0 {
		return nil, &ClimateError{"Ford holds no remote climate profile for this car; create one in the FordPass app first (or set FORD_CLIMATE_DEFAULT_PROFILE=true)"}
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

// SetZoneLights turns a car's zone lighting off, or on in a zone, as
// ha-fordpass does (fordpass_bridge.py, set_zone_lighting): given what the
// car shows now (current, a zone code; "" when it reports nothing), a zone
// already set costs no call, lights that are off are switched on first
// and the zone picked after Config.ZoneLightsSettle (the car needs a
// moment; ha-fordpass waits 5 s), and lights that are on (or not known to
// be off) only change zone.
func (c *Client) SetZoneLights(ctx context.Context, vin, zone, current string) error {
	if zone == current {
		return nil
	}
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
	if current == ZoneLightsOff {
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
	}
	return call(http.MethodPut, PathZoneLightsZone(zone))
}

// DefaultClimateProfile is the profile ha-fordpass writes where Ford holds
// none, with its force_remote_climate_control option (fordpass_bridge.py,
// req_remote_climate): every heater and seat off, 22.0 °C.
func DefaultClimateProfile() []ClimatePreference {
	return []ClimatePreference{
		{ClimateHeatedWindshield, "Off"}, {ClimateRearDefrost, "Off"}, {ClimateHeatedWheel, "Off"},
		{ClimateSeatFrontLeft, "Off"}, {ClimateSeatRearLeft, "Off"}, {ClimateSeatFrontRight, "Off"}, {ClimateSeatRearRight, "Off"},
		{ClimateTemperature, "22_0"},
	}
}

// SetGuardMode turns guard mode on or off: its session on Ford's MPS host,
// PUT or DELETE with the car in the X-Vin header, as ha-fordpass does
// (fordpass_bridge.py, set_guard_mode and del_guard_mode; its maintainer
// notes no car at hand to confirm the answers). Ford reports no outcome.
func (c *Client) SetGuardMode(ctx context.Context, vin string, on bool) error {
	method := http.MethodDelete
	if on {
		method = http.MethodPut
	}
	resp, err := c.authedCall(ForCommand(ctx), c.catLayer(), request{endpoint: "guard_mode", method: method, url: c.hosts.mps + PathGuardMode,
		header: http.Header{"X-Vin": {vin}}})
	if err != nil {
		return fmt.Errorf("guard mode: %w", err)
	}
	if resp.status < 200 || resp.status > 205 {
		return fmt.Errorf("guard mode: %w", fordError("guard_mode", resp))
	}
	return nil
}

// ZoneNames are the zone lighting's states and the zone_lights command's
// zones, as people name them; zoneCodes are Ford's numbers for them
// (ha-fordpass const_shared.py, ZONE_LIGHTS_VALUE_*).
var (
	ZoneNames = []string{"all", "front", "rear", "driver", "passenger", "off"}
	zoneCodes = map[string]string{"all": ZoneLightsAll, "front": ZoneLightsFront, "rear": ZoneLightsRear,
		"driver": ZoneLightsDriver, "passenger": ZoneLightsPassenger, "off": ZoneLightsOff}
)

// ZoneCode is Ford's code of a zone name ("" for none).
func ZoneCode(name string) string { return zoneCodes[name] }

// pttbEvent is the power mode event that carries zone lighting's state.
const pttbEvent = "pttb-power-mode-change-event"

// zoneLightsOf reads zone lighting from the record's events, as ha-fordpass
// does: oemData.current_power_mode "On" with zone_N_active_power_status
// "On" for zones 1 to 4 (front, rear, driver, passenger; front or rear
// with driver or passenger is all), "Off" for off. An events delta
// without the power mode event keeps prev; an event that says neither
// clears it.
func zoneLightsOf(raw any, prev string) string {
	events, _ := raw.(map[string]any)
	custom, ok := events["customEvents"].(map[string]any)
	if !ok {
		return prev
	}
	ev, present := custom[pttbEvent]
	if !present {
		return prev
	}
	obj, _ := ev.(map[string]any)
	oem, _ := obj["oemData"].(map[string]any)
	on := func(key string) (string, bool) {
		o, _ := oem[key].(map[string]any)
		s, _ := o["stringValue"].(string)
		return strings.ToUpper(s), s != ""
	}
	mode, ok := on("current_power_mode")
	switch {
	case !ok:
		return ""
	case mode != "ON":
		return "off"
	}
	var z [5]bool
	for i := 1; i <= 4; i++ {
		s, _ := on(fmt.Sprintf("zone_%d_active_power_status", i))
		z[i] = s == "ON"
	}
	switch {
	case (z[1] || z[2]) && (z[3] || z[4]):
		return "all"
	case z[1]:
		return "front"
	case z[2]:
		return "rear"
	case z[3]:
		return "driver"
	case z[4]:
		return "passenger"
	}
	return "" // on, in no zone ha-fordpass names
}
