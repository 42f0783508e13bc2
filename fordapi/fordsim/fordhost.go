package fordsim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Ford-host commands: the remote climate profile on the vehicle host and
// zone lighting on the MPS host, called with the FordPass token
// (FORDPASS-API.md §2.3 and §3.3). Each answers 200 and reports no command
// id; the simulator records each in Stats.Commands (types climateProfile,
// zoneLightsOn, zoneLightsOff, zoneLightsZone).

// climateSeatValues are the values a seat preference takes.
var climateSeatValues = []string{"Off", "Heated1", "Heated2", "Heated3", "Cooled1", "Cooled2", "Cooled3"}

// defaultClimate is the profile a car with remote climate starts with: the
// preferences ha-fordpass lists (fordpass_bridge.py, req_remote_climate).
func defaultClimate() []climatePref {
	return []climatePref{
		{"RccHeatedWindshield_Rq", "Off"}, {"RccRearDefrost_Rq", "Off"}, {"RccHeatedSteeringWheel_Rq", "Off"},
		{"RccLeftFrontClimateSeat_Rq", "Off"}, {"RccLeftRearClimateSeat_Rq", "Off"},
		{"RccRightFrontClimateSeat_Rq", "Off"}, {"RccRightRearClimateSeat_Rq", "Off"},
		{"SetPointTemp_Rq", "22_0"},
	}
}

type climatePref struct {
	Type  string `json:"preferenceType"`
	Value string `json:"preferenceValue"`
}

// validClimate says whether Ford would take a preference's value.
func validClimate(p climatePref) bool {
	switch p.Type {
	case "SetPointTemp_Rq":
		if strings.EqualFold(p.Value, "LO") || strings.EqualFold(p.Value, "HI") {
			return true
		}
		for t := 160; t <= 300; t += 5 {
			if p.Value == formatTemp(t) {
				return true
			}
		}
		return false
	case "RccHeatedWindshield_Rq", "RccRearDefrost_Rq", "RccHeatedSteeringWheel_Rq":
		return p.Value == "On" || p.Value == "Off"
	}
	return slices.Contains(climateSeatValues, p.Value)
}

// formatTemp writes tenths of a degree as Ford does: 215 is "21_5".
func formatTemp(tenths int) string {
	return fmt.Sprintf("%d_%d", tenths/10, tenths%10)
}

// fordHostAuth checks a call to Ford's own hosts: the Application-Id and
// the FordPass token; false when refused (the answer written). s.mu held.
func (s *Sim) fordHostAuth(w http.ResponseWriter, r *http.Request) bool {
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

// fordHostCar reads the body's vin and checks the FordPass token; nil when
// refused (the answer written). s.mu held.
func (s *Sim) fordHostCar(w http.ResponseWriter, r *http.Request, vin string) *vehicle {
	if !s.fordHostAuth(w, r) {
		return nil
	}
	v, ok := s.vehicles[vin]
	if !ok || v.account != s.owner[r.Header.Get("auth-token")].account {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "FORBIDDEN", "message": "USER IS NOT AUTHORIZED TO PERFORM THIS OPERATION"})
		return nil
	}
	return v
}

// climateProfile answers a car's remote climate profile (empty for a car
// without remote climate).
func (s *Sim) climateProfile(w http.ResponseWriter, r *http.Request) {
	var body struct {
		VIN string `json:"vin"`
	}
	decodeBody(r, &body)
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.fordHostCar(w, r, body.VIN)
	if v == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rccUserProfiles": slices.Clone(v.climate)})
}

// climateUpdate writes a car's profile: every preference must be one the
// profile has, with a value Ford takes. The car reports it as the state
// publishProfilePreferencesR2Command.
func (s *Sim) climateUpdate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		VIN   string        `json:"vin"`
		Flag  string        `json:"crccStateFlag"`
		Prefs []climatePref `json:"userPreferences"`
	}
	ok := decodeBody(r, &body)
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.fordHostCar(w, r, body.VIN)
	if v == nil {
		return
	}
	bad := !ok || v.climate == nil || body.Flag != "On" || len(body.Prefs) == 0
	for _, p := range body.Prefs {
		// A car with no profile yet takes a whole new one.
		if !validClimate(p) || len(v.climate) > 0 && !slices.ContainsFunc(v.climate, func(q climatePref) bool { return q.Type == p.Type }) {
			bad = true
		}
	}
	if bad {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": 400, "message": "invalid remote climate profile"})
		return
	}
	v.climate = slices.Clone(body.Prefs)
	props := map[string]any{}
	for _, p := range body.Prefs {
		props[p.Type] = p.Value
	}
	s.stats.Commands = append(s.stats.Commands, CommandStat{VIN: v.vin, Type: "climateProfile", At: s.now().UTC(), Properties: props})
	s.setCommandState(v, "publishProfilePreferencesR2", token("")[:32], "", "SUCCESS")
	writeJSON(w, http.StatusOK, map[string]any{"status": 200})
}

// zoneLights turns zone lighting on (PUT) or off (DELETE), or picks a zone
// (PUT on the zone's path), on a car that has it.
func (s *Sim) zoneLights(w http.ResponseWriter, r *http.Request) {
	var body struct {
		VIN string `json:"vin"`
	}
	ok := decodeBody(r, &body)
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.fordHostCar(w, r, body.VIN)
	if v == nil {
		return
	}
	zone := r.PathValue("zone")
	if !ok || !v.zoneLighting || (zone != "" && !slices.Contains([]string{"0", "1", "2", "3", "4"}, zone)) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"returnCode": 400, "returnMessage": "zone lighting request refused"})
		return
	}
	typ, props := "zoneLightsOn", map[string]any(nil)
	switch {
	case r.Method == http.MethodDelete:
		typ, v.zoneLights = "zoneLightsOff", "off"
	case zone != "":
		if v.zoneLights == "off" {
			writeJSON(w, http.StatusConflict, map[string]any{"returnCode": 409, "returnMessage": "zone lighting is off"})
			return
		}
		typ, props, v.zoneLights = "zoneLightsZone", map[string]any{"zone": zone}, zone
	default:
		v.zoneLights = "0"
	}
	s.stats.Commands = append(s.stats.Commands, CommandStat{VIN: v.vin, Type: typ, At: s.now().UTC(), Properties: props})
	events := zoneEvent(v.zoneLights, s.now())
	v.doc["events"] = events
	s.push(v, map[string]any{"events": events})
	writeJSON(w, http.StatusOK, map[string]any{"returnCode": 200, "returnMessage": "Success", "at": s.now().UTC().Format(time.RFC3339)})
}

// ClearClimateProfile leaves an EV with remote climate but no profile at
// Ford, as a car whose owner never made one in the app.
func (s *Sim) ClearClimateProfile(vin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vehicles[vin]; ok && v.climate != nil {
		v.climate = []climatePref{}
	}
}

// guardMode opens (PUT) or closes (DELETE) a car's guard mode session: the
// car in the X-Vin header, on a car that lists guard mode.
func (s *Sim) guardMode(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.fordHostCar(w, r, r.Header.Get("X-Vin"))
	if v == nil {
		return
	}
	if !v.zoneLighting { // the trucks list guard mode
		writeJSON(w, http.StatusBadRequest, map[string]any{"returnCode": 400, "returnMessage": "guard mode is not supported"})
		return
	}
	typ := map[string]string{http.MethodPut: "guardModeOn", http.MethodDelete: "guardModeOff"}[r.Method]
	s.stats.Commands = append(s.stats.Commands, CommandStat{VIN: v.vin, Type: typ, At: s.now().UTC()})
	writeJSON(w, http.StatusOK, map[string]any{"returnCode": 200, "returnMessage": "The request was Successful."})
}

// zoneEvent is the power mode event that tells zone lighting's state, in
// the shape ha-fordpass's comment records (fordpass_handler.py,
// get_zone_lighting_state): "off", or the zone lit ("0" all, "1" front, "2"
// rear, "3" driver, "4" passenger).
func zoneEvent(zone string, now time.Time) map[string]any {
	str := func(s string) map[string]any { return map[string]any{"stringValue": s} }
	oem := map[string]any{"ftcp_version": str("6.0.45"), "current_power_mode": str("Off"), "vehicle_common_correlation_id": map[string]any{}}
	if zone != "off" {
		oem["current_power_mode"] = str("On")
		for i := 1; i <= 4; i++ {
			on := "Off"
			if zone == "0" || zone == strconv.Itoa(i) {
				on = "On"
			}
			oem["zone_"+strconv.Itoa(i)+"_active_power_status"] = str(on)
		}
	}
	return map[string]any{"customEvents": map[string]any{"pttb-power-mode-change-event": map[string]any{
		"updateTime": now.UTC().Format(time.RFC3339), "oemData": oem}}}
}
