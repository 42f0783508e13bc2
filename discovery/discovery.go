// Package discovery builds Home Assistant MQTT discovery payloads for the
// bridge and its vehicles: device-based discovery (one retained config per
// device with its entities under "cmps"). Everything here is a pure function
// of typed inputs; publishing is the bridge's job.
package discovery

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// SupportURL is where users report problems.
const SupportURL = "https://github.com/fordpass2mqtt/fordpass2mqtt"

// Settings are the bridge-wide inputs.
type Settings struct {
	DiscoveryPrefix string // HA_DISCOVERY_PREFIX
	TopicPrefix     string // MQTT_TOPIC_PREFIX
	Version         string
	PublicURL       string // HTTP_PUBLIC_URL: the sign-in page
	// Demo marks the demo's devices: node ids and unique ids of their own,
	// and "(demo)" in every device name, so a demo on a shared broker never
	// touches a real bridge's devices.
	Demo bool
	// Accounts are FORD_ACCOUNTS's names (none with one account): the
	// bridge device gets an auth sensor and a sign-in problem sensor for
	// each, beside those of the worst state.
	Accounts []string
}

// node is the base of the cars' node ids and unique ids: fordpass for the
// default topic prefix (Home Assistant's entities of an existing install
// stay as they are), fordpass_demo for the demo's, and the installation's
// prefix added for any other, so two installations on one broker keep a
// device each for one car.
func (s Settings) node() string {
	switch {
	case s.Demo && strings.HasPrefix(s.TopicPrefix, "fordpass_demo"):
		return slug(s.TopicPrefix)
	case s.Demo:
		return "fordpass_demo_" + slug(s.TopicPrefix)
	case s.TopicPrefix == "fordpass" || s.TopicPrefix == "":
		return "fordpass"
	}
	return "fordpass_" + slug(s.TopicPrefix)
}

func (s Settings) deviceName(name string) string {
	if s.Demo {
		return name + " (demo)"
	}
	return name
}

// VehicleInfo describes one vehicle: what it is, which fields it reports and
// which commands may be sent to it.
type VehicleInfo struct {
	VIN          string
	Name         string
	Model        string
	Year         string
	EV           bool
	Fields       []string // telemetry fields the car reports
	HasLocation  bool
	HasUpdatedAt bool
	// HasSource: the bridge reads the car through two backends, and
	// P/VIN/source says which one its state comes from.
	HasSource bool
	Lock      bool      // lock/unlock allowed and supported: the lock entity sends them
	LockPress [2]string // the commands the lock entity sends to lock and to unlock
	Buttons   []Button  // the other commands the car can run and the user allows
	// Settable maps a number field to the command that sets it, where the
	// car can run it and the user allows it (a number entity instead of a
	// sensor).
	Settable map[string]string
	// Controls are settings the car keeps that Home Assistant changes
	// through a command (the remote climate profile).
	Controls []Control
}

// Control is a setting shown as a number, switch or select: its state is
// one key of a JSON object on P/VIN/<State>, and changing it publishes a
// command to P/VIN/command.
type Control struct {
	Key      string // its component key
	Name     string
	Platform string // "number", "switch" or "select"
	State    string // the topic under the car that holds the JSON state
	Value    string // the key in that JSON
	Template string // the value template, when not {{ value_json.<Value> }}
	Icon     string
	// Command is the command template (number, select: {{ value }} is the
	// new value); On and Off are the switch's commands.
	Command, On, Off string
	Options          []string // a select's
	Min, Max, Step   float64  // a number's
	Unit             string
	DeviceClass      string
}

// Button is a command's button in Home Assistant.
type Button struct {
	Key         string // its component key, such as horn_button
	Name        string
	Press       string // the command it publishes
	Icon        string
	DeviceClass string
}

// Payload is a device discovery config.
type Payload struct {
	Device     Device               `json:"device"`
	Origin     Origin               `json:"origin"`
	Components map[string]Component `json:"cmps"`
	QoS        int                  `json:"qos"`
}

// Device is the HA device registry entry.
type Device struct {
	Identifiers      []string `json:"identifiers"`
	Name             string   `json:"name"`
	Manufacturer     string   `json:"manufacturer"`
	Model            string   `json:"model,omitempty"`
	SerialNumber     string   `json:"serial_number,omitempty"`
	SWVersion        string   `json:"sw_version,omitempty"`
	ViaDevice        string   `json:"via_device,omitempty"`
	ConfigurationURL string   `json:"configuration_url,omitempty"`
}

// Origin names the software that sent the config.
type Origin struct {
	Name       string `json:"name"`
	SWVersion  string `json:"sw_version"`
	SupportURL string `json:"support_url"`
}

// Availability is one availability topic.
type Availability struct {
	Topic string `json:"topic"`
}

// Component is one entity. Only the keys its platform uses are set.
type Component struct {
	Platform            string         `json:"platform"`
	Name                string         `json:"name"`
	UniqueID            string         `json:"unique_id"`
	DefaultEntityID     string         `json:"default_entity_id"`
	Availability        []Availability `json:"availability"`
	AvailabilityMode    string         `json:"availability_mode,omitempty"`
	StateTopic          string         `json:"state_topic,omitempty"`
	CommandTopic        string         `json:"command_topic,omitempty"`
	ValueTemplate       string         `json:"value_template,omitempty"`
	JSONAttributesTopic string         `json:"json_attributes_topic,omitempty"`
	DeviceClass         string         `json:"device_class,omitempty"`
	StateClass          string         `json:"state_class,omitempty"`
	Unit                string         `json:"unit_of_measurement,omitempty"`
	SuggestedPrecision  *int           `json:"suggested_display_precision,omitempty"`
	EntityCategory      string         `json:"entity_category,omitempty"`
	Icon                string         `json:"icon,omitempty"`
	Options             []string       `json:"options,omitempty"`
	PayloadOn           string         `json:"payload_on,omitempty"`
	PayloadOff          string         `json:"payload_off,omitempty"`
	PayloadPress        string         `json:"payload_press,omitempty"`
	PayloadLock         string         `json:"payload_lock,omitempty"`
	PayloadUnlock       string         `json:"payload_unlock,omitempty"`
	StateLocked         string         `json:"state_locked,omitempty"`
	StateUnlocked       string         `json:"state_unlocked,omitempty"`
	StateLocking        string         `json:"state_locking,omitempty"`
	StateUnlocking      string         `json:"state_unlocking,omitempty"`
	StateJammed         string         `json:"state_jammed,omitempty"`
	SourceType          string         `json:"source_type,omitempty"`
	EnabledByDefault    *bool          `json:"enabled_by_default,omitempty"`
	CommandTemplate     string         `json:"command_template,omitempty"`
	StateOn             string         `json:"state_on,omitempty"`
	StateOff            string         `json:"state_off,omitempty"`
	Min                 *float64       `json:"min,omitempty"`
	Max                 *float64       `json:"max,omitempty"`
	Step                *float64       `json:"step,omitempty"`
}

// BridgeNodeID is the node id of the bridge device: fordpass_bridge for the
// default topic prefix (as it always was), with the prefix appended for any
// other, so two bridges on one broker keep their own devices.
func BridgeNodeID(s Settings) string {
	if s.TopicPrefix == "fordpass" && !s.Demo {
		return "fordpass_bridge"
	}
	return "fordpass_bridge_" + slug(s.TopicPrefix)
}

// VehicleTopic is the discovery topic of a vehicle's device config.
func VehicleTopic(s Settings, vin string) string {
	return s.DiscoveryPrefix + "/device/" + s.node() + "_" + vin + "/config"
}

// BridgeTopic is the discovery topic of the bridge's device config.
func BridgeTopic(s Settings) string {
	return s.DiscoveryPrefix + "/device/" + BridgeNodeID(s) + "/config"
}

func bridgeIdentifier(s Settings) string { return "fordpass2mqtt_bridge_" + s.TopicPrefix }

func origin(s Settings) Origin {
	return Origin{Name: "fordpass2mqtt", SWVersion: s.Version, SupportURL: SupportURL}
}

func marshal(p Payload) []byte {
	data, err := json.Marshal(p)
	if err != nil {
		panic("discovery: payload does not marshal: " + err.Error()) // only plain types: cannot happen
	}
	return data
}

// Bridge builds the bridge device: auth state, the re-authorization and
// unsaved-token problem sensors and the Ford call count; "Visit" opens the
// sign-in page.
func Bridge(s Settings) (topic string, payload []byte) {
	t := mqttapi.New(s.TopicPrefix)
	avail := []Availability{{Topic: t.Availability()}}
	uid := func(k string) string { return "fordpass2mqtt_" + s.TopicPrefix + "_" + k }
	entity := slug(s.TopicPrefix)
	p := Payload{
		Device: Device{Identifiers: []string{bridgeIdentifier(s)}, Name: s.deviceName("FordPass bridge"), Manufacturer: "fordpass2mqtt",
			Model: "FordPass to MQTT bridge", SWVersion: s.Version, ConfigurationURL: s.PublicURL},
		Origin: origin(s),
		QoS:    1,
		Components: map[string]Component{
			"auth_state": {Platform: "sensor", Name: "FordPass connection", UniqueID: uid("auth_state"),
				DefaultEntityID: "sensor." + entity + "_bridge_connection", Availability: avail,
				// Home Assistant reserves the state "unavailable" (the
				// entity itself unavailable), so the auth state of that
				// name shows as ford_unavailable.
				StateTopic: t.AuthState(), JSONAttributesTopic: t.AuthDetail(),
				ValueTemplate: "{{ 'ford_unavailable' if value == 'unavailable' else value }}",
				DeviceClass:   "enum", Options: []string{"ok", "reauth_required", "rate_limited", "ford_unavailable"},
				EntityCategory: "diagnostic", Icon: "mdi:account-key"},
			"reauth_required": {Platform: "binary_sensor", Name: "Re-authorization required", UniqueID: uid("reauth_required"),
				DefaultEntityID: "binary_sensor." + entity + "_reauthorization_required", Availability: avail,
				StateTopic: t.AuthState(), DeviceClass: "problem",
				ValueTemplate:       "{{ 'ON' if value == 'reauth_required' else 'OFF' }}",
				JSONAttributesTopic: t.AuthDetail(), EntityCategory: "diagnostic"},
			"token_unsaved": {Platform: "binary_sensor", Name: "Token not saved", UniqueID: uid("token_unsaved"),
				DefaultEntityID: "binary_sensor." + entity + "_token_not_saved", Availability: avail,
				StateTopic: t.AuthDetail(), DeviceClass: "problem",
				ValueTemplate:       "{{ 'ON' if value_json.warning is defined and value_json.warning else 'OFF' }}",
				JSONAttributesTopic: t.AuthDetail(), EntityCategory: "diagnostic"},
			"calls_24h": {Platform: "sensor", Name: "Ford calls (24 h)", UniqueID: uid("calls_24h"),
				DefaultEntityID: "sensor." + entity + "_ford_calls_24h", Availability: avail,
				StateTopic: t.Info(), ValueTemplate: "{{ value_json.calls_24h }}",
				StateClass: "measurement", Unit: "calls", EntityCategory: "diagnostic", Icon: "mdi:counter"},
		},
	}
	for _, name := range s.Accounts {
		at := t.Account(name)
		key := "account_" + slug(name)
		p.Components[key+"_auth_state"] = Component{Platform: "sensor", Name: "FordPass connection (" + strings.ToLower(name) + ")", UniqueID: uid(key + "_auth_state"),
			DefaultEntityID: "sensor." + entity + "_" + key + "_connection", Availability: avail,
			StateTopic: at.AuthState(), JSONAttributesTopic: at.AuthDetail(),
			ValueTemplate: "{{ 'ford_unavailable' if value == 'unavailable' else value }}",
			DeviceClass:   "enum", Options: []string{"ok", "reauth_required", "rate_limited", "ford_unavailable"},
			EntityCategory: "diagnostic", Icon: "mdi:account-key"}
		p.Components[key+"_reauth_required"] = Component{Platform: "binary_sensor", Name: "Re-authorization required (" + strings.ToLower(name) + ")", UniqueID: uid(key + "_reauth_required"),
			DefaultEntityID: "binary_sensor." + entity + "_" + key + "_reauthorization_required", Availability: avail,
			StateTopic: at.AuthState(), DeviceClass: "problem",
			ValueTemplate:       "{{ 'ON' if value == 'reauth_required' else 'OFF' }}",
			JSONAttributesTopic: at.AuthDetail(), EntityCategory: "diagnostic"}
	}
	return BridgeTopic(s), marshal(p)
}

// Vehicle builds a vehicle's device: only entities for fields the car
// reports and commands it supports and the user allowed.
func Vehicle(s Settings, v VehicleInfo) (topic string, payload []byte) {
	t := mqttapi.New(s.TopicPrefix)
	// Available while the bridge is online and has a channel to Ford for
	// this car ("all": both must say online).
	avail := []Availability{{Topic: t.Availability()}, {Topic: t.VehicleAvailability(v.VIN)}}
	entity := "ford_" + strings.ToLower(v.VIN)
	if s.Demo {
		entity = "ford_demo_" + strings.ToLower(v.VIN)
	}
	name := strings.TrimSpace(v.Name)
	if name == "" {
		name = v.VIN
	}
	model := strings.TrimSpace(v.Year + " " + v.Model)
	cmps := map[string]Component{}
	add := func(key, platform, entityName string, c Component) {
		c.Platform, c.Name, c.Availability, c.AvailabilityMode = platform, entityName, avail, "all"
		c.UniqueID = s.node() + "_" + v.VIN + "_" + key
		c.DefaultEntityID = platform + "." + entity + "_" + key
		cmps[key] = c
	}
	fields := append([]string(nil), v.Fields...)
	sort.Strings(fields)
	for _, f := range fields {
		spec, member, ok := fordapi.SpecOf(f)
		if !ok {
			continue // a field this version does not know how to show
		}
		c := Component{StateTopic: t.Field(v.VIN, f), Icon: spec.Icon}
		if spec.Details != "" {
			c.JSONAttributesTopic = t.Field(v.VIN, spec.Details)
		}
		if spec.Diagnostic {
			c.EntityCategory = "diagnostic"
		}
		name := spec.Label
		if spec.Family {
			name = spec.Member(member)
			if spec.Disabled != nil && spec.Disabled(member) {
				off := false
				c.EnabledByDefault, c.EntityCategory = &off, "diagnostic"
			}
		}
		switch spec.Kind {
		case fordapi.KindNumber:
			if cmd := v.Settable[spec.Name]; cmd != "" {
				c.CommandTopic = t.Command(v.VIN)
				c.CommandTemplate = `{"command":"` + cmd + `","value":{{ value | int }}}`
				c.Min, c.Max, c.Step, c.Unit = &spec.Min, &spec.Max, &spec.Step, spec.Unit
				add(f, "number", name, c)
				continue
			}
			p := spec.Digits
			c.DeviceClass, c.Unit, c.SuggestedPrecision = spec.Measures, spec.Unit, &p
			switch {
			case spec.Total:
				c.StateClass = "total_increasing"
			case spec.Angle:
				// Home Assistant's state class for an angle in degrees
				// (sensor/const.py, SensorStateClass.MEASUREMENT_ANGLE).
				c.StateClass = "measurement_angle"
			default:
				c.StateClass = "measurement"
			}
			add(f, "sensor", name, c)
		case fordapi.KindOnOff:
			c.DeviceClass, c.PayloadOn, c.PayloadOff = spec.Measures, spec.On, spec.Off
			add(f, "binary_sensor", name, c)
		case fordapi.KindWord:
			add(f, "sensor", name, c)
		case fordapi.KindEnum:
			c.DeviceClass, c.Options = "enum", spec.Words
			add(f, "sensor", name, c)
		case fordapi.KindAlarm:
			add(f+"_triggered", "binary_sensor", name+" triggered", Component{StateTopic: c.StateTopic, DeviceClass: "safety", PayloadOn: "triggered",
				ValueTemplate: "{{ 'triggered' if value == 'triggered' else 'idle' }}", PayloadOff: "idle"})
			c.DeviceClass, c.Options = "enum", spec.Words
			add(f, "sensor", name, c)
		case fordapi.KindLock:
			if v.Lock { // a lock Home Assistant can lock and unlock
				add(f, "lock", name, Component{StateTopic: c.StateTopic, CommandTopic: t.Command(v.VIN), PayloadLock: v.LockPress[0], PayloadUnlock: v.LockPress[1],
					StateLocked: spec.Words[0], StateUnlocked: spec.Words[1], StateLocking: spec.Words[2], StateUnlocking: spec.Words[3], StateJammed: spec.Words[4]})
				continue
			}
			c.DeviceClass, c.Options = "enum", spec.Words
			add(f, "sensor", name, c)
		}
	}
	if v.HasLocation {
		add("location", "device_tracker", "Location", Component{JSONAttributesTopic: t.Field(v.VIN, "location"), SourceType: "gps", Icon: "mdi:car"})
	}
	if v.HasSource {
		add("source", "sensor", "Data source", Component{StateTopic: t.Field(v.VIN, "source"), DeviceClass: "enum",
			Options: []string{"fordpass", "fordconnect"}, EntityCategory: "diagnostic", Icon: "mdi:source-branch"})
	}
	if v.HasUpdatedAt {
		add("updated_at", "sensor", "Last update from the car", Component{StateTopic: t.Field(v.VIN, "updated_at"), DeviceClass: "timestamp", EntityCategory: "diagnostic"})
	}
	for _, b := range v.Buttons {
		add(b.Key, "button", b.Name, Component{CommandTopic: t.Command(v.VIN), PayloadPress: b.Press, Icon: b.Icon, DeviceClass: b.DeviceClass})
	}
	for _, ctl := range v.Controls {
		c := Component{StateTopic: t.Field(v.VIN, ctl.State), CommandTopic: t.Command(v.VIN), Icon: ctl.Icon, DeviceClass: ctl.DeviceClass,
			ValueTemplate: "{{ value_json." + ctl.Value + " }}"}
		switch ctl.Platform {
		case "switch":
			// A switch compares its state with payload_on unless state_on
			// is given (the MQTT switch's docs), and payload_on is a command.
			c.PayloadOn, c.PayloadOff, c.StateOn, c.StateOff = ctl.On, ctl.Off, "ON", "OFF"
			c.ValueTemplate = "{{ 'ON' if value_json." + ctl.Value + " else 'OFF' }}"
		case "select":
			c.CommandTemplate, c.Options = ctl.Command, ctl.Options
		case "number":
			c.CommandTemplate, c.Unit = ctl.Command, ctl.Unit
			c.Min, c.Max, c.Step = &ctl.Min, &ctl.Max, &ctl.Step
		}
		if ctl.Template != "" {
			c.ValueTemplate = ctl.Template
		}
		add(ctl.Key, ctl.Platform, ctl.Name, c)
	}
	p := Payload{
		Device: Device{Identifiers: []string{s.node() + "_" + v.VIN}, Name: s.deviceName(name), Manufacturer: "Ford", Model: model,
			SerialNumber: v.VIN, ViaDevice: bridgeIdentifier(s)},
		Origin: origin(s), QoS: 1, Components: cmps,
	}
	return VehicleTopic(s, v.VIN), marshal(p)
}

// slug is the topic prefix as a part of an id: each character but an
// ASCII letter or digit becomes "_", in lower case. It is never trimmed,
// so an id it went into stays what it was (fordapi's member names are
// trimmed).
func slug(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return strings.ToLower(b.String())
}

// Platforms reads a device config's components: key → platform ("" and
// nil for an empty or unreadable config).
func Platforms(payload []byte) map[string]string {
	var p struct {
		Cmps map[string]struct {
			Platform string `json:"platform"`
			P        string `json:"p"`
		} `json:"cmps"`
	}
	if len(payload) == 0 || json.Unmarshal(payload, &p) != nil {
		return nil
	}
	out := make(map[string]string, len(p.Cmps))
	for k, c := range p.Cmps {
		out[k] = c.Platform + c.P
	}
	return out
}

// WithRemovals is payload with each component of gone (key → the platform
// it had) given as its platform alone: how Home Assistant's device-based
// discovery is told that a component left the device (leaving it out of
// "cmps" keeps it). A key of gone that payload still has (its platform
// changed) is replaced by its removal; the caller publishes payload itself
// next.
func WithRemovals(payload []byte, gone map[string]string) []byte {
	var p map[string]json.RawMessage
	if json.Unmarshal(payload, &p) != nil {
		return payload
	}
	var cmps map[string]json.RawMessage
	_ = json.Unmarshal(p["cmps"], &cmps)
	if cmps == nil {
		cmps = map[string]json.RawMessage{}
	}
	for k, platform := range gone {
		cmps[k], _ = json.Marshal(map[string]string{"platform": platform})
	}
	p["cmps"], _ = json.Marshal(cmps)
	out, _ := json.Marshal(p)
	return out
}

// OwnsConfig reports whether topic is one of the device config topics that
// a bridge with these settings publishes: its own device's, or a car's
// (the node id followed by a VIN).
func OwnsConfig(s Settings, topic string) (vin string, ok bool) {
	if topic == BridgeTopic(s) {
		return "", true
	}
	rest, found := strings.CutPrefix(topic, s.DiscoveryPrefix+"/device/"+s.node()+"_")
	if !found {
		return "", false
	}
	vin, found = strings.CutSuffix(rest, "/config")
	if !found || !mqttapi.IsVIN(vin) {
		return "", false
	}
	return vin, true
}
