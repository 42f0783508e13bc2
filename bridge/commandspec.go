package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/fordpass2mqtt/fordpass2mqtt/discovery"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// commandSpec is everything the bridge knows of one command, in one row:
// parsing, COMMANDS_ALLOWED, the queue, running it, its result and its
// Home Assistant entity all read the row, so a new command is a new row.
type commandSpec struct {
	name string // on P/VIN/command
	ford string // Ford's command type
	// fordFor picks Ford's command type from the options, when it depends
	// on them (departure_times: enable or disable); nil: ford.
	fordFor func(props map[string]any) string
	version string // its version, for the commands of Ford's newer command path ("" for the others)
	// keys are the option keys it takes besides command and id; any other
	// key is refused, naming what it takes. options makes the properties
	// Ford gets from them, and says what is wrong with them (nil: it takes
	// none).
	keys    []string
	options func(map[string]json.RawMessage) (map[string]any, error)
	// noOutcome: Ford reports no outcome (the horn): success once sent.
	noOutcome bool
	// throttled: it wakes the car's modem and drains its 12 V battery, so
	// a car takes one per Options.RefreshEvery.
	throttled bool
	// showing is what the lock shows while it runs ("locking"); a command
	// with one shows "jammed" when it does not succeed.
	showing string
	// effect is what a success shows at once, before the car reports it
	// (props: what Ford was sent).
	effect func(t *fordapi.Telemetry, props map[string]any) *fordapi.Telemetry
	// sets is the number field the command sets ({"command":…,
	// "value":…}), which Home Assistant offers as a number entity in the
	// field's Min, Max and Step.
	sets string
	// opens: it opens the car or starts it (doctor warns when anyone on an
	// open broker may send it).
	opens bool
	// capability is what Ford must list of the car for it, by Ford's own
	// name ("" for any car), and can a further test (nil: none); cannot
	// says why a car cannot, in words. needs says what a car lacks for one
	// request's options ("" when nothing; nil: options need nothing).
	capability string
	can        func(fordapi.Vehicle) bool
	// reports: offered only where the car reports this field (a setting
	// Ford lists no capability for, only its value).
	reports string
	cannot  string
	needs   func(v fordapi.Vehicle, props map[string]any) string
	// prepare makes the Ford calls the command needs before it is sent
	// (start's climate settings) and returns the properties left for the
	// command itself. A failed prepare fails the command unsent.
	prepare func(ctx context.Context, v *vehicle, props map[string]any) (map[string]any, error)
	// direct: not one of Ford's commands but calls to Ford's own hosts,
	// which report no outcome, so it succeeds when they answer (zone
	// lighting). ford, version and noOutcome do not apply.
	direct func(ctx context.Context, v *vehicle, props map[string]any) error
	// button is the Home Assistant button that sends it (key "" for none:
	// the lock entity sends lock and unlock); its Press defaults to the
	// command's name. more are further buttons, with their own Press (the
	// horn's other lengths).
	button discovery.Button
	more   []discovery.Button
	// controls are the Home Assistant entities that send it to change a
	// setting the car keeps (the climate profile's), for a car.
	controls func(fordapi.Vehicle) []discovery.Control
}

var commandSpecs = []commandSpec{
	{name: "lock", ford: fordapi.CmdLock, showing: "locking", effect: setWord(fordapi.FieldLock, "locked"),
		capability: fordapi.CapRemoteLock, cannot: "Ford lists no remote lock for this car"},
	{name: "unlock", ford: fordapi.CmdUnlock, showing: "unlocking", effect: setWord(fordapi.FieldLock, "unlocked"), opens: true,
		capability: fordapi.CapRemoteLock, cannot: "Ford lists no remote lock for this car"},
	// A remote start may carry climate settings: they are written to the
	// car's remote climate profile first, which the start uses (ha-fordpass
	// fordpass_bridge.py, setRemoteClimateControl).
	{name: "start", ford: fordapi.CmdRemoteStart, effect: setWord(fordapi.FieldRemoteStart, "on"), opens: true,
		keys: []string{"climate"}, options: startOptions, needs: climateNeeds, prepare: setClimateBeforeStart,
		capability: fordapi.CapRemoteStart, cannot: "Ford lists no remote start for this car",
		button: discovery.Button{Key: "remote_start_button", Name: "Remote start", Icon: "mdi:car-key"}},
	{name: "stop", ford: fordapi.CmdCancelRemoteStart, effect: setWord(fordapi.FieldRemoteStart, "off"),
		capability: fordapi.CapRemoteStart, cannot: "Ford lists no remote start for this car",
		button: discovery.Button{Key: "remote_stop_button", Name: "Stop remote start", Icon: "mdi:car-off"}},
	{name: "refresh", ford: fordapi.CmdStatusRefresh, throttled: true,
		button: discovery.Button{Key: "refresh_button", Name: "Refresh from car", Icon: "mdi:refresh"}},
	{name: "horn", ford: fordapi.CmdPanicCue, keys: []string{"duration"}, options: hornOptions, noOutcome: true,
		capability: fordapi.CapPanicAlarm, cannot: "Ford lists no remote horn for this car",
		button: discovery.Button{Key: "horn_button", Name: "Horn and lights", Icon: "mdi:bullhorn", DeviceClass: "identify"},
		more: []discovery.Button{
			{Key: "horn_1s_button", Name: "Horn and lights 1 s", Press: `{"command":"horn","duration":1}`, Icon: "mdi:bullhorn-outline"},
			{Key: "horn_5s_button", Name: "Horn and lights 5 s", Press: `{"command":"horn","duration":5}`, Icon: "mdi:bullhorn"},
		}},
	// Charging, on electric cars: Ford's newer command path with version
	// 1.0.1, as ha-fordpass sends them (fordpass_bridge.py, start_charge,
	// pause_charge, cancel_charge).
	{name: "charge_start", ford: fordapi.CmdStartCharge, version: fordapi.ChargeVersion, effect: setWord(fordapi.FieldChargingStatus, "in_progress"),
		can: isEV, cannot: "charging commands need an electric car",
		button: discovery.Button{Key: "charge_start_button", Name: "Start charging", Icon: "mdi:ev-station"}},
	{name: "charge_pause", ford: fordapi.CmdPauseCharge, version: fordapi.ChargeVersion, effect: setWord(fordapi.FieldChargingStatus, "paused"),
		can: isEV, cannot: "charging commands need an electric car",
		button: discovery.Button{Key: "charge_pause_button", Name: "Pause charging", Icon: "mdi:pause-circle-outline"}},
	{name: "charge_cancel", ford: fordapi.CmdCancelCharge, version: fordapi.ChargeVersion, effect: setWord(fordapi.FieldChargingStatus, "stopped"),
		can: isEV, cannot: "charging commands need an electric car",
		button: discovery.Button{Key: "charge_cancel_button", Name: "Stop charging", Icon: "mdi:stop-circle-outline"}},
	// The charge target: Ford's charge settings command, its AC, DC and
	// reserve targets set together, as ha-fordpass does (set_charge_settings).
	{name: "charge_target", ford: fordapi.CmdChargeSettings, version: fordapi.ChargeVersion, keys: []string{"value"}, options: chargeTargetOptions, sets: fordapi.FieldChargeTarget,
		effect: showSetting(fordapi.FieldChargeTarget, "globalTargetSoc"),
		can:    isEV, cannot: "charging commands need an electric car"},
	// A saved charging location's own target: its entry goes back to Ford
	// with the new targetSoc (ha-fordpass set_elev_target_charge_int), on
	// a car whose locations were read.
	{name: "charge_location_target", keys: []string{"location", "value"}, options: locationTargetOptions,
		direct:  setLocationTarget,
		reports: fordapi.FieldChargeLocations, cannot: "the car's charging locations have not been read (FordPass, electric cars)"},
	// The AC current limit: the same command with globalCurrentLimit
	// alone, as ha-fordpass sends it (set_charge_settings), 5 to 48 A
	// (its number entity's range, const_tags.py).
	{name: "charge_current_limit", ford: fordapi.CmdChargeSettings, version: fordapi.ChargeVersion, keys: []string{"value"}, options: currentLimitOptions,
		sets:   fordapi.FieldChargeCurrentLimit,
		effect: showSetting(fordapi.FieldChargeCurrentLimit, "globalCurrentLimit"),
		can:    isEV, cannot: "charging commands need an electric car"},
	// The DC power limit: the same command with globalDCPowerLimit alone
	// (ha-fordpass set_global_dc_power_limit), offered where the car
	// reports it.
	{name: "charge_dc_power_limit", ford: fordapi.CmdChargeSettings, version: fordapi.ChargeVersion, keys: []string{"value"}, options: dcPowerLimitOptions,
		sets:   fordapi.FieldChargeDCPowerLimit,
		effect: showSetting(fordapi.FieldChargeDCPowerLimit, "globalDCPowerLimit"),
		can:    isEV, reports: fordapi.FieldChargeDCPowerLimit,
		cannot: "the car reports no DC power limit"},
	// Departure times on or off, as ha-fordpass sends them
	// (departure_times_enable, departure_times_disable): two commands of
	// version 1 on the newer path, with no properties.
	{name: "departure_times", version: fordapi.DepartureVersion, keys: []string{"enabled"}, options: enabledOption("departure_times"),
		fordFor: onOff(fordapi.CmdEnableDepartureTimes, fordapi.CmdDisableDepartureTimes),
		effect: func(t *fordapi.Telemetry, props map[string]any) *fordapi.Telemetry {
			return t.With(fordapi.FieldDepartureTimes, fordapi.Word(map[bool]string{true: "on", false: "off"}[props[enabledKey] == true]))
		},
		capability: fordapi.CapDepartureTimes, cannot: "Ford lists no departure times for this car",
		button: discovery.Button{Key: "departure_times_on_button", Name: "Departure times on", Press: `{"command":"departure_times","enabled":true}`, Icon: "mdi:calendar-clock"},
		more: []discovery.Button{
			{Key: "departure_times_off_button", Name: "Departure times off", Press: `{"command":"departure_times","enabled":false}`, Icon: "mdi:calendar-remove"},
		}},
	// The departure schedules, sent as ha-fordpass departure_times_update
	// sends them: a list of days, each with its schedules.
	{name: "departure_schedule", ford: fordapi.CmdUpdateDepartureTimes, version: fordapi.DepartureVersion, keys: []string{"schedules"}, options: departureScheduleOptions,
		effect: func(t *fordapi.Telemetry, _ map[string]any) *fordapi.Telemetry {
			return t.With(fordapi.FieldDepartureTimes, fordapi.Word("on"))
		},
		capability: fordapi.CapDepartureTimes, cannot: "Ford lists no departure times for this car"},
	// Automatic software updates on or off, as ha-fordpass sends it
	// (auto_updates_on, auto_updates_off): {"ASUState":"ON"|"OFF"}; offered
	// where the car reports the setting.
	{name: "auto_updates", ford: fordapi.CmdASUSettings, version: fordapi.ASUVersion, keys: []string{"enabled"}, options: autoUpdateOptions,
		effect: func(t *fordapi.Telemetry, props map[string]any) *fordapi.Telemetry {
			return t.With(fordapi.FieldAutoUpdates, fordapi.Word(strings.ToLower(props["ASUState"].(string))))
		},
		reports: fordapi.FieldAutoUpdates, cannot: "the car reports no automatic software update setting",
		button: discovery.Button{Key: "auto_updates_on_button", Name: "Automatic updates on", Press: `{"command":"auto_updates","enabled":true}`, Icon: "mdi:cloud-check-outline"},
		more: []discovery.Button{
			{Key: "auto_updates_off_button", Name: "Automatic updates off", Press: `{"command":"auto_updates","enabled":false}`, Icon: "mdi:cloud-off-outline"},
		}},
	// The message centre's messages of the car deleted, all or the newest,
	// as ha-fordpass's two buttons do (messages_delete_all, _last).
	{name: "delete_messages", keys: []string{"latest"}, options: deleteMessagesOptions,
		direct: func(ctx context.Context, v *vehicle, props map[string]any) error {
			return v.host.deleteMessages(ctx, v.vin, props["latest"] == true)
		},
		reports: messagesField, cannot: "the account's message centre has not been read (FordConnect has none)",
		button: discovery.Button{Key: "delete_messages_button", Name: "Delete messages", Icon: "mdi:delete-sweep"},
		more: []discovery.Button{
			{Key: "delete_latest_message_button", Name: "Delete the latest message", Press: `{"command":"delete_messages","latest":true}`, Icon: "mdi:delete"},
		}},
	// The trailer light check, where Ford lists it (FORDPASS-API.md §3.1:
	// ha-fordpass notes it does not work for its maintainer's car).
	{name: "trailer_light_check", keys: []string{"enabled"}, options: enabledOption("trailer_light_check"),
		fordFor:    onOff(fordapi.CmdStartTrailerLightCheck, fordapi.CmdStopTrailerLightCheck),
		capability: fordapi.CapTrailerLightCheck, cannot: "Ford lists no trailer light check for this car",
		button: discovery.Button{Key: "trailer_light_check_button", Name: "Trailer light check", Press: `{"command":"trailer_light_check","enabled":true}`, Icon: "mdi:truck-trailer"},
		more: []discovery.Button{
			{Key: "trailer_light_check_stop_button", Name: "Stop trailer light check", Press: `{"command":"trailer_light_check","enabled":false}`, Icon: "mdi:truck-trailer"},
		}},
	// Guard mode on or off, where Ford lists it: calls to Ford's MPS host
	// (ha-fordpass, set_guard_mode and del_guard_mode).
	{name: "guard_mode", keys: []string{"enabled"}, options: enabledOption("guard_mode"),
		direct: func(ctx context.Context, v *vehicle, props map[string]any) error {
			return v.host.fordAPI().FordPass(func(c *fordapi.Client) error { return c.SetGuardMode(ctx, v.vin, props[enabledKey] == true) })
		},
		capability: fordapi.CapGuardMode, cannot: "Ford lists no guard mode for this car",
		button: discovery.Button{Key: "guard_mode_on_button", Name: "Guard mode on", Press: `{"command":"guard_mode","enabled":true}`, Icon: "mdi:shield-lock"},
		more: []discovery.Button{
			{Key: "guard_mode_off_button", Name: "Guard mode off", Press: `{"command":"guard_mode","enabled":false}`, Icon: "mdi:shield-off"},
		}},
	// The remote climate profile alone, which the next remote start uses
	// (ha-fordpass changes it the same way from its climate entities).
	{name: climateCommand, keys: []string{"climate"}, options: climateOptions, direct: func(ctx context.Context, v *vehicle, props map[string]any) error { return v.writeClimate(ctx, props) },
		capability: fordapi.CapRemoteClimate, cannot: "Ford lists no remote climate for this car", needs: climateNeeds,
		controls: climateControls},
	// Zone lighting: calls to Ford's MPS host (ha-fordpass, set_zone_lighting).
	{name: "zone_lights", keys: []string{"zone"}, options: zoneOptions,
		direct: func(ctx context.Context, v *vehicle, props map[string]any) error {
			now, _ := v.field(fordapi.FieldZoneLights)
			return v.host.fordAPI().FordPass(func(c *fordapi.Client) error {
				return c.SetZoneLights(ctx, v.vin, props["zone"].(string), fordapi.ZoneCode(now.String()))
			})
		},
		effect: func(t *fordapi.Telemetry, props map[string]any) *fordapi.Telemetry {
			return t.With(fordapi.FieldZoneLights, fordapi.Word(props["name"].(string)))
		},
		capability: fordapi.CapZoneLighting, cannot: "Ford lists no zone lighting for this car",
		button: discovery.Button{Key: "zone_lights_button", Name: "Zone lights on", Press: `{"command":"zone_lights","zone":"all"}`, Icon: "mdi:car-parking-lights"},
		more: []discovery.Button{
			{Key: "zone_lights_off_button", Name: "Zone lights off", Press: `{"command":"zone_lights","zone":"off"}`, Icon: "mdi:car-light-dimmed"},
		}},
}

// zoneOptions takes the zone: all, front, rear, driver, passenger or off.
func zoneOptions(options map[string]json.RawMessage) (map[string]any, error) {
	raw, ok := options["zone"]
	var name string
	if !ok || json.Unmarshal(raw, &name) != nil || fordapi.ZoneCode(strings.ToLower(name)) == "" {
		got := "none"
		if ok {
			got = fordapi.Clip(string(raw), 20)
		}
		return nil, fmt.Errorf(`zone_lights needs a zone: all, front, rear, driver, passenger or off (got %s), as in {"command":"zone_lights","zone":"all"}`, got)
	}
	return map[string]any{"zone": fordapi.ZoneCode(strings.ToLower(name)), "name": strings.ToLower(name)}, nil
}

// chargeTargetOptions takes the target in percent: Ford accepts 50, 60
// and 70, and any value from 80 to 100 (ha-fordpass rounds a lower one
// down to its tens).
func chargeTargetOptions(options map[string]json.RawMessage) (map[string]any, error) {
	t, err := wholeValue(options, "charge_target", "80", "50, 60, 70 or a whole number from 80 to 100 (percent)", chargeTargets)
	if err != nil {
		return nil, err
	}
	return map[string]any{"chargeSettings": map[string]any{"globalTargetSoc": t, "globalDCTargetSoc": t, "globalReserveSoc": t}}, nil
}

// chargeTargets says which charge targets Ford accepts: 50, 60 and 70,
// and any value from 80 to 100 (ha-fordpass rounds a lower one down to its
// tens, fordpass_bridge.py and fordpass_handler.py).
func chargeTargets(v int) bool { return v == 50 || v == 60 || v == 70 || v >= 80 && v <= 100 }

// locationTargetOptions takes a location, by its name or its place in
// the car's list (1 first), and the target.
func locationTargetOptions(options map[string]json.RawMessage) (map[string]any, error) {
	t, err := wholeValue(options, "charge_location_target", "80", "50, 60, 70 or a whole number from 80 to 100 (percent)", chargeTargets)
	if err != nil {
		return nil, err
	}
	var name string
	var place float64
	raw := options["location"]
	switch {
	case raw == nil:
		return nil, fmt.Errorf(`charge_location_target needs a location, its name or its place in %s: {"command":"charge_location_target","location":"Home","value":80}`, "the car's charge_location_list")
	case json.Unmarshal(raw, &name) == nil && strings.TrimSpace(name) != "":
		return map[string]any{"location": strings.TrimSpace(name), "target": t}, nil
	case json.Unmarshal(raw, &place) == nil && place >= 1 && place <= 100 && place == math.Trunc(place):
		return map[string]any{"place": int(place), "target": t}, nil
	}
	return nil, fmt.Errorf("the location must be a name or a place from 1 (the first), not %s", fordapi.Clip(string(raw), 30))
}

// setLocationTarget sets one location's target and shows it in the
// car's list at once.
func setLocationTarget(ctx context.Context, v *vehicle, props map[string]any) error {
	list := v.chargeLocations()
	i := -1
	if p, ok := props["place"].(int); ok && p <= len(list) {
		i = p - 1
	}
	if name, ok := props["location"].(string); ok {
		for j, l := range list {
			if strings.EqualFold(l.Name, name) {
				i = j
				break
			}
		}
	}
	if i < 0 {
		names := make([]string, len(list))
		for j, l := range list {
			names[j] = strconv.Quote(l.Name)
		}
		return &nothingToDo{fmt.Sprintf("the car has no such charging location; its locations are %s", strings.Join(names, ", "))}
	}
	target := props["target"].(int)
	err := v.host.fordAPI().FordPass(func(c *fordapi.Client) error { return c.SetChargeLocationTarget(ctx, v.vin, list[i], target) })
	switch {
	case errors.Is(err, fordapi.ErrLocationIncomplete):
		return &nothingToDo{err.Error()} // an answer about the entry, not a fault of Ford's
	case err != nil:
		return err
	}
	list[i].Target = target
	spec := extraSpecs[slices.IndexFunc(extraSpecs, func(s extraSpec) bool { return s.field == fordapi.FieldChargeLocations })]
	v.pubMu.Lock()
	st := v.extras[fordapi.FieldChargeLocations]
	v.pubMu.Unlock()
	st.extraRead = chargeLocationsRead(list)
	v.setExtra(spec, st)
	v.host.keepExtras()
	return nil
}

// wholeValue reads a command's "value": a whole number that ok accepts;
// example is one, and allowed says in words what ok accepts.
func wholeValue(options map[string]json.RawMessage, command, example, allowed string, ok func(int) bool) (int, error) {
	raw, given := options["value"]
	if !given {
		return 0, fmt.Errorf(`%s needs a value, %s: {"command":%q,"value":%s}`, command, allowed, command, example)
	}
	var v float64
	if json.Unmarshal(raw, &v) != nil || v != math.Trunc(v) || math.Abs(v) > 1e6 || !ok(int(v)) {
		return 0, fmt.Errorf("the %s must be %s, not %s", strings.ReplaceAll(command, "_", " "), allowed, fordapi.Clip(string(raw), 20))
	}
	return int(v), nil
}

// showSetting is the effect of a charge settings command: the field shows
// the value sent as key.
func showSetting(field, key string) func(*fordapi.Telemetry, map[string]any) *fordapi.Telemetry {
	return func(t *fordapi.Telemetry, props map[string]any) *fordapi.Telemetry {
		cs, _ := props["chargeSettings"].(map[string]any)
		v, _ := cs[key].(int)
		return t.With(field, fordapi.Number(float64(v)))
	}
}

// properties are the properties Ford gets for a command with these
// options (see commandSpec.options). A key the command does not take is
// refused, naming it and what the command takes: {"command":"lock",
// "state":"on"} would lock while the flow meant something else.
func (c *commandSpec) properties(options map[string]json.RawMessage) (map[string]any, error) {
	var unknown []string
	for _, k := range slices.Sorted(maps.Keys(options)) {
		if !slices.Contains(c.keys, k) {
			unknown = append(unknown, strconv.Quote(fordapi.Clip(k, 30)))
		}
	}
	if len(unknown) > 0 {
		takes := "no options (only command and id)"
		if len(c.keys) > 0 {
			takes = strings.Join(c.keys, ", ") + " (besides command and id)"
		}
		return nil, fmt.Errorf("%s does not take %s; it takes %s", c.name, strings.Join(unknown, ", "), takes)
	}
	if c.options == nil {
		return nil, nil
	}
	return c.options(options)
}

// currentLimitOptions takes the AC current limit: a whole number of
// amperes from 5 to 48.
func currentLimitOptions(options map[string]json.RawMessage) (map[string]any, error) {
	a, err := wholeValue(options, "charge_current_limit", "32", "a whole number of amperes from 5 to 48",
		func(v int) bool { return v >= 5 && v <= 48 })
	if err != nil {
		return nil, err
	}
	return map[string]any{"chargeSettings": map[string]any{"globalCurrentLimit": a}}, nil
}

// departureScheduleOptions takes the schedules in the shape ha-fordpass
// documents for updateDepartureTimes: [{"dayOfWeek":"MONDAY","schedules":
// [{"locationId":…,"scheduleId":…,"scheduleStatus":"ON"|"OFF",
// "preconditionTemperature":"LOW"|"MEDIUM"|"HIGH"|"OFF","timeOfDay":
// {"hours":7,"minutes":30}}]}], each key required and nothing else taken.
func departureScheduleOptions(options map[string]json.RawMessage) (map[string]any, error) {
	const example = `{"command":"departure_schedule","schedules":[{"dayOfWeek":"MONDAY","schedules":[{"locationId":1,"scheduleId":1,"scheduleStatus":"ON","preconditionTemperature":"MEDIUM","timeOfDay":{"hours":7,"minutes":30}}]}]}`
	raw, ok := options["schedules"]
	if !ok {
		return nil, fmt.Errorf("departure_schedule needs schedules, as in %s", example)
	}
	type schedule struct {
		Location json.RawMessage `json:"locationId"`
		ID       json.RawMessage `json:"scheduleId"`
		Status   string          `json:"scheduleStatus"`
		Temp     string          `json:"preconditionTemperature"`
		At       *struct {
			Hours   *int `json:"hours"`
			Minutes *int `json:"minutes"`
		} `json:"timeOfDay"`
	}
	type day struct {
		Day       string     `json:"dayOfWeek"`
		Schedules []schedule `json:"schedules"`
	}
	var days []day
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&days); err != nil || len(days) == 0 {
		return nil, fmt.Errorf("the schedules must be a list of days, as in %s (%s)", example, fordapi.Clip(fmt.Sprint(err), 80))
	}
	week := []string{"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"}
	id := func(r json.RawMessage) bool {
		var v any
		if json.Unmarshal(r, &v) != nil {
			return false
		}
		switch v := v.(type) {
		case string:
			return v != "" && len(v) <= 64
		case float64:
			return v == math.Trunc(v) && v >= 0 && v < 1e9
		}
		return false
	}
	out := make([]any, 0, len(days))
	seen := map[string]bool{}
	for i, d := range days {
		switch {
		case !slices.Contains(week, d.Day) || seen[d.Day]:
			return nil, fmt.Errorf("day %d: dayOfWeek must be one of %s, each once, not %q", i+1, strings.Join(week, ", "), fordapi.Clip(d.Day, 20))
		case len(d.Schedules) == 0 || len(d.Schedules) > 10:
			return nil, fmt.Errorf("%s: from 1 to 10 schedules", d.Day)
		}
		seen[d.Day] = true
		var list []any
		for j, s := range d.Schedules {
			where := fmt.Sprintf("%s, schedule %d", d.Day, j+1)
			switch {
			case !id(s.Location) || !id(s.ID):
				return nil, fmt.Errorf("%s: locationId and scheduleId are needed, each a whole number or a string", where)
			case s.Status != "ON" && s.Status != "OFF":
				return nil, fmt.Errorf("%s: scheduleStatus must be ON or OFF, not %q", where, fordapi.Clip(s.Status, 20))
			case !slices.Contains([]string{"LOW", "MEDIUM", "HIGH", "OFF"}, s.Temp):
				return nil, fmt.Errorf("%s: preconditionTemperature must be LOW, MEDIUM, HIGH or OFF, not %q", where, fordapi.Clip(s.Temp, 20))
			case s.At == nil || s.At.Hours == nil || s.At.Minutes == nil || *s.At.Hours < 0 || *s.At.Hours > 23 || *s.At.Minutes < 0 || *s.At.Minutes > 59:
				return nil, fmt.Errorf(`%s: timeOfDay must be {"hours":0-23,"minutes":0-59}`, where)
			}
			list = append(list, map[string]any{"locationId": s.Location, "scheduleId": s.ID, "scheduleStatus": s.Status,
				"preconditionTemperature": s.Temp, "timeOfDay": map[string]any{"hours": *s.At.Hours, "minutes": *s.At.Minutes}})
		}
		out = append(out, map[string]any{"dayOfWeek": d.Day, "schedules": list})
	}
	return map[string]any{"departureSchedules": out, "isDepartureTimeEnabled": true}, nil
}

// dcPowerLimits are the DC power limits ha-fordpass offers (its select,
// const_tags.py: "values are 50, 60, 70, 80, 85, 90, 95 & 100").
var dcPowerLimits = []int{50, 60, 70, 80, 85, 90, 95, 100}

// dcPowerLimitOptions takes the DC power limit, one of dcPowerLimits.
func dcPowerLimitOptions(options map[string]json.RawMessage) (map[string]any, error) {
	v, err := wholeValue(options, "charge_dc_power_limit", "80", "50, 60, 70, 80, 85, 90, 95 or 100",
		func(v int) bool { return slices.Contains(dcPowerLimits, v) })
	if err != nil {
		return nil, err
	}
	return map[string]any{"chargeSettings": map[string]any{"globalDCPowerLimit": v}}, nil
}

// enabledKey is the key under which the on/off commands' options keep
// the choice; it is not sent to Ford.
const enabledKey = "enabled"

// enabledOption is the options of an on/off command: enabled, true or
// false, kept under enabledKey for the command's fordFor or direct call.
func enabledOption(command string) func(map[string]json.RawMessage) (map[string]any, error) {
	return func(options map[string]json.RawMessage) (map[string]any, error) {
		on, err := enabled(options, command)
		if err != nil {
			return nil, err
		}
		return map[string]any{enabledKey: on}, nil
	}
}

// onOff picks Ford's command type of an on/off command: on for enabled
// true, off for false.
func onOff(on, off string) func(map[string]any) string {
	return func(props map[string]any) string {
		if props[enabledKey] == true {
			return on
		}
		return off
	}
}

// deleteMessagesOptions takes latest: true (only the newest) or false.
func deleteMessagesOptions(options map[string]json.RawMessage) (map[string]any, error) {
	latest := false
	if raw, ok := options["latest"]; ok && json.Unmarshal(raw, &latest) != nil {
		return nil, fmt.Errorf(`delete_messages takes latest, true or false: {"command":"delete_messages","latest":true}, not %s`, fordapi.Clip(string(raw), 20))
	}
	return map[string]any{"latest": latest}, nil
}

// autoUpdateOptions takes enabled: true or false, as Ford's ASUState.
func autoUpdateOptions(options map[string]json.RawMessage) (map[string]any, error) {
	on, err := enabled(options, "auto_updates")
	if err != nil {
		return nil, err
	}
	return map[string]any{"ASUState": map[bool]string{true: "ON", false: "OFF"}[on]}, nil
}

// enabled reads a command's "enabled": true or false.
func enabled(options map[string]json.RawMessage, command string) (bool, error) {
	var on bool
	if raw, ok := options["enabled"]; !ok || json.Unmarshal(raw, &on) != nil {
		return false, fmt.Errorf(`%s needs enabled, true or false: {"command":%q,"enabled":false}`, command, command)
	}
	return on, nil
}

// fordType is Ford's command type for these options.
func (c *commandSpec) fordType(props map[string]any) string {
	if c.fordFor != nil {
		return c.fordFor(props)
	}
	return c.ford
}

// hornDurations are the lengths, in seconds, Ford sounds the horn and
// flashes the lights (ha-fordpass offers the same three).
var hornDurations = []int{1, 3, 5}

// hornOptions takes an optional duration (3 s unless given).
func hornOptions(options map[string]json.RawMessage) (map[string]any, error) {
	d := 3
	if raw, ok := options["duration"]; ok && (json.Unmarshal(raw, &d) != nil || !slices.Contains(hornDurations, d)) {
		return nil, fmt.Errorf("the horn's duration must be 1, 3 or 5 (seconds), not %s", fordapi.Clip(string(raw), 20))
	}
	return map[string]any{"duration": d}, nil
}

// isEV says whether Ford lists the car as electric (battery or plug-in).
func isEV(v fordapi.Vehicle) bool { return v.EV }

// setWord is an effect that shows a field's new word.
func setWord(field, word string) func(*fordapi.Telemetry, map[string]any) *fordapi.Telemetry {
	return func(t *fordapi.Telemetry, _ map[string]any) *fordapi.Telemetry {
		return t.With(field, fordapi.Word(word))
	}
}

// commandNamed is the row of a command name (nil for an unknown one).
func commandNamed(name string) *commandSpec {
	for i := range commandSpecs {
		if commandSpecs[i].name == name {
			return &commandSpecs[i]
		}
	}
	return nil
}

// commandNames lists the MQTT names, in the table's order.
var commandNames = func() []string {
	out := make([]string, len(commandSpecs))
	for i, c := range commandSpecs {
		out[i] = c.name
	}
	return out
}()

// Commands are the names of every command, in the table's order (the
// add-on's options and env.example are checked against them).
func Commands() []string { return slices.Clone(commandNames) }

// OpeningCommands are the commands that open the car or start it (doctor
// warns when anyone on an open broker may send them).
func OpeningCommands() []string {
	var out []string
	for _, c := range commandSpecs {
		if c.opens {
			out = append(out, c.name)
		}
	}
	return out
}

// runsOn says whether a car can run the command: the capability its row
// names is listed for the car, and its further test passes.
func (c *commandSpec) runsOn(v fordapi.Vehicle) bool {
	return (c.capability == "" || v.Can.Has(c.capability)) && (c.can == nil || c.can(v))
}

// offered says whether a car with these fields gets the command (reports).
func (c *commandSpec) offered(fields []string) bool {
	return c.reports == "" || slices.Contains(fields, c.reports)
}
