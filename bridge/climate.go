package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// Climate settings a remote start may carry:
//
//	{"command":"start","climate":{"temperature":21.5,"rear_defrost":true,"seat_front_left":"heated2"}}
//
// Each key is one preference of the car's remote climate profile, in
// Ford's words (fordapi.ClimateTemperature, …); the values are the ones
// ha-fordpass offers (const_shared.py: RCC_TEMPERATURES_CELSIUS,
// RCC_SEAT_OPTIONS_FULL).
var climateKeys = map[string]string{
	"temperature":       fordapi.ClimateTemperature,
	"rear_defrost":      fordapi.ClimateRearDefrost,
	"heated_windshield": fordapi.ClimateHeatedWindshield,
	"heated_wheel":      fordapi.ClimateHeatedWheel,
	"seat_front_left":   fordapi.ClimateSeatFrontLeft,
	"seat_front_right":  fordapi.ClimateSeatFrontRight,
	"seat_rear_left":    fordapi.ClimateSeatRearLeft,
	"seat_rear_right":   fordapi.ClimateSeatRearRight,
}

// seatModes are a seat's settings.
var seatModes = []string{"off", "heated1", "heated2", "heated3", "cooled1", "cooled2", "cooled3"}

// climateProp is the key under which start's options keep the climate
// changes (Ford's preference names → values) until prepare writes them.
const climateProp = "climate"

// startOptions takes optional climate settings.
func startOptions(options map[string]json.RawMessage) (map[string]any, error) {
	raw, ok := options["climate"]
	if !ok {
		return nil, nil
	}
	var settings map[string]json.RawMessage
	if json.Unmarshal(raw, &settings) != nil || settings == nil {
		return nil, fmt.Errorf(`"climate" is %s; it must be an object such as {"temperature":21.5,"rear_defrost":true}`, jsonKind(raw))
	}
	if len(settings) == 0 {
		return nil, fmt.Errorf(`"climate" is empty; give one or more of %s`, strings.Join(slices.Sorted(maps.Keys(climateKeys)), ", "))
	}
	changes := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		ford, known := climateKeys[k]
		if !known {
			return nil, fmt.Errorf("climate has no setting %q; the settings are %s", clip(k, 30), strings.Join(slices.Sorted(maps.Keys(climateKeys)), ", "))
		}
		v, err := climateValue(k, settings[k])
		if err != nil {
			return nil, err
		}
		changes[ford] = v
	}
	return map[string]any{climateProp: changes}, nil
}

// climateValue is a setting's value in Ford's words.
func climateValue(key string, raw json.RawMessage) (string, error) {
	switch {
	case key == "temperature":
		var word string
		if json.Unmarshal(raw, &word) == nil && (strings.EqualFold(word, "lo") || strings.EqualFold(word, "hi")) {
			return strings.ToUpper(word), nil
		}
		var t float64
		if json.Unmarshal(raw, &t) != nil || t < 16 || t > 30 || t*2 != math.Trunc(t*2) {
			return "", fmt.Errorf(`the climate temperature must be 16 to 30 (°C) in steps of 0.5, or "lo" or "hi", not %s`, clip(string(raw), 20))
		}
		tenths := int(math.Round(t * 10))
		return fmt.Sprintf("%d_%d", tenths/10, tenths%10), nil
	case strings.HasPrefix(key, "seat_"):
		var mode string
		if json.Unmarshal(raw, &mode) != nil || !slices.Contains(seatModes, strings.ToLower(mode)) {
			return "", fmt.Errorf("the climate %s must be one of %s, not %s", key, strings.Join(seatModes, ", "), clip(string(raw), 20))
		}
		mode = strings.ToLower(mode)
		return strings.ToUpper(mode[:1]) + mode[1:], nil
	}
	var on bool
	if json.Unmarshal(raw, &on) != nil {
		return "", fmt.Errorf("the climate %s must be true or false, not %s", key, clip(string(raw), 20))
	}
	if on {
		return "On", nil
	}
	return "Off", nil
}

// climateNeeds: climate settings need a car that keeps a remote climate
// profile.
func climateNeeds(v fordapi.Vehicle, props map[string]any) string {
	if _, ok := props[climateProp]; ok && !v.Can.RemoteClimate {
		return "Ford lists no remote climate for this car, so a start cannot carry climate settings; send start without them"
	}
	return ""
}

// setClimate writes a start's climate settings to the car's profile before
// the start is sent; the start itself takes no properties.
func setClimate(ctx context.Context, f Ford, vin string, props map[string]any) (map[string]any, error) {
	changes, ok := props[climateProp].(map[string]string)
	if !ok {
		return props, nil
	}
	if err := f.SetClimate(ctx, vin, changes); err != nil {
		return nil, fmt.Errorf("the climate settings could not be set, so the car was not started: %w", err)
	}
	return nil, nil
}
