package mqttapi

import "time"

// The payloads of the MQTT contract: what the bridge publishes on the
// topics of Tree, and what doctor, discovery, Node-RED flows and the tests
// read back.

// Auth states published on P/auth/state.
const (
	StateOK             = "ok"
	StateReauthRequired = "reauth_required"
	StateRateLimited    = "rate_limited"
	StateUnavailable    = "unavailable"
)

// AuthInfo is what P/auth/detail carries.
type AuthInfo struct {
	State    string     `json:"state"`
	Reason   string     `json:"reason"`
	Since    time.Time  `json:"since"`
	RetryAt  *time.Time `json:"retry_at,omitempty"`
	LoginURL string     `json:"login_url,omitempty"`
	// SignInURL is the bridge's own sign-in page (HTTP_PUBLIC_URL).
	SignInURL string `json:"sign_in_page,omitempty"`
	// LastSignIn reports the last code that was pasted, good or bad.
	LastSignIn *SignInResult `json:"last_sign_in,omitempty"`
	// Warning is a problem that does not stop the bridge now but will
	// later, such as a token that could not be saved.
	Warning string `json:"warning,omitempty"`
	// Backends are each backend's own state, when the bridge uses two
	// (FORD_BACKEND=both); State is then the worst of them.
	Backends []BackendInfo `json:"backends,omitempty"`
	// Account names the account this state is of, with several
	// (FORD_ACCOUNTS); on P/auth/detail, the worst one's.
	Account string `json:"account,omitempty"`
	// Accounts is each account's state, on P/auth/detail with several
	// accounts (State is the worst of them).
	Accounts map[string]string `json:"accounts,omitempty"`
}

// The backends' names, as in FORD_BACKEND and the P/auth/<backend>/
// topics.
const (
	BackendFordPass    = "fordpass"
	BackendFordConnect = "fordconnect"
)

// BackendInfo is one backend's auth state.
type BackendInfo struct {
	Name     string `json:"name"` // BackendFordPass or BackendFordConnect
	State    string `json:"state"`
	Reason   string `json:"reason"`
	LoginURL string `json:"login_url,omitempty"`
	// Cars are FordConnect's: each bridged car and whether it is
	// consented (only a consented car is read through FordConnect).
	Cars []BackendCar `json:"cars,omitempty"`
}

// BackendCar is a bridged car as FordConnect sees it.
type BackendCar struct {
	VIN       string `json:"vin"`
	Consented bool   `json:"consented"`
	// Refused says why Ford no longer takes the car's consent; RetryAt is
	// when the bridge tries it again by itself.
	Refused string     `json:"refused,omitempty"`
	RetryAt *time.Time `json:"retry_at,omitempty"`
}

// SignInResult is the outcome of one pasted code.
type SignInResult struct {
	At    time.Time `json:"at"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
}

// Command results published on P/VIN/command/result.
const (
	ResultAccepted = "accepted"
	ResultSuccess  = "success"
	ResultFailed   = "failed"
	ResultTimeout  = "timeout"
	ResultRejected = "rejected"
)

// Result is one message on P/VIN/command/result.
type Result struct {
	ID      string    `json:"id"`
	Command string    `json:"command"`
	Status  string    `json:"status"`
	Error   string    `json:"error"` // empty unless failed, timeout or rejected
	At      time.Time `json:"at"`
	// WaitedMS is how long the command waited in the car's queue before it
	// was sent (or given up); 0 for accepted and rejected.
	WaitedMS int64 `json:"waited_ms"`
}

// Info is P/bridge/info.
type Info struct {
	Version    string    `json:"version"`
	StartedAt  time.Time `json:"started_at"`
	VINs       []string  `json:"vins"`
	Calls24h   int       `json:"calls_24h"`
	CallBudget int       `json:"call_budget"`
	// Instance identifies the installation (its STATE_DIR), so doctor can
	// tell this bridge from another one on the same topics.
	Instance string `json:"instance"`
	// Reconnects1h counts broker connections in the last hour: many mean
	// another client uses the same MQTT_CLIENT_ID.
	Reconnects1h int `json:"reconnects_1h"`
	// Demo is set by fordpass2mqtt demo: simulated cars, a throwaway state.
	Demo bool `json:"demo,omitempty"`
	// Dark lists the cars that are offline (no working channel to Ford).
	Dark []string `json:"dark,omitempty"`
	// Accounts are the accounts' own figures, with several
	// (FORD_ACCOUNTS); VINs, Calls24h and CallBudget are then their sums.
	Accounts []AccountInfo `json:"accounts,omitempty"`
}

// AccountInfo is one account's part of P/bridge/info.
type AccountInfo struct {
	Name       string   `json:"name"`
	VINs       []string `json:"vins"`
	Calls24h   int      `json:"calls_24h"`
	CallBudget int      `json:"call_budget"`
}

// Vehicle availability published on P/VIN/availability.
const (
	Online  = "online"
	Offline = "offline"
)

// Dark is what P/VIN/availability/detail carries while a car is offline
// (an empty retained message while it is online).
type Dark struct {
	Reason string     `json:"reason"`
	Since  time.Time  `json:"since"`
	Until  *time.Time `json:"until,omitempty"` // when the budget allows the next call, if that is why
}

// Check statuses.
const (
	Pass = "pass"
	Warn = "warn"
	Fail = "fail"
)

// Check is one line of the doctor's checklist.
type Check struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Finding string `json:"finding"`
	Fix     string `json:"fix,omitempty"`
}

// Report is a doctor run, as printed with --json and retained on
// P/bridge/doctor.
type Report struct {
	At     time.Time `json:"at"`
	Checks []Check   `json:"checks"`
	// Sig is doctor's signature with the installation's key; the bridge
	// shows only reports it can verify.
	Sig string `json:"sig,omitempty"`
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}
