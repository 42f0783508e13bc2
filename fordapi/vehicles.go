package fordapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// Vehicle is one car on the account.
type Vehicle struct {
	VIN        string
	Nickname   string
	Model      string
	Year       string
	EngineType string
	EV         bool // battery or plug-in hybrid: has an HV battery
	Can        Capabilities
}

// Capabilities are what Ford lists a car can do, by Ford's own names
// (remoteLock, remoteStart, remotePanicAlarm, zoneLighting, …): every flag
// of the car's capability list, as Ford sends it, and two read as
// ha-fordpass reads them (zoneLighting only with lighting zones, and
// remoteClimateControl from the profile). A command's row names the one it
// needs; a new capability needs no code here.
type Capabilities map[string]bool

// Has says whether Ford lists the capability for the car.
func (c Capabilities) Has(name string) bool { return c[name] }

// UnmarshalJSON reads the set, and the struct of fields earlier versions
// kept in STATE_DIR (RemoteLock, …), so a cached car keeps its commands.
func (c *Capabilities) UnmarshalJSON(data []byte) error {
	var m map[string]bool
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	old := map[string]string{"RemoteLock": CapRemoteLock, "RemoteStart": CapRemoteStart, "PanicAlarm": CapPanicAlarm,
		"RemoteClimate": CapRemoteClimate, "ZoneLighting": CapZoneLighting}
	*c = Capabilities{}
	for k, v := range m {
		if name, ok := old[k]; ok {
			k = name
		}
		if v {
			(*c)[k] = true
		}
	}
	return nil
}

// capabilities reads what Ford lists of a car: caps are its capability
// flags (nil: none listed, so only the lock is assumed), profile its
// profile (may be nil).
func capabilities(caps, profile map[string]any) Capabilities {
	c := Capabilities{CapRemoteLock: true}
	if caps != nil {
		c = Capabilities{}
		for k, v := range caps {
			if flag(v) {
				c[k] = true
			}
		}
		if zones, _ := strconv.Atoi(toString(profile["numberOfLightingZones"])); zones <= 0 {
			delete(c, CapZoneLighting)
		}
	}
	if flag(profile["remoteClimateControl"]) || flag(profile["remoteHeatingCooling"]) {
		c[CapRemoteClimate] = true
	}
	if t := strings.ToUpper(toString(profile["transmissionIndicator"])); t != "" && t != "A" {
		c[CapManualGearbox] = true
	}
	if flag(profile[CapHeatedWheel]) {
		c[CapHeatedWheel] = true
	}
	switch seats := strings.ToUpper(toString(profile[CapHeatedSeats])); {
	case seats == "HEAT WITH VENT":
		c[CapHeatedSeats], c[CapVentedSeats] = true, true
	case strings.Contains(seats, "HEAT"):
		c[CapHeatedSeats] = true
	}
	return c
}

// DisplayName is the nickname, else year and model, else the VIN.
func (v Vehicle) DisplayName() string {
	switch {
	case v.Nickname != "":
		return v.Nickname
	case v.Model != "":
		return strings.TrimSpace(v.Year + " " + v.Model)
	}
	return v.VIN
}

// Vehicles lists the account's cars: Ford's expdashboard (207 and 200 are
// both success), or the newer app's user garage. When the one in use
// answers 404 or 410, the other is tried once and remembered.
func (c *Client) Vehicles(ctx context.Context) ([]Vehicle, error) {
	first := c.Protocol().list()
	vs, err := c.vehicleList(ctx, first)
	var se *StatusError
	if err == nil || !errors.As(err, &se) || (se.Status != http.StatusNotFound && se.Status != http.StatusGone) {
		return vs, err
	}
	other := ListGarage
	if first == ListGarage {
		other = ListDashboard
	}
	c.log.Info("Ford no longer serves this vehicle list; trying the other one", zap.String("gone", first), zap.String("trying", other))
	vs, err2 := c.vehicleList(ctx, other)
	if err2 != nil {
		return nil, fmt.Errorf("%w (the %s list failed too: %v)", err, other, err2)
	}
	c.learn(func(p *Protocol) { p.VehicleList = other })
	return vs, nil
}

func (c *Client) vehicleList(ctx context.Context, which string) ([]Vehicle, error) {
	h := http.Header{}
	h.Set("countryCode", c.region.CountryCode)
	h.Set("locale", c.region.Locale)
	r := request{endpoint: "vehicle_list", method: http.MethodPost, url: c.hosts.vehicle + PathVehicleList, header: h, body: []byte(vehicleListBody)}
	parse := ParseVehicles
	if which == ListGarage {
		r = request{endpoint: "garage", method: http.MethodGet, url: c.hosts.vehicle + PathGarage, header: h}
		parse = ParseGarage
	}
	resp, err := c.authedCall(ctx, c.catLayer(), r)
	if err != nil {
		return nil, fmt.Errorf("listing vehicles: %w", err)
	}
	if resp.status != http.StatusOK && resp.status != http.StatusMultiStatus {
		return nil, fmt.Errorf("listing vehicles: %w", fordError(r.endpoint, resp))
	}
	vs, err := parse(resp.body)
	if err != nil {
		return nil, fmt.Errorf("listing vehicles: %w", err)
	}
	return vs, nil
}

// ParseGarage reads the user-garage answer. Its shape is not settled in
// what is known of it: a list of vehicles, or an object holding such a list;
// each with vin, a nickname and a profile with model and year.
func ParseGarage(data []byte) ([]Vehicle, error) {
	var root any
	if err := json.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("reading the garage: %w", err)
	}
	var items []map[string]any
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 4 {
			return
		}
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e, depth+1)
			}
		case map[string]any:
			if pickString(x, "vin", "VIN") != "" {
				items = append(items, x)
				return
			}
			for _, e := range x {
				walk(e, depth+1)
			}
		}
	}
	walk(root, 0)
	out := make([]Vehicle, 0, len(items))
	seen := map[string]bool{}
	for _, o := range items {
		vin := strings.ToUpper(strings.TrimSpace(pickString(o, "vin", "VIN")))
		if vin == "" || seen[vin] {
			continue
		}
		seen[vin] = true
		profile, _ := o["profile"].(map[string]any)
		if profile == nil {
			profile = o
		}
		v := Vehicle{VIN: vin, Nickname: strings.TrimSpace(pickString(o, "nickName", "nickname", "vehicleNickName")),
			Model: pickString(profile, "model", "modelName"), Year: pickString(profile, "year", "modelYear"),
			EngineType: pickString(profile, "engineType", "fuelType")}
		et := strings.ToUpper(v.EngineType)
		v.EV = strings.Contains(et, "BEV") || strings.Contains(et, "PHEV") || strings.Contains(et, "ELECTRIC")
		caps, _ := o["capabilities"].(map[string]any)
		v.Can = capabilities(caps, profile)
		out = append(out, v)
	}
	return out, nil
}

// pickString returns the first of keys that holds a string or a number.
func pickString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			if v != "" {
				return v
			}
		case float64:
			return toString(v)
		}
	}
	return ""
}

// ParseVehicles reads the expdashboard answer.
func ParseVehicles(data []byte) ([]Vehicle, error) {
	var d struct {
		UserVehicles struct {
			VehicleDetails []struct {
				VIN      string `json:"VIN"`
				NickName string `json:"nickName"`
			} `json:"vehicleDetails"`
		} `json:"userVehicles"`
		VehicleProfile      []map[string]any `json:"vehicleProfile"`
		VehicleCapabilities []map[string]any `json:"vehicleCapabilities"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("reading the vehicle list: %w", err)
	}
	byVIN := func(list []map[string]any, vin string) map[string]any {
		for _, m := range list {
			if v, _ := m["VIN"].(string); strings.EqualFold(v, vin) {
				return m
			}
		}
		return nil
	}
	out := make([]Vehicle, 0, len(d.UserVehicles.VehicleDetails))
	for _, vd := range d.UserVehicles.VehicleDetails {
		vin := strings.ToUpper(strings.TrimSpace(vd.VIN))
		if vin == "" {
			continue
		}
		v := Vehicle{VIN: vin, Nickname: strings.TrimSpace(vd.NickName)}
		p := byVIN(d.VehicleProfile, vin)
		if p != nil {
			v.Model = toString(p["model"])
			v.Year = toString(p["year"])
			v.EngineType = toString(p["engineType"])
			et := strings.ToUpper(v.EngineType)
			v.EV = strings.Contains(et, "BEV") || strings.Contains(et, "PHEV") || flag(p["showEVBatteryLevel"])
		}
		v.Can = capabilities(byVIN(d.VehicleCapabilities, vin), p)
		out = append(out, v)
	}
	return out, nil
}

// flag reads a capability: true, or the string "Display".
func flag(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "display") || strings.EqualFold(x, "true")
	}
	return false
}

// Telemetry fetches a vehicle's telemetry record: from Ford's REST
// endpoint while it answers, else from a websocket opened for the purpose
// (see socketRecord). When the REST endpoint answers 404 or 410, the client
// remembers that Ford retired it (STATE_DIR/protocol.json) and reads the
// socket instead, trying REST again after restRetryAfter.
func (c *Client) Telemetry(ctx context.Context, vin string) (*Telemetry, error) {
	if c.restGone() {
		return c.socketRecord(ctx, vin)
	}
	doc, err := c.restDocument(ctx, vin)
	if errors.Is(err, errRESTGone) {
		return c.socketRecord(ctx, vin)
	}
	if err != nil {
		return nil, err
	}
	return NewRecord(doc).Telemetry(), nil
}

// errRESTGone marks a REST telemetry answer of 404 or 410.
var errRESTGone = errors.New("Ford no longer serves REST telemetry")

// restDocument fetches the REST telemetry document (decodeRecord).
func (c *Client) restDocument(ctx context.Context, vin string) (Document, error) {
	resp, err := c.authedCall(ctx, c.autonomicLayer(), request{endpoint: "telemetry", method: http.MethodGet,
		url: c.hosts.autonomicAPI + PathTelemetry(vin) + "?" + telemetryQuery})
	if err != nil {
		return nil, fmt.Errorf("fetching telemetry: %w", err)
	}
	if resp.status == http.StatusNotFound || resp.status == http.StatusGone {
		c.restAnswered(false, resp.status)
		return nil, fmt.Errorf("fetching telemetry: %w (HTTP %d)", errRESTGone, resp.status)
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("fetching telemetry: %w", fordError("telemetry", resp))
	}
	c.restAnswered(true, resp.status)
	doc, err := decodeRecord(resp.body)
	if err != nil {
		return nil, fmt.Errorf("fetching telemetry: %w", &StatusError{Endpoint: "telemetry", Status: resp.status, Message: "the record is not valid JSON"})
	}
	return doc, nil
}
