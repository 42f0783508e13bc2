package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/fordpass2mqtt/fordpass2mqtt/discovery"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"go.uber.org/zap"
)

// climateSetting is one preference of a car's remote climate profile, as
// the climate and start commands take it ({"climate":{"<key>":…}}) and as
// P/VIN/climate shows it. The preferences and their values are the ones
// ha-fordpass offers (const_shared.py: RCC_TEMPERATURES_CELSIUS,
// RCC_SEAT_OPTIONS_FULL; fordpass_handler.py: set_rcc_*).
type climateSetting struct {
	key   string // ours
	ford  string // Ford's preferenceType
	kind  string // "temperature", "onoff" or "seat"
	label string
	icon  string
	// needs is what Ford's profile of the car must list for it (""
	// for every car with a climate profile), as ha-fordpass gates its
	// entities (__init__.py, tag_supported_by_vehicle).
	needs string
}

var climateSettings = []climateSetting{
	{"temperature", fordapi.ClimateTemperature, "temperature", "Climate temperature", "mdi:thermometer", ""},
	{"rear_defrost", fordapi.ClimateRearDefrost, "onoff", "Climate rear defrost", "mdi:car-defrost-rear", ""},
	{"heated_windshield", fordapi.ClimateHeatedWindshield, "onoff", "Climate heated windshield", "mdi:car-defrost-front", ""},
	{"heated_wheel", fordapi.ClimateHeatedWheel, "onoff", "Climate heated steering wheel", "mdi:steering", fordapi.CapHeatedWheel},
	{"seat_front_left", fordapi.ClimateSeatFrontLeft, "seat", "Climate seat front left", "mdi:car-seat", fordapi.CapHeatedSeats},
	{"seat_front_right", fordapi.ClimateSeatFrontRight, "seat", "Climate seat front right", "mdi:car-seat", fordapi.CapHeatedSeats},
	{"seat_rear_left", fordapi.ClimateSeatRearLeft, "seat", "Climate seat rear left", "mdi:car-seat", fordapi.CapHeatedSeats},
	{"seat_rear_right", fordapi.ClimateSeatRearRight, "seat", "Climate seat rear right", "mdi:car-seat", fordapi.CapHeatedSeats},
}

// seatModes are a seat's settings; seats that heat only (Ford's "Heat
// Only") take the first four (ha-fordpass const_shared.py:
// RCC_SEAT_OPTIONS_FULL, RCC_SEAT_OPTIONS_HEAT_ONLY).
var (
	seatModes         = []string{"off", "heated1", "heated2", "heated3", "cooled1", "cooled2", "cooled3"}
	seatModesHeatOnly = seatModes[:4]
)

// The temperature's ends: ha-fordpass's number shows LO as 15.5 and HI as
// 30.5 °C and sends LO below 16 and HI above 30 (number.py).
const (
	climateLo = 15.5
	climateHi = 30.5
)

// climateProp is the key under which the options keep the climate changes
// (Ford's preference names → values) until they are written.
const climateProp = "climate"

// climateCommand is the command that writes the profile alone.
const climateCommand = "climate"

// climateTopic is the car's topic holding its climate profile as JSON in
// the settings' keys (P/VIN/climate).
const climateTopic = "climate"

func climateKeys() string {
	keys := make([]string, len(climateSettings))
	for i, c := range climateSettings {
		keys[i] = c.key
	}
	return strings.Join(keys, ", ")
}

// startOptions takes optional climate settings.
func startOptions(options map[string]json.RawMessage) (map[string]any, error) {
	if _, ok := options["climate"]; !ok {
		return nil, nil
	}
	return climateOptions(options)
}

// climateOptions takes the climate settings to change:
// {"climate":{"temperature":21.5,"rear_defrost":true,"seat_front_left":"heated2"}}.
func climateOptions(options map[string]json.RawMessage) (map[string]any, error) {
	raw, ok := options["climate"]
	if !ok {
		return nil, fmt.Errorf(`climate needs the settings to change: {"command":"climate","climate":{"temperature":21.5}}; the settings are %s`, climateKeys())
	}
	var given map[string]json.RawMessage
	if json.Unmarshal(raw, &given) != nil || given == nil {
		return nil, fmt.Errorf(`"climate" is %s; it must be an object such as {"temperature":21.5,"rear_defrost":true}`, jsonKind(raw))
	}
	if len(given) == 0 {
		return nil, fmt.Errorf(`"climate" is empty; give one or more of %s`, climateKeys())
	}
	changes := map[string]string{}
	for k, v := range given {
		i := slices.IndexFunc(climateSettings, func(c climateSetting) bool { return c.key == k })
		if i < 0 {
			return nil, fmt.Errorf("climate has no setting %q; the settings are %s", fordapi.Clip(k, 30), climateKeys())
		}
		word, err := climateSettings[i].fordValue(v)
		if err != nil {
			return nil, err
		}
		changes[climateSettings[i].ford] = word
	}
	return map[string]any{climateProp: changes}, nil
}

// fordValue is a setting's value in Ford's words.
func (c climateSetting) fordValue(raw json.RawMessage) (string, error) {
	switch c.kind {
	case "temperature":
		var word string
		if json.Unmarshal(raw, &word) == nil && (strings.EqualFold(word, "lo") || strings.EqualFold(word, "hi")) {
			return strings.ToUpper(word), nil
		}
		var t float64
		if json.Unmarshal(raw, &t) != nil || t < climateLo || t > climateHi || t*2 != math.Trunc(t*2) {
			return "", fmt.Errorf(`the climate temperature must be 16 to 30 (°C) in steps of 0.5, or "lo" (15.5) or "hi" (30.5), not %s`, fordapi.Clip(string(raw), 20))
		}
		switch t {
		case climateLo:
			return "LO", nil
		case climateHi:
			return "HI", nil
		}
		tenths := int(math.Round(t * 10))
		return fmt.Sprintf("%d_%d", tenths/10, tenths%10), nil
	case "seat":
		var mode string
		if json.Unmarshal(raw, &mode) != nil || !slices.Contains(seatModes, strings.ToLower(mode)) {
			return "", fmt.Errorf("the climate %s must be one of %s, not %s", c.key, strings.Join(seatModes, ", "), fordapi.Clip(string(raw), 20))
		}
		mode = strings.ToLower(mode)
		return strings.ToUpper(mode[:1]) + mode[1:], nil
	}
	var on bool
	if json.Unmarshal(raw, &on) != nil {
		return "", fmt.Errorf("the climate %s must be true or false, not %s", c.key, fordapi.Clip(string(raw), 20))
	}
	if on {
		return "On", nil
	}
	return "Off", nil
}

// climateState is P/VIN/climate's payload: the profile in the settings'
// keys, the temperature as a number (or "lo", "hi"), the switches as
// booleans, the seats as their modes. Preferences the bridge does not
// know are left out.
func climateState(prefs []fordapi.ClimatePreference) string {
	buf := []byte{'{'}
	for _, c := range climateSettings {
		i := slices.IndexFunc(prefs, func(p fordapi.ClimatePreference) bool { return p.Type == c.ford })
		if i < 0 {
			continue
		}
		v := prefs[i].Value
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendQuote(buf, c.key)
		buf = append(buf, ':')
		switch c.kind {
		case "temperature":
			if t, err := strconv.ParseFloat(strings.Replace(v, "_", ".", 1), 64); err == nil {
				buf = strconv.AppendFloat(buf, t, 'f', -1, 64)
			} else {
				buf = strconv.AppendQuote(buf, strings.ToLower(v))
			}
		case "onoff":
			buf = strconv.AppendBool(buf, strings.EqualFold(v, "on"))
		default:
			buf = strconv.AppendQuote(buf, strings.ToLower(v))
		}
	}
	return string(append(buf, '}'))
}

// climateControls are the Home Assistant entities of the car's profile: a
// number for the temperature (15.5 to 30.5 °C, its ends LO and HI), a
// switch per heater, a select per seat, each only where Ford's profile of
// the car lists it; each change is a climate command.
func climateControls(v fordapi.Vehicle) []discovery.Control {
	out := make([]discovery.Control, 0, len(climateSettings))
	for _, c := range climateSettings {
		if c.needs != "" && !v.Can.Has(c.needs) {
			continue
		}
		ctl := discovery.Control{Key: "climate_" + c.key, Name: c.label, State: climateTopic, Value: c.key, Icon: c.icon}
		switch c.kind {
		case "temperature":
			ctl.Platform, ctl.Min, ctl.Max, ctl.Step, ctl.Unit, ctl.DeviceClass = "number", climateLo, climateHi, 0.5, "°C", "temperature"
			ctl.Command = `{"command":"` + climateCommand + `","climate":{"temperature":{{ value }}}}`
			ctl.Template = "{% set t = value_json.temperature %}{{ 15.5 if t == 'lo' else 30.5 if t == 'hi' else t }}"
		case "onoff":
			ctl.Platform = "switch"
			ctl.On = `{"command":"` + climateCommand + `","climate":{"` + c.key + `":true}}`
			ctl.Off = `{"command":"` + climateCommand + `","climate":{"` + c.key + `":false}}`
		default:
			ctl.Platform, ctl.Options = "select", seatModesHeatOnly
			if v.Can.Has(fordapi.CapVentedSeats) {
				ctl.Options = seatModes
			}
			ctl.Command = `{"command":"` + climateCommand + `","climate":{"` + c.key + `":"{{ value }}"}}`
		}
		out = append(out, ctl)
	}
	return out
}

// climateNeeds: climate settings need a car that keeps a remote climate
// profile, and each setting what Ford's profile lists of the car (a
// heated wheel; heated seats, and vented ones for cooling).
func climateNeeds(v fordapi.Vehicle, props map[string]any) string {
	changes, ok := props[climateProp].(map[string]string)
	if !ok {
		return ""
	}
	if !v.Can.Has(fordapi.CapRemoteClimate) {
		return "Ford lists no remote climate for this car, so it takes no climate settings; send start without them"
	}
	for _, c := range climateSettings {
		value, given := changes[c.ford]
		switch {
		case !given:
		case c.needs != "" && !v.Can.Has(c.needs):
			return fmt.Sprintf("Ford's profile of this car lists no %s, so it takes no %s setting", strings.TrimPrefix(c.label, "Climate "), c.key)
		case c.kind == "seat" && strings.HasPrefix(value, "Cooled") && !v.Can.Has(fordapi.CapVentedSeats):
			return fmt.Sprintf("this car's seats heat only (Ford's profile: Heat Only), so %s takes %s", c.key, strings.Join(seatModesHeatOnly, ", "))
		}
	}
	return ""
}

// writeClimate writes climate changes to the car's profile and shows the
// profile written on P/VIN/climate.
func (v *vehicle) writeClimate(ctx context.Context, props map[string]any) error {
	changes, ok := props[climateProp].(map[string]string)
	if !ok {
		return nil
	}
	var prefs []fordapi.ClimatePreference
	err := v.host.fordAPI().FordPass(func(c *fordapi.Client) (err error) {
		prefs, err = c.SetClimate(ctx, v.vin, changes)
		return err
	})
	if err != nil {
		return err
	}
	v.setClimate(climateState(prefs))
	return nil
}

// setClimateBeforeStart writes a start's climate settings before the
// start is sent; the start itself takes no properties.
func setClimateBeforeStart(ctx context.Context, v *vehicle, props map[string]any) (map[string]any, error) {
	if err := v.writeClimate(ctx, props); err != nil {
		return nil, fmt.Errorf("the climate settings could not be set, so the car was not started: %w", err)
	}
	return nil, nil
}

// showKeptClimate gives a car with remote climate the P/VIN/climate kept
// from before, when it is first bridged, so its climate entities have
// values from the start without a Ford call.
func (v *vehicle) showKeptClimate() {
	if !v.info().Can.Has(fordapi.CapRemoteClimate) {
		return
	}
	if kept := v.host.keptClimate(v.vin); kept != "" {
		v.setClimate(kept)
	}
}

// needsClimateRead says whether the car's climate profile is still to be
// read from Ford: a car with remote climate that shows none and was not
// asked yet.
func (v *vehicle) needsClimateRead() bool {
	if !v.info().Can.Has(fordapi.CapRemoteClimate) || v.climateAsked.Load() {
		return false
	}
	v.pubMu.Lock()
	defer v.pubMu.Unlock()
	return v.climate == ""
}

// readClimate reads the car's climate profile from Ford once, at its
// turn among the reads besides the cars' state (extrasLoop: after the
// fleet's first states, at a pace, no goroutine waiting per car), in the
// telemetry share (never the command share: a fleet's first start must
// not spend the day's commands), when its pace allows. A read that fails
// or is paced leaves the entities unknown until the next climate change;
// it is not retried.
func (v *vehicle) readClimate(ctx context.Context) {
	v.climateAsked.Store(true)
	var prefs []fordapi.ClimatePreference
	err := v.host.fordAPI().FordPass(func(c *fordapi.Client) (err error) {
		prefs, err = c.ClimateProfile(fordapi.WithClass(ctx, fordapi.ClassTelemetry), v.vin)
		return err
	})
	switch {
	case errors.As(err, new(*fordapi.BudgetError)):
		v.host.logger().Debug("the budget's pace leaves no call to read the car's climate profile; its climate entities stay unknown until a climate change",
			zap.String("vin", fordapi.ShortVIN(v.vin)))
	case err != nil:
		if ctx.Err() == nil {
			v.host.logger().Warn("cannot read the car's climate profile; its climate entities stay unknown until a climate change",
				zap.String("vin", fordapi.ShortVIN(v.vin)), zap.Error(err))
		}
	case len(prefs) > 0:
		v.setClimate(climateState(prefs))
	}
}
