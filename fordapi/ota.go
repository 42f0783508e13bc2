package fordapi

import (
	"encoding/json"
	"math"
)

// OTA is a car's software update as Ford reports it in the record's
// states: states.deployment walks from the download to the installation,
// and states.configurationUpdate, a rarer configuration sync, stands in
// while no deployment was seen (ha-fordpass fordpass_handler.py,
// get_firmware_update_status_state and _attrs). It is published as
// P/VIN/ota, the attributes of the ota_status field.
type OTA struct {
	State     string `json:"state"`                // one of otaStates
	FordState string `json:"ford_state"`           // Ford's toState
	FromState string `json:"from_state,omitempty"` // Ford's fromState
	At        string `json:"at,omitempty"`         // Ford's timestamp of the state
	// From the deployment's message, while it installs: Ford's estimate
	// of the seconds until the update activates, the 12 V battery's
	// charge (Ford stops an install on a weak battery) and the part
	// number installed.
	SecondsToActivate float64 `json:"seconds_to_activate,omitempty"`
	LVBatterySoC      float64 `json:"lv_battery_soc,omitempty"`
	PartNumber        string  `json:"part_number,omitempty"`
}

// The topics under the car of the Details a record makes.
const (
	otaDetails       = "ota"
	departureDetails = "departure_schedule"
)

// otaStates are the values of ota_status.
var otaStates = []string{"idle", "downloading", "installing", "installed", "failed", "unknown"}

// otaFord maps Ford's toState of a deployment to ota_status, as
// ha-fordpass const_shared.py's OTA_DEPLOYMENT_STATE_MAP does; any other
// state is "unknown" (Ford has added intermediate states before).
var otaFord = map[string]string{
	"requested": "idle", "request_delivery_queued": "downloading", "artifact_retrieval_queued": "downloading",
	"artifact_retrieval_in_progress": "downloading", "deploying": "installing", "installation_queued": "installing",
	"success": "installed", "failed": "failed", "error": "failed", "cancelled": "idle",
}

// otaOf is the software update the command states show (nil: none).
func otaOf(states []CommandEntry) *OTA {
	s, ok := commandIn(states, "deployment")
	if !ok {
		if s, ok = commandIn(states, "configurationUpdate"); !ok {
			return nil
		}
	}
	o := &OTA{State: "unknown", FordState: Clip(s.ToState, 64), FromState: Clip(s.FromState, 64), At: Clip(s.At, 40)}
	if w, known := otaFord[s.ToState]; known {
		o.State = w
	}
	var m struct {
		ETA any `json:"estimatedTimeToActivate"`
		SoC any `json:"currentLvBatterySoc"`
		FPN any `json:"fpn"`
	}
	if s.Message != "" && json.Unmarshal([]byte(s.Message), &m) == nil {
		o.SecondsToActivate, o.LVBatterySoC = plain(m.ETA, 1e7), plain(m.SoC, 100)
		if fpn, ok := m.FPN.(string); ok {
			o.PartNumber = Clip(fpn, 40)
		}
	}
	return o
}

// plain is a finite number from 0 to hi, or 0.
func plain(v any, hi float64) float64 {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || f < 0 || f > hi {
		return 0
	}
	return f
}
