package fordsim

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// catOK checks the auth-token header; s.mu must be held.
func (s *Sim) catOK(r *http.Request) bool {
	exp, ok := s.access[r.Header.Get("auth-token")]
	return ok && s.now().Before(exp)
}

// bearerOK checks an Autonomic bearer token; s.mu must be held.
func (s *Sim) bearerOK(r *http.Request) bool {
	t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	exp, ok := s.auto[t]
	return ok && s.now().Before(exp)
}

// listServed answers for a vehicle list endpoint that Ford no longer serves
// (404), a missing Application-Id or a bad token, and says whether the
// handler goes on; s.mu held.
func (s *Sim) listServed(w http.ResponseWriter, r *http.Request, which string) bool {
	if s.listMode != "" && s.listMode != "both" && s.listMode != which {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found", "message": "No static resource."})
		return false
	}
	if !s.appIDOK(r) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Application-Id missing or unknown"})
		return false
	}
	if !s.catOK(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Invalid or Expired Token", "errorCode": "460"})
		return false
	}
	return true
}

func (s *Sim) vehicleList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.listServed(w, r, "expdashboard") {
		return
	}
	details, profiles, caps := []any{}, []any{}, []any{}
	for _, vin := range s.listed(s.owner[r.Header.Get("auth-token")].account) {
		d, p, c := s.vehicles[vin].profile()
		s.extraCapabilities(c)
		details, profiles, caps = append(details, d), append(profiles, p), append(caps, c)
	}
	writeJSON(w, http.StatusMultiStatus, map[string]any{
		"userVehicles":        map[string]any{"vehicleDetails": details},
		"vehicleProfile":      profiles,
		"vehicleCapabilities": caps,
	})
}

// extraCapabilities lists Options.Capabilities in a car's capabilities.
func (s *Sim) extraCapabilities(caps map[string]any) {
	for _, name := range s.opts.Capabilities {
		caps[name] = "Display"
	}
}

// garage is the newer app's vehicle list: a list of vehicles with their
// profile.
func (s *Sim) garage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.listServed(w, r, "garage") {
		return
	}
	list := []any{}
	for _, vin := range s.listed(s.owner[r.Header.Get("auth-token")].account) {
		v := s.vehicles[vin]
		_, p, c := v.profile()
		s.extraCapabilities(c)
		delete(p, "VIN")
		delete(c, "VIN")
		list = append(list, map[string]any{"vin": v.vin, "nickName": v.nickname, "profile": p, "capabilities": c})
	}
	writeJSON(w, http.StatusOK, list)
}

// listed is the VINs the vehicle lists of the account show; s.mu held.
func (s *Sim) listed(account int) []string {
	if s.listEmpty {
		return nil
	}
	var out []string
	for _, vin := range s.order {
		if !s.hidden[vin] && s.vehicles[vin].account == account {
			out = append(out, vin)
		}
	}
	return out
}

func (s *Sim) lookup(w http.ResponseWriter, r *http.Request) *vehicle {
	if !s.bearerOK(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "UNAUTHORIZED", "message": "provided token was expired"})
		return nil
	}
	t, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	v, ok := s.vehicles[r.PathValue("vin")]
	if !ok || v.account != s.owner[t].account {
		// Another account's car is as unknown as no car.
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "FORBIDDEN", "message": "USER IS NOT AUTHORIZED TO PERFORM THIS OPERATION"})
		return nil
	}
	return v
}

func (s *Sim) telemetry(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.restGone {
		writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "error": "not found", "message": "No static resource v1/telemetry/sources/fordpass/vehicles/" + r.PathValue("vin") + "."})
		return
	}
	v := s.lookup(w, r)
	if v == nil {
		return
	}
	writeJSON(w, http.StatusOK, v.doc)
}

// commandBeta takes a command of the newer path: a type and version Ford
// does not have answer 404 with Ford's body ("Command lock with version
// 1.0.1 not found"); a charging command needs an electric car.
func (s *Sim) commandBeta(w http.ResponseWriter, r *http.Request) {
	v, body, ok := s.commandRequest(w, r)
	if v == nil {
		return
	}
	typ := strings.TrimSuffix(body.Type, "Command")
	want, known := fordapi.CommandVersions[typ]
	if !ok || !known || want == "" || body.Type != fordapi.WireType(typ, want) || body.Version != want {
		writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "error": "not found",
			"message": fmt.Sprintf("Command %s with version %s not found", strings.TrimSuffix(body.Type, "Command"), body.Version)})
		return
	}
	if !v.ev {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 400, "error": "BAD_REQUEST", "message": "vehicle does not support " + body.Type})
		return
	}
	s.runCommand(w, v, typ, body.Properties)
}

func (s *Sim) command(w http.ResponseWriter, r *http.Request) {
	v, body, ok := s.commandRequest(w, r)
	if v == nil {
		return
	}
	if version, known := fordapi.CommandVersions[body.Type]; !ok || !known || version != "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "BAD_REQUEST", "message": "unknown command type"})
		return
	}
	s.runCommand(w, v, body.Type, body.Properties)
}

// commandBody is a command request's body (the version on the newer path
// only).
type commandBody struct {
	Type       string         `json:"type"`
	Version    string         `json:"version"`
	Properties map[string]any `json:"properties"`
}

// commandRequest reads a command request: its car (nil when refused, the
// answer written) and its body (ok false when unreadable).
func (s *Sim) commandRequest(w http.ResponseWriter, r *http.Request) (*vehicle, commandBody, bool) {
	var body commandBody
	ok := decodeBody(r, &body)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookup(w, r), body, ok
}

// runCommand answers a command Ford takes and plays its states out.
func (s *Sim) runCommand(w http.ResponseWriter, v *vehicle, typ string, props map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := token("")[:32]
	now := s.now()
	s.stats.Commands = append(s.stats.Commands, CommandStat{VIN: v.vin, Type: typ, At: now.UTC(), Properties: props})
	fail := s.opts.FailCommands || s.failNext[typ] > 0
	if s.failNext[typ] > 0 {
		s.failNext[typ]--
	}
	if typ != fordapi.CmdPanicCue {
		s.setCommandState(v, typ, id, "", "REQUEST_QUEUED")
		d := s.opts.CommandDelay
		s.after(d/2, func() { s.setCommandState(v, typ, id, "REQUEST_QUEUED", "RECEIVED_BY_DEVICE") })
		s.after(d, func() {
			if fail {
				s.setCommandState(v, typ, id, "RECEIVED_BY_DEVICE", "COMMAND_FAILED_ON_DEVICE")
				return
			}
			if typ == fordapi.CmdStatusRefresh {
				// Ford's answer to a refresh: the fresh metrics ride inside
				// the success state (states.statusRefreshCommand.value.metrics).
				s.setCommandStateWith(v, typ, id, "RECEIVED_BY_DEVICE", "success", s.refreshMetrics(v))
				return
			}
			s.applyCommand(v, typ, props)
			s.setCommandState(v, typ, id, "RECEIVED_BY_DEVICE", "SUCCESS")
		})
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "type": typ, "vin": v.vin, "status": "REQUEST_QUEUED"})
}

// after runs f under s.mu after d, unless the simulator was closed.
func (s *Sim) after(d time.Duration, f func()) {
	s.timers = append(s.timers, time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.closed {
			f()
		}
	}))
}

// setCommandState records a command's progress and pushes it; s.mu held.
func (s *Sim) setCommandState(v *vehicle, typ, id, from, to string) {
	s.setCommandStateWith(v, typ, id, from, to, nil)
}

// setCommandStateWith records a command state carrying metrics (nil: none)
// and pushes it; s.mu held.
func (s *Sim) setCommandStateWith(v *vehicle, typ, id, from, to string, metrics map[string]any) {
	ts := s.now().UTC().Format(time.RFC3339)
	entry := map[string]any{"commandId": id, "timestamp": ts, "value": map[string]any{"fromState": from, "toState": to}}
	if metrics != nil {
		entry["value"].(map[string]any)["metrics"] = metrics
	}
	if to == "COMMAND_FAILED_ON_DEVICE" {
		entry["value"].(map[string]any)["data"] = map[string]any{"commandError": map[string]any{
			"commandExecutionFailure": map[string]any{"oemErrorContext": "vehicle did not respond", "oemErrorCode": "SIM-1"}}}
	}
	states, _ := v.doc["states"].(map[string]any)
	if states == nil {
		states = map[string]any{}
		v.doc["states"] = states
	}
	states[typ+"Command"] = entry
	s.push(v, map[string]any{"states": map[string]any{typ + "Command": entry}})
}

// refreshMetrics is what a refresh learns from the car: the pending metrics
// (if a test set some) or the car's figures stamped anew. They are merged
// into the record and returned; s.mu held.
func (s *Sim) refreshMetrics(v *vehicle) map[string]any {
	ts := s.now().UTC().Format(time.RFC3339)
	m, _ := v.doc["metrics"].(map[string]any)
	if m == nil {
		m = map[string]any{}
		v.doc["metrics"] = m
	}
	fresh := v.pending
	v.pending = nil
	if fresh == nil {
		fresh = map[string]any{}
		for _, k := range []string{"odometer", "fuelLevel", "xevBatteryStateOfCharge", "outsideTemperature", "batteryVoltage"} {
			if cur, ok := m[k].(map[string]any); ok {
				c := maps.Clone(cur)
				c["updateTime"] = ts
				fresh[k] = c
			}
		}
	}
	for k, val := range fresh {
		if obj, ok := val.(map[string]any); ok {
			if _, has := obj["updateTime"]; !has {
				obj["updateTime"] = ts
			}
		}
		m[k] = val
	}
	v.doc["updateTime"] = ts
	return fresh
}

// applyCommand changes the car as the command would; s.mu held.
func (s *Sim) applyCommand(v *vehicle, typ string, props map[string]any) {
	ts := s.now().UTC().Format(time.RFC3339)
	m, _ := v.doc["metrics"].(map[string]any)
	if m == nil {
		m = map[string]any{}
		v.doc["metrics"] = m
	}
	delta := map[string]any{}
	switch typ {
	case fordapi.CmdLock, fordapi.CmdUnlock:
		state := "LOCKED"
		if typ == fordapi.CmdUnlock {
			state = "UNLOCKED"
		}
		// Every lockable door changes; mechanical latches stay UNKNOWN.
		old, _ := m["doorLockStatus"].([]any)
		list := make([]any, 0, max(len(old), 1))
		all := false
		for _, e := range old {
			obj, ok := e.(map[string]any)
			if !ok {
				continue
			}
			c := maps.Clone(obj)
			tags, _ := c["tags"].(map[string]any)
			if latch, _ := tags["DOOR_LATCH_TYPE"].(string); latch != "MECHANICAL" {
				c["value"], c["updateTime"] = state, ts
			}
			all = all || c["vehicleDoor"] == "ALL_DOORS"
			list = append(list, c)
		}
		if !all {
			list = append(list, map[string]any{"updateTime": ts, "vehicleDoor": "ALL_DOORS", "value": state})
		}
		delta["doorLockStatus"] = list
	case fordapi.CmdRemoteStart:
		delta["remoteStartCountdownTimer"] = map[string]any{"updateTime": ts, "value": 900.0}
	case fordapi.CmdCancelRemoteStart:
		delta["remoteStartCountdownTimer"] = map[string]any{"updateTime": ts, "value": 0.0}
	case fordapi.CmdStartCharge, fordapi.CmdPauseCharge, fordapi.CmdCancelCharge:
		// The words ha-fordpass knows for xevBatteryChargeDisplayStatus.
		word := map[string]string{fordapi.CmdStartCharge: "IN_PROGRESS", fordapi.CmdPauseCharge: "PAUSED", fordapi.CmdCancelCharge: "STOPPED"}[typ]
		delta["xevBatteryChargeDisplayStatus"] = map[string]any{"updateTime": ts, "value": word}
	case fordapi.CmdEnableDepartureTimes, fordapi.CmdDisableDepartureTimes:
		conf, _ := m["configurations"].(map[string]any)
		conf = maps.Clone(conf)
		if conf == nil {
			conf = map[string]any{}
		}
		conf["xevDepartureSchedulesSetting"] = departureSetting(typ == fordapi.CmdEnableDepartureTimes, ts)
		delta["configurations"] = conf
	case fordapi.CmdUpdateDepartureTimes:
		conf, _ := m["configurations"].(map[string]any)
		conf = maps.Clone(conf)
		if conf == nil {
			conf = map[string]any{}
		}
		conf["xevDepartureSchedulesSetting"] = departuresFrom(props, ts)
		delta["configurations"] = conf
	case fordapi.CmdASUSettings:
		state, _ := props["ASUState"].(string)
		conf, _ := m["configurations"].(map[string]any)
		conf = maps.Clone(conf)
		if conf == nil {
			conf = map[string]any{}
		}
		conf["automaticSoftwareUpdateOptInSetting"] = map[string]any{"updateTime": ts, "value": state}
		delta["configurations"] = conf
	case fordapi.CmdChargeSettings:
		cs, _ := props["chargeSettings"].(map[string]any)
		custom, _ := m["customMetrics"].(map[string]any)
		if custom == nil {
			custom = map[string]any{}
		}
		for setting, key := range map[string]string{"globalTargetSoc": targetSoCKey, "globalCurrentLimit": currentLimitKey, "globalDCPowerLimit": dcPowerLimitKey} {
			if value, ok := cs[setting].(float64); ok {
				custom[key] = map[string]any{"updateTime": ts, "value": value}
				delta["customMetrics"] = custom
			}
		}
	}
	for k, val := range delta {
		m[k] = val
	}
	v.doc["updateTime"] = ts
	s.push(v, map[string]any{"metrics": delta, "updateTime": ts})
	if v.ev && (typ == fordapi.CmdStartCharge || typ == fordapi.CmdPauseCharge || typ == fordapi.CmdCancelCharge || typ == fordapi.CmdChargeSettings) {
		s.chargeFigures(v, m) // power and time to full follow the charge
	}
}
