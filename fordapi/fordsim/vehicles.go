package fordsim

import (
	"fmt"
	"time"
)

// VIN returns the deterministic VIN of simulated vehicle i (1-based): odd
// numbers are petrol F-150 pickups, even numbers are Mustang Mach-E EVs.
func VIN(i int) string {
	if i%2 == 1 {
		return fmt.Sprintf("1FTEW1EP%09d", i)
	}
	return fmt.Sprintf("3FMTK3SU%09d", i)
}

type vehicle struct {
	vin     string
	account int // the account the car is on (1 with one account)
	// transmission is the profile's transmissionIndicator: "A"
	// (automatic), "M" for every third car (a manual gearbox).
	transmission string
	nickname     string
	model        string
	year         string
	engine       string
	ev           bool
	// locations are an electric car's saved charging locations, in the
	// shape of Ford's preferred-charge-times entries (nil: not made yet).
	locations []map[string]any
	doc       map[string]any // telemetry record in Ford's shape
	subs      map[chan []byte]struct{}
	// pending holds metrics the car has but the cloud has not seen yet
	// (PATCH /_sim/vehicles/VIN?at=refresh): the next statusRefresh brings
	// them, inside its success state, as Ford's does.
	pending map[string]any
	// climate is the remote climate profile (nil: the car has none);
	// zoneLighting says whether the car has zone lighting, zoneLights
	// what it shows ("off" or a zone).
	climate      []climatePref
	seats        string // the profile's driverHeatedSeat
	zoneLighting bool
	zoneLights   string
}

// newVehicle makes simulated car i with a record in the shapes of real
// captures (see the README's "Real Ford data"): every metric with its
// updateTime and oemCorrelationId, heading as an object, the outside
// temperature as outsideTemperature, dashboard indicators as booleans, and
// door-lock arrays with ALL_DOORS beside the doors. Odd cars are F-150
// pickups whose tailgates have mechanical latches (reported UNKNOWN), even
// cars are battery-electric Mach-Es with the full set of xevBattery
// figures.
// targetSoCKey and currentLimitKey are the custom metrics of the AC charge
// target and current limit.
const (
	targetSoCKey    = "aui:signal:00000000-0000-4000-8000-00000000c0de:custom:global-ac-target-soc"
	currentLimitKey = "aui:signal:00000000-0000-4000-8000-00000000c1de:custom:global-ac-current-limit"
	dcPowerLimitKey = "aui:signal:00000000-0000-4000-8000-00000000c2de:custom:global-dc-power-limit"
)

func newVehicle(i int, now time.Time) *vehicle {
	v := &vehicle{vin: VIN(i), subs: map[chan []byte]struct{}{}, zoneLights: "off", transmission: "A"}
	if i%3 == 0 {
		v.transmission = "M"
	}
	ts := now.UTC().Format(time.RFC3339)
	corr := fmt.Sprint(61000 + i)
	metric := func(val any) map[string]any {
		return map[string]any{"updateTime": ts, "oemCorrelationId": corr, "value": val}
	}
	entry := func(val any, kv ...string) map[string]any {
		e := metric(val)
		for j := 0; j+1 < len(kv); j += 2 {
			e[kv[j]] = kv[j+1]
		}
		return e
	}
	indicator := func(code string) map[string]any {
		return map[string]any{"updateTime": ts, "oemCorrelationId": corr, "value": false, "additionalInfo": code}
	}
	m := map[string]any{
		"odometer":                  metric(12345.6 + float64(i)),
		"batteryStateOfCharge":      entry(88.0, "vehicleBattery", "PRIMARY_BATTERY"),
		"batteryVoltage":            entry(12.6, "vehicleBattery", "PRIMARY_BATTERY"),
		"ignitionStatus":            metric("OFF"),
		"alarmStatus":               map[string]any{"updateTime": ts, "oemCorrelationId": corr, "tags": map[string]any{"ALARM_SOURCE": "UNKNOWN"}, "value": "ARMED"},
		"remoteStartCountdownTimer": metric(0.0),
		"speed":                     metric(0.0),
		"gearLeverPosition":         metric("PARK"),
		"outsideTemperature":        metric(18.0),
		"hoodStatus":                metric("CLOSED"),
		"heading":                   metric(map[string]any{"heading": 99.1, "uncertainty": 0.0, "detectionType": "HEADING_RAW_GNSS"}),
		"position": metric(map[string]any{
			"location":            map[string]any{"lat": 42.3006 + float64(i)/1000, "lon": -83.2312, "alt": 180.0},
			"gpsCoordinateMethod": "GPS", "gpsDimension": "3D_FIX"}),
		"doorLockStatus": []any{
			entry("LOCKED", "vehicleDoor", "ALL_DOORS"),
			entry("LOCKED", "vehicleDoor", "UNSPECIFIED_FRONT", "vehicleOccupantRole", "DRIVER", "vehicleSide", "DRIVER"),
		},
		"doorStatus": []any{
			entry("CLOSED", "vehicleDoor", "UNSPECIFIED_FRONT", "vehicleOccupantRole", "DRIVER", "vehicleSide", "DRIVER"),
			entry("CLOSED", "vehicleDoor", "UNSPECIFIED_FRONT", "vehicleOccupantRole", "PASSENGER", "vehicleSide", "PASSENGER"),
			entry("CLOSED", "vehicleDoor", "REAR_LEFT", "vehicleOccupantRole", "PASSENGER", "vehicleSide", "UNKNOWN"),
			entry("CLOSED", "vehicleDoor", "REAR_RIGHT", "vehicleOccupantRole", "PASSENGER", "vehicleSide", "UNKNOWN"),
		},
		"windowStatus": []any{
			window("UNSPECIFIED_FRONT", "DRIVER"), window("UNSPECIFIED_FRONT", "PASSENGER"),
			window("UNSPECIFIED_REAR", "DRIVER"), window("UNSPECIFIED_REAR", "PASSENGER"),
		},
		"tirePressure": []any{
			entry(250.0, "vehicleWheel", "FRONT_LEFT"), entry(251.0, "vehicleWheel", "FRONT_RIGHT"),
			entry(248.0, "vehicleWheel", "REAR_LEFT"), entry(249.0, "vehicleWheel", "REAR_RIGHT"),
		},
		"indicators": map[string]any{
			"malfunctionIndicator": indicator("600E26"), "lowWasherFluid": indicator("600E19"),
			"lowBrakeFluid": indicator("600F16"), "laneKeepingAid": indicator("600F24"),
		},
		"acceleration": metric(map[string]any{"x": 0.0, "y": 0.0, "z": 0.0, "sensorType": "ACCELEROMETER_DATA"}),
		// The car's settings, where ha-fordpass reads automatic software
		// updates (fordpass_handler.py, get_auto_updates_state).
		"configurations": map[string]any{"automaticSoftwareUpdateOptInSetting": metric("ON")},
	}
	states := map[string]any{}
	if i%2 == 1 {
		v.nickname, v.model, v.year, v.engine = fmt.Sprintf("Truck %d", i), "F-150", "2023", "ICE"
		v.zoneLighting = true
		m["fuelLevel"] = metric(63.2)
		m["fuelRange"] = metric(410.0)
		m["engineCoolantTemp"] = metric(41.0)
		m["engineSpeed"] = metric(0) // an integer, as the captures have it
		m["oilLifeRemaining"] = metric(72.0)
		m["indicators"].(map[string]any)["lowEngineOilPressure"] = indicator("600E17")
		m["doorStatus"] = append(m["doorStatus"].([]any),
			entry("CLOSED", "vehicleDoor", "TAILGATE", "vehicleOccupantRole", "PASSENGER"),
			entry("CLOSED", "vehicleDoor", "INNER_TAILGATE", "vehicleOccupantRole", "PASSENGER"))
		mechanical := func(door string) map[string]any {
			e := entry("UNKNOWN", "vehicleDoor", door, "vehicleOccupantRole", "UNKNOWN", "vehicleSide", "UNKNOWN")
			e["tags"] = map[string]any{"DOOR_LATCH_TYPE": "MECHANICAL"}
			return e
		}
		m["doorLockStatus"] = append([]any{mechanical("TAILGATE"), mechanical("INNER_TAILGATE")}, m["doorLockStatus"].([]any)...)
	} else {
		v.nickname, v.model, v.year, v.engine, v.ev = fmt.Sprintf("Mach-E %d", i), "Mustang Mach-E", "2024", "BEV", true
		// Every second Mach-E (cars 4, 8, …) has seats that heat only and
		// no heated steering wheel.
		v.climate, v.seats = defaultClimate(), "Heat with Vent"
		if i%4 == 0 {
			v.seats = "Heat Only"
		}
		m["xevBatteryStateOfCharge"] = metric(78.5)
		m["xevBatteryActualStateOfCharge"] = metric(70.12)
		m["xevBatteryRange"] = metric(312.0)
		m["xevBatteryCapacity"] = metric(88.0)
		m["xevBatteryEnergyRemaining"] = metric(61.7)
		m["xevBatteryTemperature"] = metric(21.0)
		m["xevBatteryVoltage"] = metric(391.5)
		m["xevBatteryIoCurrent"] = metric(0.080078125)
		m["xevBatteryChargerVoltageOutput"] = metric(0.0)
		m["xevBatteryChargerCurrentOutput"] = metric(0.0)
		m["xevPlugChargerStatus"] = metric("DISCONNECTED")
		m["xevBatteryChargeDisplayStatus"] = metric("NOT_READY")
		m["xevBatteryTimeToFullCharge"] = metric(0.0)
		// The car's own signals, keyed as Ford keys them; the AC charge
		// target is what charge_target sets.
		m["customMetrics"] = map[string]any{targetSoCKey: metric(90.0), currentLimitKey: metric(48.0), dcPowerLimitKey: metric(100.0)}
		m["configurations"].(map[string]any)["xevDepartureSchedulesSetting"] = departureSetting(true, ts)
		// The last software update, installed (states.deployment, as
		// ha-fordpass fordpass_handler.py reads it).
		states["deployment"] = map[string]any{"commandId": fmt.Sprintf("ota-%d", i), "timestamp": ts,
			"value": map[string]any{"fromState": "deploying", "toState": "success"}}
	}
	events := map[string]any{}
	if v.zoneLighting {
		events = zoneEvent(v.zoneLights, now)
	}
	v.doc = map[string]any{"updateTime": ts, "vehicleId": fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "vin": v.vin,
		"metrics": m, "states": states, "events": events}
	return v
}

// departureSetting is an EV's departure times in the shape ha-fordpass
// reads (fordpass_handler.py): one location with a weekday schedule, on or
// off.
func departureSetting(on bool, ts string) map[string]any {
	status := map[bool]string{true: "ON", false: "OFF"}[on]
	return map[string]any{"updateTime": ts, "value": map[string]any{"departureScheduleFeatureStatus": status,
		"departureLocations": []any{map[string]any{"locationId": 0, "departureSchedules": []any{
			map[string]any{"scheduleStatus": status, "schedule": map[string]any{"weeklySchedule": map[string]any{"dayOfWeek": "MONDAY", "timeOfDay": "07:30"}}},
		}}}}}
}

// departuresFrom is the setting an updateDepartureTimes command's
// schedules make, in the shape departureSetting has: the schedules by
// location, each with its day and time (ha-fordpass reads timeOfDay as
// "HH:MM" in LOCAL_TIME).
func departuresFrom(props map[string]any, ts string) map[string]any {
	byLoc := map[string][]any{}
	var order []string
	locID := map[string]any{}
	days, _ := props["departureSchedules"].([]any)
	for _, d := range days {
		day, _ := d.(map[string]any)
		list, _ := day["schedules"].([]any)
		for _, s := range list {
			sch, _ := s.(map[string]any)
			at, _ := sch["timeOfDay"].(map[string]any)
			h, _ := at["hours"].(float64)
			mi, _ := at["minutes"].(float64)
			key := fmt.Sprint(sch["locationId"])
			if _, ok := byLoc[key]; !ok {
				order = append(order, key)
				locID[key] = sch["locationId"]
			}
			byLoc[key] = append(byLoc[key], map[string]any{"scheduleId": sch["scheduleId"], "scheduleStatus": sch["scheduleStatus"],
				"preconditionTemperature": sch["preconditionTemperature"],
				"schedule":                map[string]any{"timeZone": "LOCAL_TIME", "weeklySchedule": map[string]any{"dayOfWeek": day["dayOfWeek"], "timeOfDay": fmt.Sprintf("%02d:%02d", int(h), int(mi))}}})
		}
	}
	locations := []any{}
	for _, k := range order {
		locations = append(locations, map[string]any{"locationId": locID[k], "departureSchedules": byLoc[k]})
	}
	return map[string]any{"updateTime": ts, "value": map[string]any{"departureScheduleFeatureStatus": "ON", "departureLocations": locations}}
}

func window(pos, side string) map[string]any {
	return map[string]any{"vehicleWindow": pos, "vehicleSide": side,
		"value": map[string]any{"doubleRange": map[string]any{"lowerBound": 0.0, "upperBound": 0.0}}}
}

// profile is the vehicle's entries in the expdashboard answer: the F-150
// has four lighting zones, the Mach-E a remote climate profile.
func (v *vehicle) profile() (details, profile, caps map[string]any) {
	details = map[string]any{"VIN": v.vin, "nickName": v.nickname}
	zones := "0"
	if v.zoneLighting {
		zones = "4"
	}
	profile = map[string]any{"VIN": v.vin, "model": v.model, "year": v.year, "engineType": v.engine,
		"showEVBatteryLevel": v.ev, "transmissionIndicator": v.transmission, "remoteClimateControl": v.climate != nil, "numberOfLightingZones": zones}
	if v.climate != nil {
		profile["driverHeatedSeat"], profile["heatedSteeringWheel"] = v.seats, v.seats == "Heat with Vent"
	}
	caps = map[string]any{"VIN": v.vin, "remoteLock": "Display", "remoteStart": "Display", "remotePanicAlarm": !v.ev, "zoneLighting": false,
		"departureTimes": v.ev}
	if v.zoneLighting {
		// The trucks have zone lighting, a trailer light check and
		// guard mode.
		caps["zoneLighting"], caps["trailerLightCheck"], caps["guardMode"] = "Display", "Display", "Display"
	}
	return details, profile, caps
}
