package fordsim

import (
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

func (s *Sim) ctlRevoke(w http.ResponseWriter, r *http.Request) {
	account, ok := accountParam(w, r, s.opts.Accounts)
	if !ok {
		return
	}
	switch r.URL.Query().Get("backend") {
	case "", "fordpass":
		s.RevokeAccount(account)
	case "fordconnect":
		s.RevokeFordConnect()
	default:
		http.Error(w, "backend must be fordpass or fordconnect", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Revoke kills every refresh token, as POST /_sim/revoke does.
func (s *Sim) Revoke() { s.RevokeAccount(0) }

// RevokeAccount kills the refresh tokens of one account (0: of every
// account), as POST /_sim/revoke?account=N does.
func (s *Sim) RevokeAccount(account int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.refresh {
		if account == 0 || s.owner[k].account == account {
			delete(s.refresh, k)
			delete(s.owner, k)
		}
	}
}

// accountParam reads account=N (0 when absent: every account), answering
// 400 for a number that names no account.
func accountParam(w http.ResponseWriter, r *http.Request, accounts int) (int, bool) {
	raw := r.URL.Query().Get("account")
	if raw == "" {
		return 0, true
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > accounts {
		http.Error(w, fmt.Sprintf("account must be a number from 1 to %d", accounts), http.StatusBadRequest)
		return 0, false
	}
	return n, true
}

// ctlSignIn picks the account the next sign-in is to (POST
// /_sim/signin?account=N): the next login link followed signs in to it.
func (s *Sim) ctlSignIn(w http.ResponseWriter, r *http.Request) {
	account, ok := accountParam(w, r, s.opts.Accounts)
	if !ok {
		return
	}
	if account == 0 {
		http.Error(w, "signin takes account=N", http.StatusBadRequest)
		return
	}
	s.SignInTo(account)
	w.WriteHeader(http.StatusNoContent)
}

// SignInTo makes the next sign-in (the next login link followed) one to
// account n.
func (s *Sim) SignInTo(n int) {
	s.mu.Lock()
	s.nextAccount = n
	s.mu.Unlock()
}

func (s *Sim) ctlExpire(w http.ResponseWriter, r *http.Request) {
	account, ok := accountParam(w, r, s.opts.Accounts)
	if !ok {
		return
	}
	s.ExpireAccount(account)
	w.WriteHeader(http.StatusNoContent)
}

// Expire makes every access token (CAT, Autonomic and FordConnect's)
// expire now.
func (s *Sim) Expire() { s.ExpireAccount(0) }

// ExpireAccount makes the access tokens of one account (0: of every
// account, FordConnect's too) expire now.
func (s *Sim) ExpireAccount(account int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.now().Add(-time.Second)
	for k := range s.access {
		if account == 0 || s.owner[k].account == account {
			s.access[k] = past
		}
	}
	for k := range s.auto {
		if account == 0 || s.owner[k].account == account {
			s.auto[k] = past
		}
	}
	if account != 0 {
		return
	}
	fc := s.fcon()
	for k, g := range fc.access {
		g.expires = past
		fc.access[k] = g
	}
}

func (s *Sim) ctlAuthOutage(w http.ResponseWriter, r *http.Request) {
	backend := r.URL.Query().Get("backend")
	if backend != "fordpass" && backend != "fordconnect" {
		http.Error(w, "backend must be fordpass or fordconnect", http.StatusBadRequest)
		return
	}
	d, err := durationParam(r, "for", 60*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.AuthOutage(backend, d)
	w.WriteHeader(http.StatusNoContent)
}

// AuthOutage refuses the backend's token refreshes for d as if the sign-in
// were dead (FordPass: 460 "Invalid or Expired Token"; FordConnect:
// invalid_grant) while the refresh tokens stay good, as
// POST /_sim/authoutage does.
func (s *Sim) AuthOutage(backend string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.authOutage == nil {
		s.authOutage = map[string]time.Time{}
	}
	s.authOutage[backend] = s.now().Add(d)
}

// inAuthOutage says whether backend's refreshes are refused now; s.mu held.
func (s *Sim) inAuthOutage(backend string) bool {
	return s.now().Before(s.authOutage[backend])
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

// ctlProtocol changes Ford's protocol the way Ford has changed it or may:
// autonomic_subject=access|refresh|any (which FordPass token the Autonomic
// exchange accepts), vehicle_list=both|expdashboard|garage (which list is
// served; the other answers 404) or empty (both answer 200 with no vehicles,
// as Ford's answers left the cars out for hours in August 2026), rest_telemetry=gone|ok (GET
// telemetry answers 404, the websocket alone carries the car's state) and
// stream_record=first|none (whether a socket's first frame is the car's whole
// record, or the socket sends deltas only), and sockets_per_token=1|0
// (1: a socket opened closes the one already open on the same token, as
// ha-fordpass's README says Ford binds the socket to one car at a time;
// 0: no limit).
func (s *Sim) ctlProtocol(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	subject, list, rest, first := q.Get("autonomic_subject"), q.Get("vehicle_list"), q.Get("rest_telemetry"), q.Get("stream_record")
	perToken := q.Get("sockets_per_token")
	if perToken != "" && perToken != "0" && perToken != "1" {
		http.Error(w, "sockets_per_token must be 1 or 0 (no limit)", http.StatusBadRequest)
		return
	}
	if subject != "" && subject != "access" && subject != "refresh" && subject != "any" {
		http.Error(w, "autonomic_subject must be access, refresh or any", http.StatusBadRequest)
		return
	}
	if list != "" && list != "both" && list != "expdashboard" && list != "garage" && list != "empty" {
		http.Error(w, "vehicle_list must be both, expdashboard, garage or empty", http.StatusBadRequest)
		return
	}
	if rest != "" && rest != "gone" && rest != "ok" {
		http.Error(w, "rest_telemetry must be gone or ok", http.StatusBadRequest)
		return
	}
	if first != "" && first != "first" && first != "none" {
		http.Error(w, "stream_record must be first or none", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if subject != "" {
		s.subjectMode = subject
	}
	switch list {
	case "":
	case "empty":
		s.listEmpty = true
	default:
		s.listMode, s.listEmpty = list, false
	}
	if rest != "" {
		s.restGone = rest == "gone"
	}
	if first != "" {
		s.deltasOnly = first == "none"
	}
	if perToken != "" {
		s.onePerToken = perToken == "1"
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// ctlAccount leaves cars out of both vehicle lists (hide=VIN,VIN; empty:
// none), as when Ford's list drops a car that is still on the account. The
// cars' telemetry, socket and commands keep working.
func (s *Sim) ctlAccount(w http.ResponseWriter, r *http.Request) {
	hidden := map[string]bool{}
	for _, vin := range strings.Split(r.URL.Query().Get("hide"), ",") {
		vin = strings.ToUpper(strings.TrimSpace(vin))
		if vin == "" {
			continue
		}
		s.mu.Lock()
		_, ok := s.vehicles[vin]
		s.mu.Unlock()
		if !ok {
			http.Error(w, fmt.Sprintf("hide: no simulated vehicle %s", vin), http.StatusBadRequest)
			return
		}
		hidden[vin] = true
	}
	s.mu.Lock()
	s.hidden = hidden
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) ctlFail(w http.ResponseWriter, r *http.Request) {
	typ := r.URL.Query().Get("command")
	if _, known := fordapi.CommandVersions[typ]; !known {
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

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
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
	writeJSON(w, http.StatusOK, s.Stats())
}
