package fordapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// A car's charging locations, each with its own charge target, as the
// FordPass app keeps them (ha-fordpass fordpass_bridge.py,
// req_preferred_charge_times and set_charge_target; fordpass_handler.py,
// set_elev_target_charge_int). Both are on the vehicle host, with the car
// in the "vin" header.
const (
	PathChargeLocations = "/api/electrification/experiences/v2/vehicles/preferred-charge-times"
	pathChargeLocation  = PathChargeLocations + "/locations/"
)

// PathChargeLocation is the path that changes one location's charge
// profile.
func PathChargeLocation(id string) string { return pathChargeLocation + id }

// ChargeLocation is one of a car's saved charging locations.
type ChargeLocation struct {
	Name   string `json:"name"`
	Target int    `json:"target,omitempty"` // chargeProfile.targetSoc, in percent (0: none reported)
	Mode   string `json:"charge_mode,omitempty"`
	// Ford is the entry as Ford sent it: a change sends its location and
	// charge profile back with the new target, as ha-fordpass does.
	Ford json.RawMessage `json:"-"`
}

// chargeLocationEntry is what a change needs of an entry: ha-fordpass
// sends the location's address, id, latitude, longitude, name and type
// and the profile's chargeMode and schedules, and refuses an entry that
// lacks any of them.
type chargeLocationEntry struct {
	VIN      string                     `json:"vin"`
	Location map[string]json.RawMessage `json:"location"`
	Profile  map[string]json.RawMessage `json:"chargeProfile"`
}

var (
	locationKeys = []string{"address", "id", "latitude", "longitude", "name", "type"}
	profileKeys  = []string{"chargeMode", "schedules"}
)

// ChargeLocations reads a car's saved charging locations (telemetry share
// of the budget unless ctx says otherwise). Ford answers a list for every
// car of the account; the car's own entries with a location are kept, in
// Ford's order (ha-fordpass: the location ids are not unique, so a
// location is known by its place in the list).
func (c *Client) ChargeLocations(ctx context.Context, vin string) ([]ChargeLocation, error) {
	resp, err := c.authedCall(ctx, c.catLayer(), request{endpoint: "charge_locations", method: http.MethodGet,
		url: c.hosts.vehicle + PathChargeLocations, header: http.Header{"vin": {vin}}})
	if err != nil {
		return nil, fmt.Errorf("reading the charging locations: %w", err)
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("reading the charging locations: %w", fordError("charge_locations", resp))
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(resp.body, &entries); err != nil {
		return nil, fmt.Errorf("reading the charging locations: Ford's answer is not a list: %w", err)
	}
	out := []ChargeLocation{}
	for _, raw := range entries {
		var e chargeLocationEntry
		if json.Unmarshal(raw, &e) != nil || !strings.EqualFold(e.VIN, vin) || e.Location == nil {
			continue
		}
		l := ChargeLocation{Ford: raw}
		_ = json.Unmarshal(e.Location["name"], &l.Name)
		l.Name = Clip(l.Name, 60)
		var t float64
		if json.Unmarshal(e.Profile["targetSoc"], &t) == nil && t > 0 && t <= 100 {
			l.Target = int(t)
		}
		_ = json.Unmarshal(e.Profile["chargeMode"], &l.Mode)
		l.Mode = Clip(l.Mode, 40)
		out = append(out, l)
	}
	return out, nil
}

// ErrLocationIncomplete: Ford's entry of the location lacks what a change
// sends back, so it cannot be changed (ha-fordpass refuses it too).
var ErrLocationIncomplete = errors.New("Ford's entry of this location lacks its address, id, position, name, type, charge mode or schedules, so it cannot be changed")

// SetChargeLocationTarget sets the charge target of one of a car's
// locations (as ChargeLocations read it): the location and its charge
// profile go back to Ford with the new targetSoc. Ford answers the change
// and reports updateChargeProfilesCommand on the car later; it is taken
// as done when Ford takes it.
func (c *Client) SetChargeLocationTarget(ctx context.Context, vin string, loc ChargeLocation, target int) error {
	var e chargeLocationEntry
	if err := json.Unmarshal(loc.Ford, &e); err != nil {
		return ErrLocationIncomplete
	}
	location := map[string]json.RawMessage{}
	for _, k := range locationKeys {
		if e.Location[k] == nil {
			return ErrLocationIncomplete
		}
		location[k] = e.Location[k]
	}
	for _, k := range profileKeys {
		if e.Profile[k] == nil {
			return ErrLocationIncomplete
		}
	}
	var id any
	if json.Unmarshal(e.Location["id"], &id) != nil {
		return ErrLocationIncomplete
	}
	var path string
	switch id := id.(type) {
	case string:
		path = id
	case float64:
		path = strconv.FormatFloat(id, 'f', -1, 64)
	default:
		return ErrLocationIncomplete
	}
	body, _ := json.Marshal(map[string]any{
		"chargeProfile": map[string]any{"chargeMode": e.Profile["chargeMode"], "schedules": e.Profile["schedules"], "targetSoc": target},
		"location":      location,
		"vin":           vin,
	})
	resp, err := c.authedCall(ForCommand(ctx), c.catLayer(), request{endpoint: "charge_location_target", method: http.MethodPost,
		url: c.hosts.vehicle + PathChargeLocation(url.PathEscape(path)), header: http.Header{"vin": {vin}}, body: body})
	if err != nil {
		return fmt.Errorf("setting the location's charge target: %w", err)
	}
	if resp.status < 200 || resp.status > 205 {
		return fmt.Errorf("setting the location's charge target: %w", fordError("charge_location_target", resp))
	}
	return nil
}
