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
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Options configure a Sim. Zero values take the defaults in brackets.
type Options struct {
	Vehicles     int           // [1]
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
	AcceptAnyAppID  bool
}

// Sim is a running simulator; serve it with Handler().
type Sim struct {
	opts Options
	now  func() time.Time

	mu         sync.Mutex
	vehicles   map[string]*vehicle
	order      []string
	codes      map[string]codeGrant
	b2c        map[string]time.Time // B2C access tokens → expiry
	access     map[string]time.Time // CAT access tokens → expiry
	refresh    map[string]time.Time // live CAT refresh tokens → expiry
	auto       map[string]time.Time // Autonomic tokens → expiry
	outageTo   time.Time
	outageCode int
	rateTo     time.Time
	slowTo     time.Time
	slowBy     time.Duration
	streamMode string // "", "close", "stall" or "garbage"
	// What Ford's protocol is today (POST /_sim/protocol): the subject the
	// Autonomic exchange accepts ("access", "refresh" or "any") and the
	// vehicle lists served ("both", "expdashboard" or "garage").
	subjectMode, listMode string
	streamTo              time.Time
	calls                 []time.Time // within 24 h, for DailyLimit
	tokenCalls            []time.Time // within 24 h, for TokenDailyLimit
	stats                 Stats
	failNext              map[string]int // command type → how many to fail
	timers                []*time.Timer
	closed                bool
}

type codeGrant struct {
	challenge string
	redirect  string
	expires   time.Time
}

// Stats is what GET /_sim/stats answers.
type Stats struct {
	CallsTotal     int            `json:"calls_total"`
	Calls          map[string]int `json:"calls"`
	Refreshes      int            `json:"refreshes"`
	CodesExchanged int            `json:"codes_exchanged"`
	Commands       []CommandStat  `json:"commands"`
}

// CommandStat is one command the simulator received.
type CommandStat struct {
	VIN  string    `json:"vin"`
	Type string    `json:"type"`
	At   time.Time `json:"at"`
}

// New makes a simulator.
func New(o Options) *Sim {
	if o.Vehicles <= 0 {
		o.Vehicles = 1
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
		auto: map[string]time.Time{}, failNext: map[string]int{}, stats: Stats{Calls: map[string]int{}}}
	for i := 1; i <= o.Vehicles; i++ {
		v := newVehicle(i, o.Now())
		s.vehicles[v.vin] = v
		s.order = append(s.order, v.vin)
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
	mux.HandleFunc("POST /_sim/revoke", s.ctlRevoke)
	mux.HandleFunc("POST /_sim/expire", s.ctlExpire)
	mux.HandleFunc("POST /_sim/outage", s.ctlOutage)
	mux.HandleFunc("POST /_sim/ratelimit", s.ctlRateLimit)
	mux.HandleFunc("POST /_sim/fail", s.ctlFail)
	mux.HandleFunc("POST /_sim/slow", s.ctlSlow)
	mux.HandleFunc("POST /_sim/stream", s.ctlStream)
	mux.HandleFunc("POST /_sim/protocol", s.ctlProtocol)
	mux.HandleFunc("PATCH /_sim/vehicles/{vin}", s.ctlPatch)
	mux.HandleFunc("GET /_sim/vehicles", s.ctlVehicles)
	mux.HandleFunc("GET /_sim/stats", s.ctlStats)
	mux.HandleFunc("GET /{tenant}/{policy}/oauth2/v2.0/authorize", s.ford("b2c_authorize", s.authorize))
	mux.HandleFunc("POST /{tenant}/{policy}/oauth2/v2.0/token", s.ford("b2c_token", s.b2cToken))
	mux.HandleFunc("POST /api/token/v2/cat-with-b2c-access-token", s.ford("cat_from_b2c", s.catFromB2C))
	mux.HandleFunc("POST /api/token/v2/cat-with-refresh-token", s.ford("cat_refresh", s.catRefresh))
	mux.HandleFunc("POST /v1/auth/oidc/token", s.ford("autonomic_token", s.autonomicToken))
	mux.HandleFunc("POST /api/expdashboard/v1/details/", s.ford("vehicle_list", s.vehicleList))
	mux.HandleFunc("GET /api/fpcpl-user-garage-service/v1/user/garage", s.ford("garage", s.garage))
	mux.HandleFunc("GET /v1/telemetry/sources/fordpass/vehicles/{vin}", s.ford("telemetry", s.telemetry))
	mux.HandleFunc("POST /v1/command/vehicles/{vin}/commands", s.ford("command", s.command))
	mux.HandleFunc("GET /v1beta/telemetry/sources/fordpass/vehicles/{vin}/ws", s.ford("stream", s.stream))
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
		if name == "autonomic_token" {
			s.tokenCalls = within(s.tokenCalls)
			locked = s.opts.TokenDailyLimit > 0 && len(s.tokenCalls) > s.opts.TokenDailyLimit
		} else {
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

// ---- sign-in ----

func (s *Sim) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	switch {
	case q.Get("client_id") != "09852200-05fd-41f6-8c21-d36d3497dc64":
		http.Error(w, "AADB2C90007: unknown client_id", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		http.Error(w, "AADB2C90183: PKCE S256 code_challenge required", http.StatusBadRequest)
		return
	case redirect != "fordapp://userauthorized" && redirect != "lincolnapp://userauthorized":
		http.Error(w, "AADB2C90006: redirect_uri not registered", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code":
		http.Error(w, "AADB2C90079: response_type must be code", http.StatusBadRequest)
		return
	}
	code := token("simcode-")
	s.mu.Lock()
	s.codes[code] = codeGrant{challenge: q.Get("code_challenge"), redirect: redirect, expires: s.now().Add(10 * time.Minute)}
	s.mu.Unlock()
	w.Header().Set("Location", redirect+"?code="+url.QueryEscape(code))
	w.WriteHeader(http.StatusFound)
}

func (s *Sim) b2cToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "unreadable form"})
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "authorization_code" || f.Get("client_id") != "09852200-05fd-41f6-8c21-d36d3497dc64" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "AADB2C90080: bad grant_type or client_id"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.codes[f.Get("code")]
	delete(s.codes, f.Get("code")) // single use, even when the verifier is wrong
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	switch {
	case !ok || s.now().After(g.expires):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "AADB2C90080: The provided grant has expired or was already used."})
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "AADB2C90183: The supplied code_verifier is invalid."})
		return
	case f.Get("redirect_uri") != g.redirect:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "AADB2C90006: redirect_uri mismatch"})
		return
	}
	s.stats.CodesExchanged++
	t := token("simb2c-")
	s.b2c[t] = s.now().Add(time.Hour)
	writeJSON(w, http.StatusOK, map[string]any{"access_token": t, "token_type": "Bearer", "expires_in": 3600, "id_token": token("simid-")})
}

// issueCAT makes a CAT token pair; s.mu must be held.
func (s *Sim) issueCAT() map[string]any {
	a, rt := token("simcat-"), token("simrefresh-")
	now := s.now()
	s.access[a] = now.Add(s.opts.AccessTTL)
	s.refresh[rt] = now.Add(s.opts.RefreshTTL)
	return map[string]any{"access_token": a, "refresh_token": rt, "token_type": "Bearer",
		"expires_in": s.opts.AccessTTL.Seconds(), "refresh_expires_in": s.opts.RefreshTTL.Seconds(),
		"ford_consumer_id": "sim-consumer"}
}

func decodeBody(r *http.Request, v any) bool {
	data, err := io.ReadAll(r.Body)
	return err == nil && json.Unmarshal(data, v) == nil
}

func (s *Sim) catFromB2C(w http.ResponseWriter, r *http.Request) {
	if !s.appIDOK(r) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Application-Id missing or unknown", "errorCode": "400"})
		return
	}
	var body struct {
		IdpToken string `json:"idpToken"`
	}
	if !decodeBody(r, &body) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "malformed body"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.b2c[body.IdpToken]
	if !ok || s.now().After(exp) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Invalid or Expired Token", "errorCode": "460", "timestamp": s.now().UTC().Format(time.RFC3339)})
		return
	}
	delete(s.b2c, body.IdpToken)
	writeJSON(w, http.StatusOK, s.issueCAT())
}

func (s *Sim) catRefresh(w http.ResponseWriter, r *http.Request) {
	if !s.appIDOK(r) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Application-Id missing or unknown", "errorCode": "400"})
		return
	}
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	if !decodeBody(r, &body) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "malformed body"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Refreshes++
	exp, ok := s.refresh[body.RefreshToken]
	if !ok || s.now().After(exp) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid or Expired Token", "errorCode": "460", "timestamp": s.now().UTC().Format(time.RFC3339)})
		return
	}
	delete(s.refresh, body.RefreshToken) // rotation: the old refresh token is dead now
	writeJSON(w, http.StatusOK, s.issueCAT())
}

func (s *Sim) autonomicToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" || f.Get("client_id") != "fordpass-prod" ||
		f.Get("subject_issuer") != "fordpass" || f.Get("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "bad token exchange parameters"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	subject := f.Get("subject_token")
	exp, ok := s.access[subject]
	if s.subjectMode == "refresh" {
		ok = false // Ford's change: only the refresh token is accepted
	}
	if s.subjectMode == "refresh" || s.subjectMode == "any" {
		if rexp, isRefresh := s.refresh[subject]; isRefresh {
			exp, ok = rexp, true
		}
	}
	if !ok || s.now().After(exp) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token", "error_description": "subject token invalid or expired"})
		return
	}
	t := token("simauto-")
	s.auto[t] = s.now().Add(s.opts.AutonomicTTL)
	writeJSON(w, http.StatusOK, map[string]any{"access_token": t, "refresh_token": token("simautorefresh-"),
		"token_type": "Bearer", "expires_in": s.opts.AutonomicTTL.Seconds()})
}

// ---- data ----

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

func (s *Sim) vehicleList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listMode == "garage" {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found", "message": "No static resource api/expdashboard/v1/details."})
		return
	}
	if !s.appIDOK(r) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Application-Id missing or unknown"})
		return
	}
	if !s.catOK(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Invalid or Expired Token", "errorCode": "460"})
		return
	}
	var details, profiles, caps []any
	for _, vin := range s.order {
		d, p, c := s.vehicles[vin].profile()
		details, profiles, caps = append(details, d), append(profiles, p), append(caps, c)
	}
	writeJSON(w, http.StatusMultiStatus, map[string]any{
		"userVehicles":        map[string]any{"vehicleDetails": details},
		"vehicleProfile":      profiles,
		"vehicleCapabilities": caps,
	})
}

// garage is the newer app's vehicle list: a list of vehicles with their
// profile.
func (s *Sim) garage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listMode == "expdashboard" {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found", "message": "No static resource."})
		return
	}
	if !s.appIDOK(r) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Application-Id missing or unknown"})
		return
	}
	if !s.catOK(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Invalid or Expired Token", "errorCode": "460"})
		return
	}
	list := []any{}
	for _, vin := range s.order {
		v := s.vehicles[vin]
		list = append(list, map[string]any{"vin": v.vin, "nickName": v.nickname,
			"profile":      map[string]any{"model": v.model, "year": v.year, "engineType": v.engine},
			"capabilities": map[string]any{"remoteLock": "Display", "remoteStart": "Display", "remotePanicAlarm": !v.ev}})
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Sim) lookup(w http.ResponseWriter, r *http.Request) *vehicle {
	if !s.bearerOK(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "UNAUTHORIZED", "message": "provided token was expired"})
		return nil
	}
	v, ok := s.vehicles[r.PathValue("vin")]
	if !ok {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "FORBIDDEN", "message": "USER IS NOT AUTHORIZED TO PERFORM THIS OPERATION"})
		return nil
	}
	return v
}

func (s *Sim) telemetry(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.lookup(w, r)
	if v == nil {
		return
	}
	writeJSON(w, http.StatusOK, v.doc)
}

var simCommands = map[string]bool{
	"lock": true, "unlock": true, "remoteStart": true, "cancelRemoteStart": true, "statusRefresh": true, "startPanicCue": true,
}

func (s *Sim) command(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type       string         `json:"type"`
		Properties map[string]any `json:"properties"`
		WakeUp     bool           `json:"wakeUp"`
	}
	ok := decodeBody(r, &body)
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.lookup(w, r)
	if v == nil {
		return
	}
	if !ok || !simCommands[body.Type] {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "BAD_REQUEST", "message": "unknown command type"})
		return
	}
	id := token("")[:32]
	now := s.now()
	s.stats.Commands = append(s.stats.Commands, CommandStat{VIN: v.vin, Type: body.Type, At: now.UTC()})
	fail := s.opts.FailCommands || s.failNext[body.Type] > 0
	if s.failNext[body.Type] > 0 {
		s.failNext[body.Type]--
	}
	if body.Type != "startPanicCue" {
		s.setCommandState(v, body.Type, id, "", "REQUEST_QUEUED")
		d := s.opts.CommandDelay
		s.after(d/2, func() { s.setCommandState(v, body.Type, id, "REQUEST_QUEUED", "RECEIVED_BY_DEVICE") })
		s.after(d, func() {
			if fail {
				s.setCommandState(v, body.Type, id, "RECEIVED_BY_DEVICE", "COMMAND_FAILED_ON_DEVICE")
				return
			}
			if body.Type == "statusRefresh" {
				// Ford's answer to a refresh: the fresh metrics ride inside
				// the success state (states.statusRefreshCommand.value.metrics).
				s.setCommandStateWith(v, body.Type, id, "RECEIVED_BY_DEVICE", "success", s.refreshMetrics(v))
				return
			}
			s.applyCommand(v, body.Type)
			s.setCommandState(v, body.Type, id, "RECEIVED_BY_DEVICE", "SUCCESS")
		})
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "type": body.Type, "vin": v.vin, "status": "REQUEST_QUEUED"})
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
func (s *Sim) applyCommand(v *vehicle, typ string) {
	ts := s.now().UTC().Format(time.RFC3339)
	m, _ := v.doc["metrics"].(map[string]any)
	if m == nil {
		m = map[string]any{}
		v.doc["metrics"] = m
	}
	delta := map[string]any{}
	switch typ {
	case "lock", "unlock":
		state := "LOCKED"
		if typ == "unlock" {
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
	case "remoteStart":
		delta["remoteStartCountdownTimer"] = map[string]any{"updateTime": ts, "value": 900.0}
	case "cancelRemoteStart":
		delta["remoteStartCountdownTimer"] = map[string]any{"updateTime": ts, "value": 0.0}
	}
	for k, val := range delta {
		m[k] = val
	}
	v.doc["updateTime"] = ts
	s.push(v, map[string]any{"metrics": delta, "updateTime": ts})
}

// push sends a _data delta to the vehicle's websockets; s.mu held.
func (s *Sim) push(v *vehicle, delta map[string]any) {
	frame, _ := json.Marshal(map[string]any{"_data": delta})
	for ch := range v.subs {
		select {
		case ch <- frame:
		default: // a stuck client misses frames, as with Ford
		}
	}
}

var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}

func (s *Sim) stream(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	v := s.lookup(w, r)
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Unlock()
	if v == nil {
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	ch := make(chan []byte, 64)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	v.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(v.subs, ch)
		s.mu.Unlock()
	}()

	incoming := make(chan []byte)
	go func() {
		defer close(incoming)
		conn.SetReadLimit(64 << 10)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			incoming <- data
		}
	}()
	send := func(v any) bool {
		data, _ := json.Marshal(v)
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return conn.WriteMessage(websocket.TextMessage, data) == nil
	}
	mode := func() string {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.now().Before(s.streamTo) {
			return s.streamMode
		}
		return ""
	}
	if mode() == "close" {
		return
	}
	beat := time.NewTicker(s.opts.Heartbeat)
	defer beat.Stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		select {
		case frame, ok := <-ch:
			if !ok {
				return
			}
			switch mode() {
			case "stall":
				continue
			case "garbage":
				frame = []byte(`{"_data": not json`)
			case "close":
				return
			}
			_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if conn.WriteMessage(websocket.TextMessage, frame) != nil {
				return
			}
		case <-beat.C:
			switch mode() {
			case "stall":
				continue
			case "close":
				return
			case "garbage":
				_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if conn.WriteMessage(websocket.TextMessage, []byte("\x00garbage")) != nil {
					return
				}
				continue
			}
			if !send(map[string]any{"_data": map[string]any{"updateTime": s.now().UTC().Format(time.RFC3339)}}) {
				return
			}
		case <-check.C:
			s.mu.Lock()
			exp, ok := s.auto[tok]
			down := s.now().Before(s.outageTo) || s.now().Before(s.rateTo)
			s.mu.Unlock()
			if down {
				return // an outage drops the socket
			}
			if !ok || s.now().After(exp) {
				send(map[string]any{"_error": map[string]any{"code": 401, "message": "provided token was expired"}})
				return
			}
		case data, ok := <-incoming:
			if !ok {
				return
			}
			var msg struct {
				AccessToken string `json:"accessToken"`
			}
			if json.Unmarshal(data, &msg) != nil || msg.AccessToken == "" {
				continue
			}
			s.mu.Lock()
			exp, valid := s.auto[msg.AccessToken]
			valid = valid && s.now().Before(exp)
			s.mu.Unlock()
			if !valid {
				send(map[string]any{"_error": map[string]any{"code": 401, "message": "provided token was expired"}})
				return
			}
			tok = msg.AccessToken
			if !send(map[string]any{"_httpStatus": 202}) {
				return
			}
		}
	}
}

// ---- control API ----

func (s *Sim) ctlRevoke(w http.ResponseWriter, _ *http.Request) {
	s.Revoke()
	w.WriteHeader(http.StatusNoContent)
}

// Revoke kills every refresh token, as POST /_sim/revoke does.
func (s *Sim) Revoke() {
	s.mu.Lock()
	s.refresh = map[string]time.Time{}
	s.mu.Unlock()
}

func (s *Sim) ctlExpire(w http.ResponseWriter, _ *http.Request) {
	s.Expire()
	w.WriteHeader(http.StatusNoContent)
}

// Expire makes every access token (CAT and Autonomic) expire now.
func (s *Sim) Expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.now().Add(-time.Second)
	for k := range s.access {
		s.access[k] = past
	}
	for k := range s.auto {
		s.auto[k] = past
	}
}

func durationParam(r *http.Request, name string, def time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s must be a duration such as 30s", name)
	}
	return d, nil
}

func (s *Sim) ctlOutage(w http.ResponseWriter, r *http.Request) {
	d, err := durationParam(r, "for", 30*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	code := http.StatusServiceUnavailable
	if v := r.URL.Query().Get("status"); v != "" {
		code, err = strconv.Atoi(v)
		if err != nil || (code != 0 && (code < 400 || code > 599)) {
			http.Error(w, "status must be 0 (drop connections) or 400-599", http.StatusBadRequest)
			return
		}
	}
	s.Outage(code, d)
	w.WriteHeader(http.StatusNoContent)
}

// Outage makes every Ford endpoint answer status (0: drop the connection)
// for d.
func (s *Sim) Outage(status int, d time.Duration) {
	s.mu.Lock()
	s.outageTo, s.outageCode = s.now().Add(d), status
	s.mu.Unlock()
}

func (s *Sim) ctlRateLimit(w http.ResponseWriter, r *http.Request) {
	d, err := durationParam(r, "for", 60*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.rateTo = s.now().Add(d)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) ctlSlow(w http.ResponseWriter, r *http.Request) {
	d, err := durationParam(r, "for", 30*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	delay, err := durationParam(r, "delay", 60*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.slowTo, s.slowBy = s.now().Add(d), delay
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) ctlStream(w http.ResponseWriter, r *http.Request) {
	mode := r.URL.Query().Get("mode")
	if mode != "close" && mode != "stall" && mode != "garbage" {
		http.Error(w, "mode must be close, stall or garbage", http.StatusBadRequest)
		return
	}
	d, err := durationParam(r, "for", 60*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.streamMode, s.streamTo = mode, s.now().Add(d)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// ctlProtocol changes Ford's protocol the way Ford has changed it:
// autonomic_subject=access|refresh|any (which FordPass token the Autonomic
// exchange accepts) and vehicle_list=both|expdashboard|garage (which list
// is served; the other answers 404).
func (s *Sim) ctlProtocol(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	subject, list := q.Get("autonomic_subject"), q.Get("vehicle_list")
	if subject != "" && subject != "access" && subject != "refresh" && subject != "any" {
		http.Error(w, "autonomic_subject must be access, refresh or any", http.StatusBadRequest)
		return
	}
	if list != "" && list != "both" && list != "expdashboard" && list != "garage" {
		http.Error(w, "vehicle_list must be both, expdashboard or garage", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if subject != "" {
		s.subjectMode = subject
	}
	if list != "" {
		s.listMode = list
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) ctlFail(w http.ResponseWriter, r *http.Request) {
	typ := r.URL.Query().Get("command")
	if !simCommands[typ] {
		http.Error(w, "command must be a Ford command type such as lock", http.StatusBadRequest)
		return
	}
	n, err := strconv.Atoi(r.URL.Query().Get("count"))
	if err != nil || n < 1 {
		n = 1
	}
	s.mu.Lock()
	s.failNext[typ] += n
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) ctlVehicles(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"vins": s.order})
}

func (s *Sim) ctlPatch(w http.ResponseWriter, r *http.Request) {
	var patch map[string]any
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if !decodeBody(r, &patch) {
		http.Error(w, "body must be a JSON object (RFC 7386 merge patch)", http.StatusBadRequest)
		return
	}
	var err error
	switch at := r.URL.Query().Get("at"); at {
	case "":
		err = s.Patch(r.PathValue("vin"), patch)
	case "refresh":
		err = s.PatchAtRefresh(r.PathValue("vin"), patch)
	default:
		http.Error(w, "at must be empty or refresh", http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// PatchAtRefresh keeps the "metrics" of patch as what the car knows but the
// cloud has not seen: the next successful statusRefresh brings them inside
// its success state (and into the record), as Ford's does.
func (s *Sim) PatchAtRefresh(vin string, patch map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vehicles[strings.ToUpper(vin)]
	if !ok {
		return fmt.Errorf("no simulated vehicle %s", vin)
	}
	m, _ := patch["metrics"].(map[string]any)
	if v.pending == nil {
		v.pending = map[string]any{}
	}
	maps.Copy(v.pending, m)
	return nil
}

// Patch applies a JSON merge patch (RFC 7386) to a vehicle's telemetry
// record, stamps it, and pushes the change to open websockets.
func (s *Sim) Patch(vin string, patch map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vehicles[strings.ToUpper(vin)]
	if !ok {
		return fmt.Errorf("no simulated vehicle %s", vin)
	}
	ts := s.now().UTC().Format(time.RFC3339)
	if _, ok := patch["updateTime"]; !ok {
		patch["updateTime"] = ts
	}
	mergePatch(v.doc, patch)
	// The pushed delta carries the full new value of every second-level key
	// the patch touched, so a client's one-level merge ends in the same doc.
	delta := map[string]any{}
	for k, pv := range patch {
		pm, ok := pv.(map[string]any)
		cur, curOK := v.doc[k].(map[string]any)
		if !ok || !curOK {
			delta[k] = v.doc[k]
			continue
		}
		sub := map[string]any{}
		for sk := range pm {
			sub[sk] = cur[sk] // nil when the patch deleted it
		}
		delta[k] = sub
	}
	s.push(v, delta)
	return nil
}

// mergePatch applies RFC 7386.
func mergePatch(target, patch map[string]any) {
	for k, pv := range patch {
		if pv == nil {
			delete(target, k)
			continue
		}
		pm, ok := pv.(map[string]any)
		if !ok {
			target[k] = pv
			continue
		}
		tm, ok := target[k].(map[string]any)
		if !ok {
			tm = map[string]any{}
			target[k] = tm
		}
		mergePatch(tm, pm)
	}
}

// Snapshot returns the counters.
func (s *Sim) Snapshot() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Calls = make(map[string]int, len(s.stats.Calls))
	for k, v := range s.stats.Calls {
		st.Calls[k] = v
	}
	st.Commands = append([]CommandStat(nil), s.stats.Commands...)
	return st
}

func (s *Sim) ctlStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Snapshot())
}

// FollowLogin does what the browser of a user who signs in at once does:
// it opens the login URL the client built and returns the
// fordapp://userauthorized?code=… address the simulator redirects to. The
// demo, the load harness and the tests sign in with it.
func FollowLogin(ctx context.Context, loginURL string) (string, error) {
	hc := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loginURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		return "", fmt.Errorf("the simulated login page answered %d without a redirect", resp.StatusCode)
	}
	return loc, nil
}
