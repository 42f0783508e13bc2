// Package fordsim is a FordPass cloud simulator: the same paths, headers and
// JSON shapes as Ford's B2C login, token endpoints, vehicle list, telemetry,
// commands and telemetry websocket, on one origin, with the checks the real
// cloud makes (PKCE, token validity and rotation, Application-Id) and a
// control API under /_sim/ to break it on purpose: revoke every refresh
// token, expire every access token, an outage, a rate limit, a daily call
// limit, a changed car. Tests, `fordpass2mqtt demo` and `fordpass2mqtt
// simulate` use it; it keeps everything in memory.
package fordsim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Sim. Zero values take the defaults in brackets.
type Options struct {
	Vehicles int // cars per account [1]
	// Accounts are the Ford accounts served [1], each with Vehicles cars
	// of its own: account n's are VIN((n-1)*Vehicles+1) onwards. A sign-in
	// is to account 1 unless POST /_sim/signin?account=N picked another.
	Accounts     int
	CommandDelay time.Duration // time from a command to its outcome [2s]
	// DailyLimit is how many calls in 24 h lock the account (0: none). As
	// the reports of lockouts describe (REST polling, repeated sign-ins),
	// it counts every call but the Autonomic token exchanges, which
	// TokenDailyLimit counts on their own.
	DailyLimit      int
	TokenDailyLimit int           // Autonomic token exchanges per 24 h before a lockout; 0: none
	AccessTTL       time.Duration // CAT access token lifetime [1h]
	RefreshTTL      time.Duration // CAT refresh token lifetime [90 days]
	AutonomicTTL    time.Duration // Autonomic token lifetime [5m]
	Heartbeat       time.Duration // websocket heartbeat interval [20s]
	ClockSkew       time.Duration // added to the Date header Ford sends
	ExtraAppIDs     []string      // Application-Ids accepted besides the known ones
	Now             func() time.Time
	FailCommands    bool // every command ends in command_failed_on_device
	// Capabilities are Ford's capability flags every car lists besides
	// its own (a test of a command that needs a new one).
	Capabilities   []string
	AcceptAnyAppID bool
	// FordConnect Query: the owner's registered app [FconClientID,
	// FconClientSecret, FconRedirect] and how often Ford answers a token's
	// Query requests before a 429 [1m].
	FconClientID, FconClientSecret string
	FconRedirects                  []string
	FconPace                       time.Duration
	// FconPacePerApp makes the pace one over every token of the app
	// instead of one per access token (Ford's unit is not documented).
	FconPacePerApp bool
	// FconRetryAfter is how a 429 says when to ask again: "seconds" (the
	// default, Retry-After: N), "date" (Retry-After as an HTTP date) or
	// "body" (no header; "try again in N seconds" in the body).
	FconRetryAfter string
}

// Sim is a running simulator; serve it with Handler().
type Sim struct {
	opts Options
	now  func() time.Time

	mu       sync.Mutex
	vehicles map[string]*vehicle
	order    []string
	codes    map[string]codeGrant
	// owner is the sign-in every live token comes from (codes, B2C, CAT,
	// refresh and Autonomic tokens alike): its account, and which sign-in
	// it was, so one sign-in's sockets are told from another's.
	owner       map[string]signIn
	nextAccount int                  // the account of the next sign-in (0: account 1)
	signIns     int                  // sign-ins so far, numbering them
	b2c         map[string]time.Time // B2C access tokens → expiry
	access      map[string]time.Time // CAT access tokens → expiry
	refresh     map[string]time.Time // live CAT refresh tokens → expiry
	auto        map[string]time.Time // Autonomic tokens → expiry
	outageTo    time.Time
	// authOutage: until then, refreshes of the backend are refused as if
	// the sign-in were dead (invalid_grant, 460), without the refresh
	// tokens being revoked (Ford's outages, ha-fordconnect-query #37).
	authOutage map[string]time.Time
	outageCode int
	rateTo     time.Time
	slowTo     time.Time
	slowBy     time.Duration
	streamMode string // "", "close", "stall" or "garbage"
	// What Ford's protocol is today (POST /_sim/protocol): the subject the
	// Autonomic exchange accepts ("access", "refresh" or "any") and the
	// vehicle lists served ("both", "expdashboard" or "garage").
	subjectMode, listMode string
	listEmpty             bool // both vehicle lists answer 200 with no vehicles
	restGone              bool // GET telemetry answers 404, as when Ford retires it
	deltasOnly            bool // a socket does not send the whole record first
	// onePerToken: a socket opened closes the one the token's account
	// already has open (sockets_per_token=1); sockets are the open ones,
	// each closed by closing its channel.
	onePerToken bool
	sockets     map[chan struct{}]signIn
	hidden      map[string]bool // VINs the vehicle lists leave out
	messages    []simMessage    // the message centre, every account's
	streamTo    time.Time
	calls       []time.Time // within 24 h, for DailyLimit
	tokenCalls  []time.Time // within 24 h, for TokenDailyLimit
	stats       Stats
	failNext    map[string]int // command type → how many to fail
	fc          *fconState
	timers      []*time.Timer
	closed      bool
}

type codeGrant struct {
	challenge string
	redirect  string
	expires   time.Time
	who       signIn
}

// signIn is one sign-in to one account: every token it leads to is its.
type signIn struct{ account, n int }

// Stats is what GET /_sim/stats answers.
type Stats struct {
	CallsTotal     int            `json:"calls_total"`
	Calls          map[string]int `json:"calls"`
	Refreshes      int            `json:"refreshes"`
	CodesExchanged int            `json:"codes_exchanged"`
	// StreamTokens counts the renewed tokens open sockets accepted.
	StreamTokens int `json:"stream_tokens"`
	// RateLimited counts the calls answered 429 by POST /_sim/ratelimit:
	// the calls a client made while Ford said to wait.
	RateLimited int `json:"rate_limited"`
	// SocketsDisplaced counts the sockets closed because another opened
	// on the same token (sockets_per_token=1).
	SocketsDisplaced int `json:"sockets_displaced"`
	// FconRefused counts FordConnect Query requests answered 429 for
	// coming sooner than Ford's pace.
	FconRefused int           `json:"fcon_refused"`
	Commands    []CommandStat `json:"commands"`
}

// CommandStat is one command the simulator received.
type CommandStat struct {
	VIN        string         `json:"vin"`
	Type       string         `json:"type"`
	At         time.Time      `json:"at"`
	Properties map[string]any `json:"properties,omitempty"`
}

// New makes a simulator.
func New(o Options) *Sim {
	if o.Vehicles <= 0 {
		o.Vehicles = 1
	}
	if o.Accounts <= 0 {
		o.Accounts = 1
	}
	if o.CommandDelay <= 0 {
		o.CommandDelay = 2 * time.Second
	}
	if o.AccessTTL <= 0 {
		o.AccessTTL = time.Hour
	}
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = 90 * 24 * time.Hour
	}
	if o.AutonomicTTL <= 0 {
		o.AutonomicTTL = 5 * time.Minute
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 20 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Sim{opts: o, now: o.Now, vehicles: map[string]*vehicle{}, codes: map[string]codeGrant{},
		b2c: map[string]time.Time{}, access: map[string]time.Time{}, refresh: map[string]time.Time{},
		auto: map[string]time.Time{}, owner: map[string]signIn{}, failNext: map[string]int{}, stats: Stats{Calls: map[string]int{}}}
	for i := 1; i <= o.Vehicles*o.Accounts; i++ {
		v := newVehicle(i, o.Now())
		v.account = (i-1)/o.Vehicles + 1
		s.vehicles[v.vin] = v
		s.order = append(s.order, v.vin)
		s.messages = append(s.messages, simMessage{id: int64(1000 + i), account: v.account, vin: v.vin, typ: "SERVICE",
			subject: "Service due for " + v.nickname, body: "Your " + v.model + " is due for its yearly service.", created: o.Now().UTC().Format(time.RFC3339)})
	}
	for a := 1; a <= o.Accounts; a++ {
		s.messages = append(s.messages, simMessage{id: int64(900 + a), account: a, typ: "GENERAL",
			subject: "Welcome to FordPass", body: "Thank you for connecting your vehicles.", created: o.Now().UTC().Format(time.RFC3339)})
	}
	return s
}

// Streams is the number of open websockets of a vehicle.
func (s *Sim) Streams(vin string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vehicles[vin]; ok {
		return len(v.subs)
	}
	return 0
}

// VINs lists the simulated vehicles.
func (s *Sim) VINs() []string { return append([]string(nil), s.order...) }

// Close stops pending command timers and closes open websockets.
func (s *Sim) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, t := range s.timers {
		t.Stop()
	}
	for _, v := range s.vehicles {
		for ch := range v.subs {
			close(ch)
			delete(v.subs, ch)
		}
	}
}

// Handler serves the Ford endpoints and the /_sim/ control API.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	// Each control endpoint names the parameters it takes; any other is
	// refused, so a test cannot set a switch the simulator lacks and pass.
	mux.HandleFunc("POST /_sim/revoke", params(s.ctlRevoke, "backend", "account"))
	mux.HandleFunc("POST /_sim/expire", params(s.ctlExpire, "account"))
	mux.HandleFunc("POST /_sim/signin", params(s.ctlSignIn, "account"))
	mux.HandleFunc("POST /_sim/authoutage", params(s.ctlAuthOutage, "backend", "for"))
	mux.HandleFunc("POST /_sim/outage", params(s.ctlOutage, "status", "for"))
	mux.HandleFunc("POST /_sim/ratelimit", params(s.ctlRateLimit, "for"))
	mux.HandleFunc("POST /_sim/fail", params(s.ctlFail, "command", "count"))
	mux.HandleFunc("POST /_sim/slow", params(s.ctlSlow, "for", "delay"))
	mux.HandleFunc("POST /_sim/stream", params(s.ctlStream, "mode", "for"))
	mux.HandleFunc("POST /_sim/protocol", params(s.ctlProtocol, "autonomic_subject", "vehicle_list", "rest_telemetry", "stream_record", "sockets_per_token"))
	mux.HandleFunc("POST /_sim/account", params(s.ctlAccount, "hide"))
	mux.HandleFunc("PATCH /_sim/vehicles/{vin}", params(s.ctlPatch, "at"))
	mux.HandleFunc("GET /_sim/vehicles", params(s.ctlVehicles))
	mux.HandleFunc("GET /_sim/stats", params(s.ctlStats))
	mux.HandleFunc("GET /{tenant}/{policy}/oauth2/v2.0/authorize", s.ford("b2c_authorize", s.authorize))
	mux.HandleFunc("POST /{tenant}/{policy}/oauth2/v2.0/token", s.ford("b2c_token", s.b2cToken))
	mux.HandleFunc("POST /api/token/v2/cat-with-b2c-access-token", s.ford("cat_from_b2c", s.catFromB2C))
	mux.HandleFunc("POST /api/token/v2/cat-with-refresh-token", s.ford("cat_refresh", s.catRefresh))
	mux.HandleFunc("POST /v1/auth/oidc/token", s.ford("autonomic_token", s.autonomicToken))
	mux.HandleFunc("POST /api/expdashboard/v1/details/", s.ford("vehicle_list", s.vehicleList))
	mux.HandleFunc("GET /api/fpcpl-user-garage-service/v1/user/garage", s.ford("garage", s.garage))
	mux.HandleFunc("GET /v1/telemetry/sources/fordpass/vehicles/{vin}", s.ford("telemetry", s.telemetry))
	mux.HandleFunc("POST /v1/command/vehicles/{vin}/commands", s.ford("command", s.command))
	mux.HandleFunc("POST /v1beta/command/vehicles/{vin}/commands", s.ford("command", s.commandBeta))
	mux.HandleFunc("GET /v1beta/telemetry/sources/fordpass/vehicles/{vin}/ws", s.ford("stream", s.stream))
	mux.HandleFunc("GET /fcon-public/v1/auth/init", s.ford("fcon_authorize", s.fconAuthorize))
	mux.HandleFunc("POST /dah2vb2cprod.onmicrosoft.com/oauth2/v2.0/token", s.ford("fcon_token", s.fconToken))
	mux.HandleFunc("GET /fcon-query/v1/garage", s.ford("fcon_garage", s.fconGarage))
	mux.HandleFunc("GET /fcon-query/v1/telemetry", s.ford("fcon_telemetry", s.fconTelemetry))
	mux.HandleFunc("GET /fcon-query/v1/vehicle-health/alerts", s.ford("fcon_health_alerts", s.fconExtra("health_alerts")))
	mux.HandleFunc("GET /fcon-query/v1/electric/departure-times", s.ford("fcon_departure_schedules", s.fconExtra("departure_schedules")))
	mux.HandleFunc("GET /fcon-query/v1/electric/charge-schedules", s.ford("fcon_charge_schedules", s.fconExtra("charge_schedules")))
	mux.HandleFunc("GET /api/electrification/experiences/v2/vehicles/preferred-charge-times", s.ford("charge_locations", s.chargeLocationList))
	mux.HandleFunc("POST /api/electrification/experiences/v2/vehicles/preferred-charge-times/locations/{id}", s.ford("charge_location_target", s.chargeLocationTarget))
	mux.HandleFunc("GET /api/messagecenter/v3/messages", s.ford("messages", s.messageList))
	mux.HandleFunc("DELETE /api/messagecenter/v3/user/messages", s.ford("messages_delete", s.deleteMessages))
	mux.HandleFunc("POST /api/rcc/profile/status", s.ford("climate_profile", s.climateProfile))
	mux.HandleFunc("PUT /api/rcc/profile/update", s.ford("climate_profile_update", s.climateUpdate))
	mux.HandleFunc("PUT /api/gmfi/v1/session", s.ford("guard_mode", s.guardMode))
	mux.HandleFunc("DELETE /api/gmfi/v1/session", s.ford("guard_mode", s.guardMode))
	mux.HandleFunc("PUT /vehicles/vpfi/zonelightingactivation", s.ford("zone_lighting", s.zoneLights))
	mux.HandleFunc("DELETE /vehicles/vpfi/zonelightingactivation", s.ford("zone_lighting", s.zoneLights))
	mux.HandleFunc("PUT /vehicles/vpfi/{zone}/zonelightingzone", s.ford("zone_lighting", s.zoneLights))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every answer carries Ford's clock (skewed on purpose with ClockSkew).
		w.Header().Set("Date", s.now().Add(s.opts.ClockSkew).UTC().Format(http.TimeFormat))
		mux.ServeHTTP(w, r)
	})
}

// ford wraps a Ford endpoint: counting, the Date header, outages, rate
// limits and the daily lockout, in that order.
func (s *Sim) ford(name string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		now := s.now()
		s.mu.Lock()
		s.stats.CallsTotal++
		s.stats.Calls[name]++
		cut := now.Add(-24 * time.Hour)
		within := func(list []time.Time) []time.Time {
			i := sort.Search(len(list), func(i int) bool { return list[i].After(cut) })
			return append(list[i:], now)
		}
		var locked bool
		switch {
		case strings.HasPrefix(name, "fcon_"):
			// FordConnect is another API with a pace of its own
			// (FconPace); a FordPass lockout does not reach it.
		case name == "autonomic_token":
			s.tokenCalls = within(s.tokenCalls)
			locked = s.opts.TokenDailyLimit > 0 && len(s.tokenCalls) > s.opts.TokenDailyLimit
		default:
			s.calls = within(s.calls)
			locked = s.opts.DailyLimit > 0 && len(s.calls) > s.opts.DailyLimit
		}
		outage, outageCode := now.Before(s.outageTo), s.outageCode
		rateFor := s.rateTo.Sub(now)
		slow := time.Duration(0)
		if now.Before(s.slowTo) {
			slow = s.slowBy
		}
		s.mu.Unlock()

		if slow > 0 {
			select {
			case <-time.After(slow):
			case <-r.Context().Done():
				return
			}
		}

		switch {
		case outage && outageCode == 0:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			http.Error(w, "connection dropped", http.StatusBadGateway)
		case outage:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(outageCode)
			fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", outageCode, http.StatusText(outageCode))
		case rateFor > 0:
			s.mu.Lock()
			s.stats.RateLimited++
			s.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(int(rateFor.Seconds()+0.999)))
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "TOO_MANY_REQUESTS", "message": "Rate limit exceeded"})
		case locked:
			w.Header().Set("Retry-After", "86400")
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "TOO_MANY_REQUESTS", "message": "Account temporarily locked"})
		default:
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			h(w, r)
		}
	}
}

// params refuses a control request with a query parameter not in known (400,
// naming it).
func params(h http.HandlerFunc, known ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k := range r.URL.Query() {
			if !slices.Contains(known, k) {
				msg := fmt.Sprintf("unknown parameter %q", k)
				if len(known) > 0 {
					msg += fmt.Sprintf(" (this endpoint takes %s)", strings.Join(known, ", "))
				} else {
					msg += " (this endpoint takes none)"
				}
				http.Error(w, msg, http.StatusBadRequest)
				return
			}
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func token(prefix string) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func (s *Sim) appIDOK(r *http.Request) bool {
	id := r.Header.Get("Application-Id")
	if s.opts.AcceptAnyAppID {
		return id != ""
	}
	switch id {
	case "667D773E-1BDC-4139-8AD0-2B16474E8DC7", "BFE8C5ED-D687-4C19-A5DD-F92CDFC4503A",
		"39CD6590-B1B9-42CB-BEF9-0DC1FDB96260", "71AA9ED7-B26B-4C15-835E-9F35CC238561",
		"C1DFFEF5-5BA5-486A-9054-8B39A9DF9AFC", "45133B88-0671-4AAF-B8D1-99E684ED4E45":
		return true
	}
	for _, x := range s.opts.ExtraAppIDs {
		if x == id {
			return true
		}
	}
	return false
}

func decodeBody(r *http.Request, v any) bool {
	data, err := io.ReadAll(r.Body)
	return err == nil && json.Unmarshal(data, v) == nil
}
