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
	vin      string
	nickname string
	model    string
	year     string
	engine   string
	ev       bool
	doc      map[string]any // telemetry record in Ford's shape
	subs     map[chan []byte]struct{}
}

func newVehicle(i int, now time.Time) *vehicle {
	v := &vehicle{vin: VIN(i), subs: map[chan []byte]struct{}{}}
	ts := now.UTC().Format(time.RFC3339)
	metric := func(val any) map[string]any { return map[string]any{"updateTime": ts, "value": val} }
	m := map[string]any{
		"odometer":                  metric(12345.6 + float64(i)),
		"batteryStateOfCharge":      metric(88.0),
		"batteryVoltage":            map[string]any{"updateTime": ts, "vehicleBattery": "PRIMARY_BATTERY", "value": 12.6},
		"ignitionStatus":            metric("OFF"),
		"alarmStatus":               metric("ARMED"),
		"remoteStartCountdownTimer": metric(0.0),
		"speed":                     metric(0.0),
		"gearLeverPosition":         metric("PARK"),
		"ambientTemp":               metric(18.0),
		"hoodStatus":                metric("CLOSED"),
		"position": map[string]any{"updateTime": ts, "value": map[string]any{
			"location":            map[string]any{"lat": 42.3006 + float64(i)/1000, "lon": -83.2312, "alt": 180.0},
			"gpsCoordinateMethod": "GPS", "gpsDimension": "3D"}},
		"doorLockStatus": []any{
			map[string]any{"updateTime": ts, "vehicleDoor": "ALL_DOORS", "value": "LOCKED"},
		},
		"doorStatus": []any{
			map[string]any{"vehicleDoor": "UNSPECIFIED_FRONT", "vehicleSide": "DRIVER", "value": "CLOSED"},
			map[string]any{"vehicleDoor": "UNSPECIFIED_FRONT", "vehicleSide": "PASSENGER", "value": "CLOSED"},
			map[string]any{"vehicleDoor": "REAR_LEFT", "vehicleSide": "DRIVER", "value": "CLOSED"},
			map[string]any{"vehicleDoor": "REAR_RIGHT", "vehicleSide": "PASSENGER", "value": "CLOSED"},
		},
		"windowStatus": []any{
			window("UNSPECIFIED_FRONT", "DRIVER"), window("UNSPECIFIED_FRONT", "PASSENGER"),
			window("UNSPECIFIED_REAR", "DRIVER"), window("UNSPECIFIED_REAR", "PASSENGER"),
		},
		"tirePressure": []any{
			map[string]any{"vehicleWheel": "FRONT_LEFT", "value": 250.0},
			map[string]any{"vehicleWheel": "FRONT_RIGHT", "value": 251.0},
			map[string]any{"vehicleWheel": "REAR_LEFT", "value": 248.0},
			map[string]any{"vehicleWheel": "REAR_RIGHT", "value": 249.0},
		},
	}
	if i%2 == 1 {
		v.nickname, v.model, v.year, v.engine = fmt.Sprintf("Truck %d", i), "F-150", "2023", "ICE"
		m["fuelLevel"] = metric(63.2)
		m["fuelRange"] = metric(410.0)
		m["doorStatus"] = append(m["doorStatus"].([]any), map[string]any{"vehicleDoor": "TAILGATE", "value": "CLOSED"})
	} else {
		v.nickname, v.model, v.year, v.engine, v.ev = fmt.Sprintf("Mach-E %d", i), "Mustang Mach-E", "2024", "BEV", true
		m["xevBatteryStateOfCharge"] = metric(78.5)
		m["xevBatteryRange"] = metric(312.0)
		m["xevPlugChargerStatus"] = metric("DISCONNECTED")
		m["xevBatteryChargeDisplayStatus"] = metric("NOT_READY")
		m["xevBatteryTimeToFullCharge"] = metric(0.0)
	}
	v.doc = map[string]any{"updateTime": ts, "metrics": m, "states": map[string]any{}, "events": map[string]any{}}
	return v
}

func window(pos, side string) map[string]any {
	return map[string]any{"vehicleWindow": pos, "vehicleSide": side,
		"value": map[string]any{"doubleRange": map[string]any{"lowerBound": 0.0, "upperBound": 0.0}}}
}

// profile is the vehicle's entries in the expdashboard answer.
func (v *vehicle) profile() (details, profile, caps map[string]any) {
	details = map[string]any{"VIN": v.vin, "nickName": v.nickname}
	profile = map[string]any{"VIN": v.vin, "model": v.model, "year": v.year, "engineType": v.engine,
		"showEVBatteryLevel": v.ev, "transmissionIndicator": "A"}
	caps = map[string]any{"VIN": v.vin, "remoteLock": "Display", "remoteStart": "Display", "remotePanicAlarm": !v.ev}
	return details, profile, caps
}
