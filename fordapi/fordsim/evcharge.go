package fordsim

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// The electric cars' charge as a car has it, for the demo: a charge runs
// only while the car is plugged in, draws the charger's power, stops at the
// charge target, and leaves its state to the last charge command or plug
// change; the car drives only unplugged. (Ford's own word for a charge that
// reached its target is not in the sources; the simulator shows STOPPED.)

// chargerKW is the simulated wallbox: 230 V at 32 A.
const (
	chargerVolts = 230.0
	chargerAmps  = 32.0
	chargerKW    = chargerVolts * chargerAmps / 1000
	// kWhPerKm is what a Mach-E uses driving.
	kWhPerKm = 0.19
)

// errNotEV is the answer for a fuel car.
var errNotEV = errors.New("not an electric car")

// ev is an electric car's figures read from its record; s.mu held.
func (s *Sim) ev(vin string) (*vehicle, map[string]any, error) {
	v, ok := s.vehicles[strings.ToUpper(vin)]
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("no simulated vehicle %s", vin)
	case !v.ev:
		return nil, nil, fmt.Errorf("%s: %w", vin, errNotEV)
	}
	m, _ := v.doc["metrics"].(map[string]any)
	return v, m, nil
}

func value(m map[string]any, key string) any {
	obj, _ := m[key].(map[string]any)
	return obj["value"]
}

func number(m map[string]any, key string) float64 {
	f, _ := value(m, key).(float64)
	return f
}

// target is the car's AC charge target in percent.
func target(m map[string]any) float64 {
	custom, _ := m["customMetrics"].(map[string]any)
	obj, _ := custom[targetSoCKey].(map[string]any)
	if t, ok := obj["value"].(float64); ok {
		return t
	}
	return 100
}

// setMetrics writes metrics into the record and pushes them; s.mu held.
func (s *Sim) setMetrics(v *vehicle, values map[string]any) {
	ts := s.now().UTC().Format(time.RFC3339)
	m := v.doc["metrics"].(map[string]any)
	delta := map[string]any{}
	for k, val := range values {
		e := map[string]any{"updateTime": ts, "value": val}
		m[k], delta[k] = e, e
	}
	v.doc["updateTime"] = ts
	s.push(v, map[string]any{"metrics": delta, "updateTime": ts})
}

// Plugged says whether an electric car is plugged in.
func (s *Sim) Plugged(vin string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m, err := s.ev(vin)
	if err != nil {
		return false, err
	}
	return value(m, "xevPlugChargerStatus") != "DISCONNECTED", nil
}

// SetPlug plugs an electric car in, which starts its charge (a car on a
// charger without a schedule charges), or unplugs it, which ends the
// charge: nothing is drawn.
func (s *Sim) SetPlug(vin string, in bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, m, err := s.ev(vin)
	if err != nil {
		return err
	}
	if in {
		s.setMetrics(v, map[string]any{"xevPlugChargerStatus": "CONNECTED", "xevBatteryChargeDisplayStatus": "IN_PROGRESS"})
		s.chargeFigures(v, m)
		return nil
	}
	s.setMetrics(v, map[string]any{"xevPlugChargerStatus": "DISCONNECTED", "xevBatteryChargeDisplayStatus": "NOT_READY",
		"xevBatteryChargerVoltageOutput": 0.0, "xevBatteryChargerCurrentOutput": 0.0, "xevBatteryTimeToFullCharge": 0.0})
	return nil
}

// chargeFigures sets the charger's output and the time to full from the
// charge's state: the charger's power while it charges below the target,
// nothing otherwise; s.mu held.
func (s *Sim) chargeFigures(v *vehicle, m map[string]any) {
	soc, capacity := number(m, "xevBatteryStateOfCharge"), number(m, "xevBatteryCapacity")
	charging := value(m, "xevBatteryChargeDisplayStatus") == "IN_PROGRESS" && value(m, "xevPlugChargerStatus") != "DISCONNECTED"
	if !charging || soc >= target(m) || capacity <= 0 {
		s.setMetrics(v, map[string]any{"xevBatteryChargerVoltageOutput": 0.0, "xevBatteryChargerCurrentOutput": 0.0, "xevBatteryTimeToFullCharge": 0.0})
		return
	}
	minutes := math.Ceil((target(m) - soc) / 100 * capacity / chargerKW * 60)
	s.setMetrics(v, map[string]any{"xevBatteryChargerVoltageOutput": chargerVolts, "xevBatteryChargerCurrentOutput": chargerAmps,
		"xevBatteryTimeToFullCharge": minutes})
}

// ChargeTick lets d pass for an electric car's charge: while it charges,
// the charge level rises at the charger's power up to the target, where
// the charge stops; a paused or stopped charge, or an unplugged car, stays
// as it is.
func (s *Sim) ChargeTick(vin string, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, m, err := s.ev(vin)
	if err != nil {
		return err
	}
	if value(m, "xevBatteryChargeDisplayStatus") != "IN_PROGRESS" || value(m, "xevPlugChargerStatus") == "DISCONNECTED" {
		s.chargeFigures(v, m)
		return nil
	}
	soc, capacity, rng := number(m, "xevBatteryStateOfCharge"), number(m, "xevBatteryCapacity"), number(m, "xevBatteryRange")
	next := math.Min(soc+chargerKW*d.Hours()/capacity*100, target(m))
	values := map[string]any{"xevBatteryStateOfCharge": math.Round(next*10) / 10, "xevBatteryRange": math.Round(rng*next/math.Max(soc, 1)*10) / 10}
	if next >= target(m) {
		values["xevBatteryChargeDisplayStatus"] = "STOPPED"
	}
	s.setMetrics(v, values)
	s.chargeFigures(v, m)
	return nil
}

// Drive drives an electric car km kilometres, which it does only
// unplugged: the odometer grows and the charge level falls.
func (s *Sim) Drive(vin string, km float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, m, err := s.ev(vin)
	if err != nil {
		return err
	}
	if value(m, "xevPlugChargerStatus") != "DISCONNECTED" {
		return fmt.Errorf("%s is plugged in: unplug it before it drives", vin)
	}
	soc, capacity, rng := number(m, "xevBatteryStateOfCharge"), number(m, "xevBatteryCapacity"), number(m, "xevBatteryRange")
	next := math.Max(soc-km*kWhPerKm/capacity*100, 5)
	s.setMetrics(v, map[string]any{"odometer": math.Round((number(m, "odometer")+km)*10) / 10,
		"xevBatteryStateOfCharge": math.Round(next*10) / 10, "xevBatteryRange": math.Max(math.Round((rng-km)*10)/10, 0)})
	return nil
}
