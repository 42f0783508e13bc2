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
	Label  string // a person's name for it (a family's members are named by Member)
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
	// Hidden: a member of its family Home Assistant adds disabled (the
	// dashboard lamps no driver acts on).
	Hidden func(member string) bool
	// Member names a family's member for a person, in sentence case.
	Member func(member string) string
	Icon   string
	// SetBy is the command that sets a number ({"command":SetBy,
	// "value":…}); Home Assistant then offers a number entity from Min to
	// Max in Steps.
	SetBy          string
	Min, Max, Step float64
}

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
	{Name: "odometer", Label: "Odometer", Kind: KindNumber, Measures: "distance", Unit: "km", Digits: 1, Total: true, Icon: "mdi:counter"},
	{Name: "fuel_level", Label: "Fuel level", Kind: KindNumber, Unit: "%", Digits: 1, Icon: "mdi:gas-station"},
	{Name: "fuel_range", Label: "Fuel range", Kind: KindNumber, Measures: "distance", Unit: "km", Digits: 1, Icon: "mdi:map-marker-distance"},
	{Name: "battery_soc", Label: "Battery", Kind: KindNumber, Measures: "battery", Unit: "%", Digits: 1},
	{Name: "ev_range", Label: "Electric range", Kind: KindNumber, Measures: "distance", Unit: "km", Digits: 1, Icon: "mdi:map-marker-distance"},
	{Name: "time_to_full_charge", Label: "Time to full charge", Kind: KindNumber, Measures: "duration", Unit: "min", Digits: 0},
	// The charging target the car charges to; the charge_target command
	// sets it (SetBy).
	{Name: "charge_target", Label: "Charge target", Kind: KindNumber, Measures: "battery", Unit: "%", Digits: 0, Icon: "mdi:battery-charging-high",
		SetBy: "charge_target", Min: 50, Max: 100, Step: 10},
	{Name: "charge_plug", Label: "Charger plugged in", Kind: KindOnOff, Measures: "plug", On: "connected", Off: "disconnected"},
	{Name: "charging_status", Label: "Charging status", Kind: KindWord, Icon: "mdi:information-outline"},
	{Name: "battery_energy_remaining", Label: "Battery energy remaining", Kind: KindNumber, Measures: "energy_storage", Unit: "kWh", Digits: 2},
	{Name: "battery_capacity", Label: "Battery capacity", Kind: KindNumber, Measures: "energy_storage", Unit: "kWh", Digits: 2, Diagnostic: true},
	{Name: "battery_temperature", Label: "Battery temperature", Kind: KindNumber, Measures: "temperature", Unit: "°C", Digits: 1},
	// What the charger delivers: its output voltage times its output
	// current, where the car reports both.
	{Name: "charging_power", Label: "Charging power", Kind: KindNumber, Measures: "power", Unit: "W", Digits: 0},
	{Name: "battery_hv_voltage", Label: "High-voltage battery voltage", Kind: KindNumber, Measures: "voltage", Unit: "V", Digits: 1, Diagnostic: true},
	{Name: "battery_hv_current", Label: "High-voltage battery current", Kind: KindNumber, Measures: "current", Unit: "A", Digits: 2, Diagnostic: true},
	{Name: "battery_12v_soc", Label: "12 V battery", Kind: KindNumber, Measures: "battery", Unit: "%", Digits: 0, Diagnostic: true},
	{Name: "battery_12v_voltage", Label: "12 V battery voltage", Kind: KindNumber, Measures: "voltage", Unit: "V", Digits: 2, Diagnostic: true},
	{Name: "outside_temperature", Label: "Outside temperature", Kind: KindNumber, Measures: "temperature", Unit: "°C", Digits: 1},
	{Name: "engine_coolant_temperature", Label: "Engine coolant temperature", Kind: KindNumber, Measures: "temperature", Unit: "°C", Digits: 1},
	{Name: "engine_speed", Label: "Engine speed", Kind: KindNumber, Unit: "rpm", Digits: 0, Icon: "mdi:engine"},
	{Name: "oil_life", Label: "Oil life", Kind: KindNumber, Unit: "%", Digits: 0, Icon: "mdi:oil"},
	{Name: "heading", Label: "Heading", Kind: KindNumber, Unit: "°", Digits: 1, Angle: true, Icon: "mdi:compass"},
	{Name: "speed", Label: "Speed", Kind: KindNumber, Measures: "speed", Unit: "km/h", Digits: 1},
	{Name: "gear", Label: "Gear", Kind: KindWord, Icon: "mdi:information-outline"},
	{Name: "ignition", Label: "Ignition", Kind: KindOnOff, Measures: "power", On: "on", Off: "off"},
	{Name: "alarm", Label: "Alarm", Kind: KindAlarm, Words: []string{"armed", "disarmed", "triggered"}, Icon: "mdi:shield-car"},
	{Name: "remote_start", Label: "Remote start running", Kind: KindOnOff, Measures: "running", On: "on", Off: "off"},
	{Name: "remote_start_remaining", Label: "Remote start remaining", Kind: KindNumber, Measures: "duration", Unit: "s", Digits: 0, Icon: "mdi:timer-outline"},
	{Name: "lock", Label: "Lock", Kind: KindLock, Words: []string{"locked", "unlocked", "locking", "unlocking", "jammed"}, Icon: "mdi:car-key"},
	{Name: "door_", Family: true, Label: "door", Kind: KindOnOff, Measures: "door", On: "open", Off: "closed", Member: personName("door")},
	{Name: "window_", Family: true, Label: "window", Kind: KindOnOff, Measures: "window", On: "open", Off: "closed", Member: personName("window")},
	{Name: "tire_pressure_", Family: true, Label: "Tire pressure", Kind: KindNumber, Measures: "pressure", Unit: "kPa", Digits: 1, Icon: "mdi:car-tire-alert",
		Member: func(wheel string) string { return "Tire pressure " + strings.ReplaceAll(wheel, "_", " ") }},
	{Name: "indicator_", Family: true, Label: "Warning:", Kind: KindOnOff, Measures: "problem", On: "on", Off: "off", Hidden: minorLamp,
		Member: func(lamp string) string {
			if lamp == "malfunction_indicator" {
				return "Warning: check engine"
			}
			return "Warning: " + strings.ReplaceAll(lamp, "_", " ")
		}},
}

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

// digitsOf is the decimals a field's number (or a family's) is rounded to.
func digitsOf(field string) int {
	for _, s := range Fields {
		if s.Name == field || s.Family && strings.HasPrefix(field, s.Name) {
			return s.Digits
		}
	}
	return 0
}
