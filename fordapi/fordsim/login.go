package fordsim

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

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
	s.signIns++
	who := signIn{account: max(s.nextAccount, 1), n: s.signIns}
	s.nextAccount = 0
	s.codes[code] = codeGrant{challenge: q.Get("code_challenge"), redirect: redirect, expires: s.now().Add(10 * time.Minute), who: who}
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
	s.owner[t] = g.who
	writeJSON(w, http.StatusOK, map[string]any{"access_token": t, "token_type": "Bearer", "expires_in": 3600, "id_token": token("simid-")})
}

// issueCAT makes a CAT token pair of the sign-in who; s.mu must be held.
func (s *Sim) issueCAT(who signIn) map[string]any {
	a, rt := token("simcat-"), token("simrefresh-")
	s.owner[a], s.owner[rt] = who, who
	now := s.now()
	s.access[a] = now.Add(s.opts.AccessTTL)
	s.refresh[rt] = now.Add(s.opts.RefreshTTL)
	return map[string]any{"access_token": a, "refresh_token": rt, "token_type": "Bearer",
		"expires_in": s.opts.AccessTTL.Seconds(), "refresh_expires_in": s.opts.RefreshTTL.Seconds(),
		"ford_consumer_id": "sim-consumer"}
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
	who := s.owner[body.IdpToken]
	delete(s.owner, body.IdpToken)
	writeJSON(w, http.StatusOK, s.issueCAT(who))
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
	if !ok || s.now().After(exp) || s.inAuthOutage("fordpass") {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid or Expired Token", "errorCode": "460", "timestamp": s.now().UTC().Format(time.RFC3339)})
		return
	}
	delete(s.refresh, body.RefreshToken) // rotation: the old refresh token is dead now
	who := s.owner[body.RefreshToken]
	delete(s.owner, body.RefreshToken)
	writeJSON(w, http.StatusOK, s.issueCAT(who))
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
	s.owner[t] = s.owner[subject]
	writeJSON(w, http.StatusOK, map[string]any{"access_token": t, "refresh_token": token("simautorefresh-"),
		"token_type": "Bearer", "expires_in": s.opts.AutonomicTTL.Seconds()})
}

// FollowLogin does what the browser of a user who signs in at once does:
// it opens the login URL the client built and returns the
// fordapp://userauthorized?code=… address the simulator redirects to. The
// demo, the load harness and the tests sign in with it.
func FollowLogin(ctx context.Context, loginURL string) (string, error) {
	// A transport of its own, without idle connections: another test's
	// httptest.Server.Close closes http.DefaultTransport's idle
	// connections, which broke a login on the way.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true},
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
