package fordapi

import "strings"

// A FieldSpec is one telemetry field as the bridge publishes it on
// P/VIN/<field>: what it is, in what unit, how precise. It is declared
// once, here: the parser rounds a number to its Digits, and Home
// Assistant's discovery derives the entity (platform, device class, state
// class, unit, precision) from what the field is, without naming fields.
type FieldSpec struct {
	Name string // the field; for a family, the prefix its members share ("door_")
	// Family: Name is a prefix, and a member's name goes on with what Ford
	// names (door_driver, tire_pressure_front_left, indicator_…).
	Family bool
	Label  string // a person's name for it (a family has none: Member names each member)
	Kind   Kind
	// Measures is what it measures, in Home Assistant's device classes
	// (distance, temperature, battery, door, plug, …; "" for none).
	Measures string
	Unit     string
	Digits   int  // decimals a number is rounded to, published and shown
	Total    bool // a number that only grows (the odometer)
	Angle    bool // a number of degrees on a circle
	// On and Off are an OnOff field's two words.
	On, Off string
	// Words are an Enum field's values (the lock's in this order: locked,
	// unlocked, locking, unlocking, jammed).
	Words []string
	// Diagnostic: of interest when something is wrong, not day to day.
	Diagnostic bool
	// Disabled: a member of its family Home Assistant adds disabled (the
	// dashboard lamps no driver acts on).
	Disabled func(member string) bool
	// Member names a family's member for a person, in sentence case.
	Member func(member string) string
	Icon   string
	// Without is a capability that leaves the field out of Home Assistant
	// (the gear lever on a manual gearbox, as ha-fordpass does).
	Without string
	// Details is the topic under the car (P/VIN/<Details>) whose JSON
	// Home Assistant shows as the entity's attributes ("" for none).
	Details string
	// Min, Max and Step are the values a command may set the number to
	// (a command's row says it sets the field; Home Assistant then offers
	// a number entity).
	Min, Max, Step float64

	// Elsewhere names the endpoint a field is read from when it is not the
	// telemetry record (the message centre).
	Elsewhere string
	// States are the record's states the field is made from, for a field
	// Telemetry makes from them rather than from a metric (ota_status).
	States []string
	// From are Ford's metrics the field is read from; where two give it,
	// the later one wins (outsideTemperature over ambientTemp).
	From []string
	// Ford maps Ford's words (upper case) to the field's; a word not in it
	// is lower-cased.
	Ford map[string]string
	// List reads a family from Ford's list-shaped metrics (doors,
	// windows, tires, the dashboard's lamps): the row says how, and no
	// reader code is written for it.
	List *List
	// read reads a metric of From in its own way (normalize.go); without
	// it (and without List), a KindNumber is read as a number (clamped to
	// 0-100 when it is a percentage) and any other kind as a word.
	read readMaker
}

// A List says how a family is read from one of Ford's list-shaped
// metrics: a list of entries, each naming its member and holding its
// "value" (doorStatus: [{"vehicleDoor":"UNSPECIFIED_FRONT",
// "vehicleSide":"DRIVER","value":"CLOSED"}]), or an object keyed by member
// (indicators: {"lowFuel":{"value":false}}). A member's field is the
// family's prefix and the member's name in lower snake case
// (door_driver, tire_pressure_front_left, indicator_low_fuel).
//
// A new list-shaped family is a row: seat belts would be
// {Name: "seatbelt_", Family: true, …, From: []string{"seatBeltStatus"},
// List: &List{Part: "vehicleOccupantRole", Value: …}}.
type List struct {
	// Part is the key naming the member in each entry (vehicleDoor,
	// vehicleWheel); "": the metric is an object keyed by member.
	Part string
	// Sided: the member is named from Part and vehicleSide together, as
	// Ford places doors and windows (UNSPECIFIED_REAR and DRIVER:
	// rear_driver).
	Sided bool
	// Value reads a member's value from its entry's "value"; false leaves
	// the member out of this update (Ford's INVALID, a missing value).
	Value func(f *FieldSpec, v any) (Value, bool)
	// Alone maps further metrics of From that hold one member as an
	// object ({"value":…}) to that member (hoodStatus: hood).
	Alone map[string]string
}

// The fields a command changes, named where the command table (bridge)
// and the lock's display refer to them.
const (
	FieldLock           = "lock"
	FieldRemoteStart    = "remote_start"
	FieldChargingStatus = "charging_status"
	FieldChargeTarget   = "charge_target"
	// FieldIgnition says whether the car is being driven (with one socket
	// per token, a car found running streams).
	FieldIgnition = "ignition"
	// FieldChargeCurrentLimit is the AC current limit in amperes.
	FieldChargeCurrentLimit = "charge_current_limit"
	// FieldChargeDCPowerLimit is the car's DC (fast) charging power limit,
	// in Ford's own figure.
	FieldChargeDCPowerLimit = "charge_dc_power_limit"
	// FieldChargeLocations is the number of an electric car's saved
	// charging locations (their targets are its attributes).
	FieldChargeLocations = "charge_locations"
	// FieldAutoUpdates says whether the car installs software updates by
	// itself (the auto_updates command turns it on or off).
	FieldAutoUpdates = "auto_updates"
	// FieldOTAStatus is the software update's state (Telemetry.OTA).
	FieldOTAStatus = "ota_status"
	// The energy manager's fields (evcc): plugged and charging are true
	// or false, the IEC status A, B or C, the finish time RFC 3339.
	FieldPlugged        = "plugged"
	FieldCharging       = "charging"
	FieldIECStatus      = "iec_status"
	FieldChargeFinishAt = "charge_finish_at"
	// FieldDepartureTimes says whether the car's departure times are on
	// (the departure_times command turns them on or off).
	FieldDepartureTimes = "departure_times"
	// FieldZoneLights is where the zone lighting is on (all, front, rear,
	// driver, passenger) or off, from the power mode event.
	FieldZoneLights = "zone_lights"
)

// Kind is what sort of value a field holds.
type Kind int

// The kinds of field.
const (
	KindNumber Kind = iota // a measurement in Unit
	KindOnOff              // one of two words (On, Off)
	KindEnum               // one of Words
	KindWord               // a word Ford chooses (gear, charging status)
	KindLock               // the lock's state (an Enum a command can change)
	KindAlarm              // the alarm's state (an Enum, and a safety on/off)
)

// Fields is every field the bridge publishes.
var Fields = []FieldSpec{
	{Name: "odometer", Label: "Odometer", Kind: KindNumber, Measures: "distance", Unit: "km", Digits: 1, Total: true, Icon: "mdi:counter", From: []string{"odometer"}},
	{Name: "fuel_level", Label: "Fuel level", Kind: KindNumber, Unit: "%", Digits: 1, Icon: "mdi:gas-station", From: []string{"fuelLevel"}},
	{Name: "fuel_range", Label: "Fuel range", Kind: KindNumber, Measures: "distance", Unit: "km", Digits: 1, Icon: "mdi:map-marker-distance", From: []string{"fuelRange"}},
	{Name: "battery_soc", Label: "Battery", Kind: KindNumber, Measures: "battery", Unit: "%", Digits: 1, From: []string{"xevBatteryStateOfCharge"}},
	// Ford's "actual" state of charge, beside the displayed battery_soc
	// (ha-fordpass shows it as batteryActualCharge).
	{Name: "battery_actual_soc", Label: "Battery actual charge", Kind: KindNumber, Measures: "battery", Unit: "%", Digits: 1, Diagnostic: true,
		From: []string{"xevBatteryActualStateOfCharge"}},
	{Name: "ev_range", Label: "Electric range", Kind: KindNumber, Measures: "distance", Unit: "km", Digits: 1, Icon: "mdi:map-marker-distance", From: []string{"xevBatteryRange"}},
	{Name: "time_to_full_charge", Label: "Time to full charge", Kind: KindNumber, Measures: "duration", Unit: "min", Digits: 0, From: []string{"xevBatteryTimeToFullCharge"}},
	// The charging target the car charges to (a command sets it).
	{Name: FieldChargeTarget, Label: "Charge target", Kind: KindNumber, Measures: "battery", Unit: "%", Digits: 0, Icon: "mdi:battery-charging-high",
		Min: 50, Max: 100, Step: 10, From: []string{"customMetrics"}, read: customMetric("global-ac-target-soc", 0, 100)},
	// The AC charging current the car draws at most (a command sets it;
	// ha-fordpass offers 5 to 48 A in steps of 1, const_tags.py).
	{Name: FieldChargeCurrentLimit, Label: "Charge current limit", Kind: KindNumber, Measures: "current", Unit: "A", Digits: 0, Icon: "mdi:current-ac",
		Min: 5, Max: 48, Step: 1, From: []string{"customMetrics"}, read: customMetric("global-ac-current-limit", 0, 100)},
	// The DC power limit (ha-fordpass fordpass_handler.py reads the custom
	// metric global-dc-power-limit; its select offers 50, 60, 70, 80, 85,
	// 90, 95 and 100, const_tags.py, with no unit). Home Assistant's number
	// steps by 10, which are all among them.
	{Name: FieldChargeDCPowerLimit, Label: "DC power limit", Kind: KindNumber, Digits: 0, Icon: "mdi:current-dc",
		Min: 50, Max: 100, Step: 10, From: []string{"customMetrics"}, read: customMetric("global-dc-power-limit", 0, 1000)},
	// The software update (ha-fordpass fordpass_handler.py: states.deployment,
	// else states.configurationUpdate, toState mapped as its
	// OTA_DEPLOYMENT_STATE_MAP does); made by Telemetry from the states, so
	// it has no metric.
	{Name: FieldOTAStatus, Label: "Software update", Kind: KindEnum, Words: otaStates, Diagnostic: true, Icon: "mdi:update", Details: otaDetails,
		States: []string{"deployment", "configurationUpdate"}},
	// The message centre's messages for the car, which the bridge reads
	// from another of Ford's endpoints (bridge/messages.go).
	{Name: "messages_unread", Label: "Messages", Kind: KindNumber, Icon: "mdi:message-text", Details: "messages",
		Elsewhere: "the message centre"},
	// Reads besides telemetry, now and then (bridge/extras.go): an
	// electric car's saved charging locations (FordPass), and the
	// FordConnect Query endpoints ioBroker.ford polls. Each shows Ford's
	// answer as its entity's attributes.
	{Name: FieldChargeLocations, Label: "Charging locations", Kind: KindNumber, Icon: "mdi:map-marker-radius", Details: "charge_location_list",
		Elsewhere: "preferred-charge-times (FordPass)"},
	{Name: "health_alerts", Label: "Health alerts", Kind: KindNumber, Icon: "mdi:car-wrench", Details: "health_alert_list",
		Elsewhere: "vehicle-health/alerts (FordConnect)"},
	{Name: "departure_schedules_read", Label: "Departure times read", Kind: KindWord, Diagnostic: true, Icon: "mdi:calendar-clock", Details: "departure_schedules",
		Elsewhere: "electric/departure-times (FordConnect)"},
	{Name: "charge_schedules_read", Label: "Charge schedules read", Kind: KindWord, Diagnostic: true, Icon: "mdi:calendar-sync", Details: "charge_schedules",
		Elsewhere: "electric/charge-schedules (FordConnect)"},
	// Zone lighting as the car reports it: only in an event, as ha-fordpass
	// fordpass_handler.py (get_zone_lighting_state) reads it.
	{Name: FieldZoneLights, Label: "Zone lights", Kind: KindEnum, Words: ZoneNames, Icon: "mdi:car-light-high",
		Elsewhere: "the events: customEvents pttb-power-mode-change-event"},
	{Name: FieldDepartureTimes, Label: "Departure times", Kind: KindOnOff, On: "on", Off: "off", Icon: "mdi:calendar-clock",
		Details: departureDetails, From: []string{"configurations"}, read: departureTimes},
	{Name: FieldAutoUpdates, Label: "Automatic software updates", Kind: KindOnOff, On: "on", Off: "off", Diagnostic: true, Icon: "mdi:cloud-arrow-down-outline",
		From: []string{"configurations"}, read: configuration("automaticSoftwareUpdateOptInSetting")},
	{Name: "charge_plug", Label: "Charger plugged in", Kind: KindOnOff, Measures: "plug", On: "connected", Off: "disconnected", From: []string{"xevPlugChargerStatus"}, Ford: plugWords},
	// For energy managers (evcc): the plug and the charge as true or false,
	// the IEC 61851 status they make (A unplugged, B plugged, C charging)
	// and when the charge ends, in RFC 3339.
	{Name: FieldPlugged, Label: "Plugged in", Kind: KindOnOff, On: "true", Off: "false", Diagnostic: true, Icon: "mdi:power-plug",
		From: []string{"xevPlugChargerStatus"}, Ford: pluggedWords, read: known},
	{Name: FieldCharging, Label: "Charging", Kind: KindOnOff, Measures: "battery_charging", On: "true", Off: "false",
		From: []string{"xevBatteryChargeDisplayStatus"}, Ford: chargingWords, read: known},
	{Name: FieldIECStatus, Label: "Charge status (IEC 61851)", Kind: KindEnum, Words: []string{"A", "B", "C"}, Diagnostic: true, Icon: "mdi:ev-plug-type2",
		Elsewhere: "made from plugged and charging"},
	{Name: FieldChargeFinishAt, Label: "Charge finishes at", Kind: KindWord, Icon: "mdi:clock-end",
		From: []string{"xevBatteryTimeToFullCharge"}, read: finishAt},
	{Name: FieldChargingStatus, Label: "Charging status", Kind: KindWord, Icon: "mdi:information-outline", From: []string{"xevBatteryChargeDisplayStatus"}},
	{Name: "battery_energy_remaining", Label: "Battery energy remaining", Kind: KindNumber, Measures: "energy_storage", Unit: "kWh", Digits: 2, From: []string{"xevBatteryEnergyRemaining"}},
	{Name: "battery_capacity", Label: "Battery capacity", Kind: KindNumber, Measures: "energy_storage", Unit: "kWh", Digits: 2, Diagnostic: true, From: []string{"xevBatteryCapacity"}},
	{Name: "battery_temperature", Label: "Battery temperature", Kind: KindNumber, Measures: "temperature", Unit: "°C", Digits: 1, From: []string{"xevBatteryTemperature"}},
	// What the charger delivers: its output voltage times its output
	// current, where the car reports both.
	{Name: "charging_power", Label: "Charging power", Kind: KindNumber, Measures: "power", Unit: "W", Digits: 0, From: []string{"xevBatteryChargerVoltageOutput", "xevBatteryChargerCurrentOutput"}, read: chargerPart},
	{Name: "battery_hv_voltage", Label: "High-voltage battery voltage", Kind: KindNumber, Measures: "voltage", Unit: "V", Digits: 1, Diagnostic: true, From: []string{"xevBatteryVoltage"}},
	{Name: "battery_hv_current", Label: "High-voltage battery current", Kind: KindNumber, Measures: "current", Unit: "A", Digits: 2, Diagnostic: true, From: []string{"xevBatteryIoCurrent"}},
	{Name: "battery_12v_soc", Label: "12 V battery", Kind: KindNumber, Measures: "battery", Unit: "%", Digits: 0, Diagnostic: true, From: []string{"batteryStateOfCharge"}},
	{Name: "battery_12v_voltage", Label: "12 V battery voltage", Kind: KindNumber, Measures: "voltage", Unit: "V", Digits: 2, Diagnostic: true, From: []string{"batteryVoltage"}},
	{Name: "outside_temperature", Label: "Outside temperature", Kind: KindNumber, Measures: "temperature", Unit: "°C", Digits: 1, From: []string{"ambientTemp", "outsideTemperature"}},
	{Name: "engine_coolant_temperature", Label: "Engine coolant temperature", Kind: KindNumber, Measures: "temperature", Unit: "°C", Digits: 1, From: []string{"engineCoolantTemp"}},
	{Name: "engine_speed", Label: "Engine speed", Kind: KindNumber, Unit: "rpm", Digits: 0, Icon: "mdi:engine", From: []string{"engineSpeed"}},
	{Name: "oil_life", Label: "Oil life", Kind: KindNumber, Unit: "%", Digits: 0, Icon: "mdi:oil", From: []string{"oilLifeRemaining"}},
	{Name: "heading", Label: "Heading", Kind: KindNumber, Unit: "°", Digits: 1, Angle: true, Icon: "mdi:compass", From: []string{"heading"}, read: heading},
	{Name: "speed", Label: "Speed", Kind: KindNumber, Measures: "speed", Unit: "km/h", Digits: 1, From: []string{"speed"}},
	{Name: "gear", Label: "Gear", Kind: KindWord, Icon: "mdi:information-outline", From: []string{"gearLeverPosition"}, Without: CapManualGearbox},
	{Name: FieldIgnition, Label: "Ignition", Kind: KindOnOff, Measures: "power", On: "on", Off: "off", From: []string{"ignitionStatus"}, Ford: ignitionWords},
	{Name: "alarm", Label: "Alarm", Kind: KindAlarm, Words: []string{"armed", "disarmed", "triggered"}, Icon: "mdi:shield-car", From: []string{"alarmStatus"}, Ford: alarmWords},
	{Name: FieldRemoteStart, Label: "Remote start running", Kind: KindOnOff, Measures: "running", On: "on", Off: "off", From: []string{"remoteStartCountdownTimer"}, read: remoteStart},
	{Name: "remote_start_remaining", Label: "Remote start remaining", Kind: KindNumber, Measures: "duration", Unit: "s", Digits: 0, Icon: "mdi:timer-outline", From: []string{"remoteStartCountdownTimer"}},
	{Name: FieldLock, Label: "Lock", Kind: KindLock, Words: []string{"locked", "unlocked", "locking", "unlocking", "jammed"}, Icon: "mdi:car-key", From: []string{"doorLockStatus"}, read: locks},
	{Name: "door_", Family: true, Kind: KindOnOff, Measures: "door", On: "open", Off: "closed", Member: personName("door"), From: []string{"doorStatus", "hoodStatus"},
		List: &List{Part: "vehicleDoor", Sided: true, Value: openUnlessClosed, Alone: map[string]string{"hoodStatus": "hood"}}},
	{Name: "window_", Family: true, Kind: KindOnOff, Measures: "window", On: "open", Off: "closed", Member: personName("window"), From: []string{"windowStatus"},
		List: &List{Part: "vehicleWindow", Sided: true, Value: openUnlessShut}},
	{Name: "tire_pressure_", Family: true, Kind: KindNumber, Measures: "pressure", Unit: "kPa", Digits: 1, Icon: "mdi:car-tire-alert",
		Member: func(wheel string) string { return "Tire pressure " + strings.ReplaceAll(wheel, "_", " ") }, From: []string{"tirePressure"},
		List: &List{Part: "vehicleWheel", Value: listNumber}},
	{Name: "indicator_", Family: true, Kind: KindOnOff, Measures: "problem", On: "on", Off: "off", Disabled: minorLamp,
		Member: func(lamp string) string {
			if lamp == "malfunction_indicator" {
				return "Warning: check engine"
			}
			return "Warning: " + strings.ReplaceAll(lamp, "_", " ")
		}, From: []string{"indicators"}, List: &List{Value: onWhenTrue}},
}

// Ford's words for the ignition, the alarm, the charge plug (ha-fordpass
// const_shared.py XEVPLUGCHARGER_STATES; it notes CHARGING and CHARGINGAC
// came from evcc's code) and the charge (XEVBATTERYCHARGEDISPLAY_STATES).
var (
	plugWords     = map[string]string{"CONNECTED": "connected", "DISCONNECTED": "disconnected", "CHARGING": "connected", "CHARGINGAC": "connected"}
	pluggedWords  = map[string]string{"CONNECTED": "true", "CHARGING": "true", "CHARGINGAC": "true", "DISCONNECTED": "false"}
	chargingWords = map[string]string{"IN_PROGRESS": "true", "NOT_READY": "false", "SCHEDULED": "false", "PAUSED": "false",
		"STOPPED": "false", "FAULT": "false", "STATION_NOT_DETECTED": "false"}
	ignitionWords = map[string]string{"ON": "on", "RUN": "on", "START": "on", "OFF": "off"}
	alarmWords    = map[string]string{
		"ARMED": "armed", "SET": "armed", "DISARMED": "disarmed", "NOT_SET": "disarmed", "NOTSET": "disarmed",
		"UNARMED": "disarmed", "TRIGGERED": "triggered", "ACTIVE": "triggered", "ALARM": "triggered",
	}
)

// personName names a door or window: "Driver door", "Rear left window"; the
// hood and the tailgates by their own name.
func personName(kind string) func(string) string {
	return func(part string) string {
		name := strings.ReplaceAll(part, "_", " ")
		name = strings.ToUpper(name[:1]) + name[1:]
		if part == "hood" || part == "tailgate" || part == "inner_tailgate" {
			return name
		}
		return name + " " + kind
	}
}

// minorLamp says whether a dashboard lamp is one a driver does not act on
// (its entity is added disabled): check engine, oil, tires, brakes,
// coolant, fuel, washer fluid, battery and airbag are the ones they do.
func minorLamp(member string) bool {
	for _, k := range []string{"malfunction_indicator", "check_engine", "low_engine_oil_pressure", "oil", "tire", "low_fuel",
		"low_brake_fluid", "brake", "coolant", "low_washer_fluid", "battery", "airbag"} {
		if strings.Contains(member, k) {
			return false
		}
	}
	return true
}

// SpecOf is the spec of a field, and for a family member what follows the
// family's prefix.
func SpecOf(field string) (spec FieldSpec, member string, ok bool) {
	for _, s := range Fields {
		if s.Family {
			if rest, found := strings.CutPrefix(field, s.Name); found && rest != "" {
				return s, rest, true
			}
		} else if s.Name == field {
			return s, "", true
		}
	}
	return FieldSpec{}, "", false
}
