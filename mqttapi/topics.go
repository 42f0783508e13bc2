// Package mqttapi is fordpass2mqtt's MQTT contract, the one place it is
// spelled out: the topic tree (built from the topic prefix P) and the
// payloads published on it. The bridge, its will, doctor, Home Assistant
// discovery and the tests all use it.
package mqttapi

import "strings"

// Tree is the topic tree under one prefix (MQTT_TOPIC_PREFIX), or one
// account's view of it (Account): the auth topics under P/auth/<account>/.
type Tree struct{ prefix, account string }

// New is the tree under prefix.
func New(prefix string) Tree { return Tree{prefix: prefix} }

// Account is the tree as one of several Ford accounts (FORD_ACCOUNTS) sees
// it: its auth topics are P/auth/<name>/state, …/detail, …/login_url and
// …/code/set; every other topic is the tree's. The name "" is the tree
// itself (one account: today's topics).
func (t Tree) Account(name string) Tree { return Tree{prefix: t.prefix, account: name} }

// AccountName is the account the tree is for ("" for the whole tree).
func (t Tree) AccountName() string { return t.account }

// auth joins an auth topic, under the account's name when it has one.
func (t Tree) auth(parts ...string) string {
	if t.account != "" {
		parts = append([]string{t.account}, parts...)
	}
	return t.join(append([]string{"auth"}, parts...)...)
}

// ReservedAccountNames cannot name an account: their auth topics are the
// backends' (P/auth/<backend>/…) and the code's (P/auth/code/set).
var ReservedAccountNames = []string{BackendFordPass, BackendFordConnect, "code", "state", "detail", "login_url"}

// Prefix is P.
func (t Tree) Prefix() string { return t.prefix }

func (t Tree) join(parts ...string) string { return t.prefix + "/" + strings.Join(parts, "/") }

// Availability is P/bridge/availability: online, offline (also the will).
func (t Tree) Availability() string { return t.join("bridge", "availability") }

// Info is P/bridge/info: version, VINs, calls in 24 h, …
func (t Tree) Info() string { return t.join("bridge", "info") }

// Doctor is P/bridge/doctor: the last doctor report.
func (t Tree) Doctor() string { return t.join("bridge", "doctor") }

// AuthState is P/auth/state (P/auth/<account>/state for an account).
func (t Tree) AuthState() string { return t.auth("state") }

// AuthDetail is P/auth/detail.
func (t Tree) AuthDetail() string { return t.auth("detail") }

// LoginURL is P/auth/login_url.
func (t Tree) LoginURL() string { return t.auth("login_url") }

// BackendState is P/auth/<backend>/state: one backend's own auth state
// when the bridge uses two (FORD_BACKEND=both).
func (t Tree) BackendState(backend string) string { return t.auth(backend, "state") }

// BackendDetail is P/auth/<backend>/detail: that backend's state, reason
// and (FordConnect) which cars are consented, as JSON.
func (t Tree) BackendDetail(backend string) string { return t.auth(backend, "detail") }

// BackendLoginURL is P/auth/<backend>/login_url: that backend's link.
func (t Tree) BackendLoginURL(backend string) string { return t.auth(backend, "login_url") }

// CodeSet is P/auth/code/set (P/auth/<account>/code/set): where a pasted
// code is published.
func (t Tree) CodeSet() string { return t.auth("code", "set") }

// Field is P/VIN/field: one telemetry value ("state", "lock", …).
func (t Tree) Field(vin, field string) string { return t.join(vin, field) }

// VehicleAvailability is P/VIN/availability: online, or offline while the
// bridge has no working channel to Ford for the car.
func (t Tree) VehicleAvailability(vin string) string { return t.join(vin, "availability") }

// VehicleDark is P/VIN/availability/detail: why the car is offline, and
// until when if that is known.
func (t Tree) VehicleDark(vin string) string { return t.join(vin, "availability", "detail") }

// Command is P/VIN/command.
func (t Tree) Command(vin string) string { return t.join(vin, "command") }

// Result is P/VIN/command/result.
func (t Tree) Result(vin string) string { return t.join(vin, "command", "result") }

// AllCommands is the subscription to every car's command topic.
func (t Tree) AllCommands() string { return t.join("+", "command") }

// CommandVIN is the VIN of a P/VIN/command topic, "" for any other topic,
// including P/auth/command and P/bridge/command: the segment must be a VIN
// (17 letters and digits, without I, O and Q; any case).
func (t Tree) CommandVIN(topic string) string {
	s, ok := strings.CutPrefix(topic, t.prefix+"/")
	if !ok {
		return ""
	}
	vin, ok := strings.CutSuffix(s, "/command")
	if !ok || !IsVIN(strings.ToUpper(vin)) {
		return ""
	}
	return vin
}

// IsVIN reports whether v is a VIN: 17 upper-case letters and digits,
// without I, O and Q.
func IsVIN(v string) bool {
	if len(v) != 17 {
		return false
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z') || r == 'I' || r == 'O' || r == 'Q' {
			return false
		}
	}
	return true
}
