package fordsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
)

// chargeLocations makes an electric car's two saved charging locations:
// entries with the keys ha-fordpass reads and sends back
// (fordpass_handler.py, set_elev_target_charge_int). The values are the
// simulator's own; the second location's id is a number, as no source
// says which Ford uses.
func chargeLocations(v *vehicle) []map[string]any {
	entry := func(id any, name string, lat, lon float64, target int) map[string]any {
		return map[string]any{"vin": v.vin,
			"location": map[string]any{"id": id, "name": name, "type": "SAVED", "address": name + " Street 1, Cologne",
				"latitude": lat, "longitude": lon},
			"chargeProfile": map[string]any{"chargeMode": "VALUE_CHARGE", "targetSoc": target,
				"schedules": []any{map[string]any{"days": []any{"MONDAY"}, "startTime": "01:00", "endTime": "06:00"}}}}
	}
	return []map[string]any{entry("loc-home", "Home", 50.94, 6.96, 80), entry(2002, "Work", 50.95, 6.97, 90)}
}

// chargeLocationList answers every electric car's charging locations on
// the token's account, whatever the vin header says (a client keeps its
// car's own, as ha-fordpass does).
func (s *Sim) chargeLocationList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fordHostCar(w, r, r.Header.Get("vin")) == nil {
		return
	}
	account := s.owner[r.Header.Get("auth-token")].account
	vins := make([]string, 0, len(s.vehicles))
	for vin := range s.vehicles {
		vins = append(vins, vin)
	}
	sort.Strings(vins)
	out := []any{}
	for _, vin := range vins {
		v := s.vehicles[vin]
		if !v.ev || v.account != account {
			continue
		}
		if v.locations == nil {
			v.locations = chargeLocations(v)
		}
		for _, l := range v.locations {
			out = append(out, l)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// chargeLocationTarget changes one location's charge profile: the body
// must carry the location's six keys and the profile's charge mode,
// schedules and a target from 50 to 100, as ha-fordpass sends them.
func (s *Sim) chargeLocationTarget(w http.ResponseWriter, r *http.Request) {
	var body struct {
		VIN      string         `json:"vin"`
		Location map[string]any `json:"location"`
		Profile  map[string]any `json:"chargeProfile"`
	}
	decodeBody(r, &body)
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.fordHostCar(w, r, r.Header.Get("vin"))
	if v == nil {
		return
	}
	bad := func(msg string) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "BAD_REQUEST", "message": msg})
	}
	for _, k := range []string{"address", "id", "latitude", "longitude", "name", "type"} {
		if _, ok := body.Location[k]; !ok {
			bad("location." + k + " is required")
			return
		}
	}
	target, ok := body.Profile["targetSoc"].(float64)
	_, mode := body.Profile["chargeMode"]
	_, sched := body.Profile["schedules"]
	if !ok || !mode || !sched || target < 50 || target > 100 || body.VIN != v.vin {
		bad("chargeProfile needs chargeMode, schedules and a targetSoc from 50 to 100, and vin the car's")
		return
	}
	if v.locations == nil {
		v.locations = chargeLocations(v)
	}
	i := slices.IndexFunc(v.locations, func(l map[string]any) bool {
		id := l["location"].(map[string]any)["id"]
		return r.PathValue("id") == idString(id) && l["location"].(map[string]any)["name"] == body.Location["name"]
	})
	if i < 0 {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "NOT_FOUND", "message": "no such location"})
		return
	}
	profile := v.locations[i]["chargeProfile"].(map[string]any)
	profile["targetSoc"] = int(target)
	s.stats.Commands = append(s.stats.Commands, CommandStat{VIN: v.vin, Type: "updateChargeProfiles", At: s.now().UTC(),
		Properties: map[string]any{"location": r.PathValue("id"), "targetSoc": target}})
	writeJSON(w, http.StatusOK, map[string]any{"status": 200})
}

// idString is a location id as it appears in a path.
func idString(id any) string {
	switch id := id.(type) {
	case string:
		return id
	case int:
		return strconv.Itoa(id)
	case float64:
		return strconv.FormatFloat(id, 'f', -1, 64)
	}
	data, _ := json.Marshal(id)
	return string(data)
}

// fconExtra answers the FordConnect Query endpoints besides telemetry
// (fordconnect.Client.Extra). No source shows their answers, so the shapes are
// the simulator's own: the health alerts carry the keys
// ha-fordconnect-query's unfinished reader names (VehicleAlertList,
// ActiveAlerts); departure times are for electric cars only (404
// otherwise); charge schedules are never consented (403), so the bridge's
// handling of a category without consent is tried on every run.
func (s *Sim) fconExtra(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		v := s.fconQuery(w, r)
		if v == nil {
			return
		}
		switch name {
		case "health_alerts":
			writeJSON(w, http.StatusOK, map[string]any{"VehicleAlertList": []any{map[string]any{"vin": v.vin,
				"ActiveAlerts": []any{map[string]any{"alertName": "LOW_WASHER_FLUID", "severity": "LOW", "activeSince": s.now().UTC().Format("2006-01-02T15:04:05Z")}}}}})
		case "departure_schedules":
			if !v.ev {
				writeJSON(w, http.StatusNotFound, map[string]any{"message": "Resource not found"})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"vin": v.vin, "departureTimes": []any{
				map[string]any{"dayOfWeek": "MONDAY", "time": "07:30", "status": "ON"}}})
		default:
			writeJSON(w, http.StatusForbidden, map[string]any{"message": "The vehicle owner has not consented to this data"})
		}
	}
}
