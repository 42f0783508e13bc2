package fordsim

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FordConnect Query: Ford's official read-only API for personal use, as
// marq24/ha-fordconnect-query calls it (const.py, application_credentials.py):
// an authorization code flow with the owner's own app (client id and
// secret), one consent per car, and GET /garage and /telemetry with the
// bearer token, paced by Ford at about one request a minute.

// FordConnect defaults: the simulator's registered app.
const (
	FconClientID     = "sim-client"
	FconClientSecret = "sim-secret"
	FconRedirect     = "http://localhost:8080/fordconnect/callback"
)

// fconGrant is a code or token of FordConnect's and the car it covers.
type fconGrant struct {
	vin      string
	redirect string // codes: the redirect they were issued for
	expires  time.Time
}

// fconState is the simulator's FordConnect side; s.mu guards it.
type fconState struct {
	codes, access, refresh map[string]fconGrant
	lastQuery              map[string]time.Time // access token → its last Query request
	consents               int                  // consents given, to pick the next car
}

func (s *Sim) fcon() *fconState {
	if s.fc == nil {
		s.fc = &fconState{codes: map[string]fconGrant{}, access: map[string]fconGrant{}, refresh: map[string]fconGrant{}, lastQuery: map[string]time.Time{}}
	}
	return s.fc
}

// fconAuthorize is the consent: the owner signs in and consents to one car
// (the next one not consented yet), and the browser is sent to the
// registered redirect with a code and the state, which Ford's init proxy
// cuts to 16 bytes.
func (s *Sim) fconAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	switch {
	case q.Get("client_id") != s.opts.fconClientID():
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case !slices.Contains(s.opts.fconRedirects(), redirect):
		http.Error(w, "redirect_uri is not registered for this application", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code":
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	}
	state := q.Get("state")
	if len(state) > 16 {
		state = state[:16]
	}
	s.mu.Lock()
	fc := s.fcon()
	vin := s.order[fc.consents%len(s.order)]
	fc.consents++
	code := token("fconcode-")
	fc.codes[code] = fconGrant{vin: vin, redirect: redirect, expires: s.now().Add(10 * time.Minute)}
	s.mu.Unlock()
	w.Header().Set("Location", redirect+"?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(state))
	w.WriteHeader(http.StatusFound)
}

// fconToken takes the authorization_code and refresh_token grants with the
// app's client id and secret in the body; a refresh token is single use.
func (s *Sim) fconToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "unreadable form"})
		return
	}
	f := r.PostForm
	if f.Get("client_id") != s.opts.fconClientID() || f.Get("client_secret") != s.opts.fconSecret() {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "AADB2C90081: client authentication failed"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fc := s.fcon()
	var g fconGrant
	var ok bool
	switch f.Get("grant_type") {
	case "authorization_code":
		g, ok = fc.codes[f.Get("code")]
		delete(fc.codes, f.Get("code"))
		ok = ok && s.now().Before(g.expires) && f.Get("redirect_uri") == g.redirect
	case "refresh_token":
		if s.inAuthOutage("fordconnect") {
			break // refused, the refresh token kept
		}
		g, ok = fc.refresh[f.Get("refresh_token")]
		delete(fc.refresh, f.Get("refresh_token"))
		ok = ok && s.now().Before(g.expires)
		if ok {
			s.stats.Refreshes++
		}
	default:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type"})
		return
	}
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "AADB2C90080: The provided grant has expired or was already used."})
		return
	}
	ttl := s.opts.AccessTTL
	access, refresh := token("fconaccess-"), token("fconrefresh-")
	fc.access[access] = fconGrant{vin: g.vin, expires: s.now().Add(ttl)}
	fc.refresh[refresh] = fconGrant{vin: g.vin, expires: s.now().Add(s.opts.RefreshTTL)}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
		"expires_in": int(ttl.Seconds()), "scope": "openid offline_access"})
}

// fconQuery checks a Query request's token and pace: the car it covers, or
// nil with the answer written.
func (s *Sim) fconQuery(w http.ResponseWriter, r *http.Request) *vehicle {
	fc := s.fcon()
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g, ok := fc.access[tok]
	if !ok || !s.now().Before(g.expires) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token", "message": "Access token is missing or invalid"})
		return nil
	}
	unit := tok // the pace's unit: the access token, or the whole app
	if s.opts.FconPacePerApp {
		unit = ""
	}
	if last, seen := fc.lastQuery[unit]; seen && s.now().Sub(last) < s.opts.fconPace() {
		wait := s.opts.fconPace() - s.now().Sub(last)
		secs := int(wait.Seconds() + 0.999)
		msg := "Too Many Requests"
		switch s.opts.FconRetryAfter {
		case "date":
			// An HTTP date has whole seconds: the next second after the wait.
			w.Header().Set("Retry-After", s.now().Add(wait).Add(time.Second).UTC().Format(http.TimeFormat))
		case "body":
			msg = "Rate limit is exceeded. Try again in " + strconv.Itoa(secs) + " seconds."
		default:
			w.Header().Set("Retry-After", strconv.Itoa(secs))
		}
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": msg})
		s.stats.FconRefused++
		return nil
	}
	fc.lastQuery[unit] = s.now()
	return s.vehicles[g.vin]
}

func (s *Sim) fconGarage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.fconQuery(w, r)
	if v == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"vin": v.vin, "vehicleType": v.model, "modelName": v.model, "modelYear": v.year,
		"engineType": v.engine, "nickName": v.nickname})
}

func (s *Sim) fconTelemetry(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.fconQuery(w, r)
	if v == nil {
		return
	}
	writeJSON(w, http.StatusOK, v.doc)
}

// RevokeFordConnect kills every FordConnect refresh and access token (the
// owner withdrew consent), as POST /_sim/revoke?backend=fordconnect does.
func (s *Sim) RevokeFordConnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	fc := s.fcon()
	fc.refresh, fc.access = map[string]fconGrant{}, map[string]fconGrant{}
}

func (o Options) fconClientID() string { return cmp.Or(o.FconClientID, FconClientID) }
func (o Options) fconSecret() string   { return cmp.Or(o.FconClientSecret, FconClientSecret) }
func (o Options) fconRedirects() []string {
	if len(o.FconRedirects) == 0 {
		return []string{FconRedirect}
	}
	return o.FconRedirects
}
func (o Options) fconPace() time.Duration {
	if o.FconPace <= 0 {
		return time.Minute
	}
	return o.FconPace
}
