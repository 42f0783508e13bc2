package fordapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// LoginURL is the authorize URL the user opens in a browser. The PKCE
// verifier behind it is kept in the state directory, so the same link keeps
// working across restarts until a sign-in completes.
func (c *Client) LoginURL() (string, error) {
	p, err := c.store.pending(c.now())
	if err != nil {
		return "", err
	}
	q := url.Values{}
	q.Set("redirect_uri", c.region.RedirectURI())
	q.Set("response_type", "code")
	q.Set("max_age", "3600")
	q.Set("code_challenge", PKCEChallenge(p.Verifier))
	q.Set("code_challenge_method", "S256")
	q.Set("scope", " "+oauthClientID+" openid")
	q.Set("client_id", oauthClientID)
	q.Set("ui_locales", c.region.Locale)
	q.Set("language_code", c.region.Locale)
	q.Set("ford_application_id", c.region.AppID)
	q.Set("country_code", c.region.CountryCode)
	return c.hosts.login + PathB2C(c.region, "authorize") + "?" + strings.ReplaceAll(q.Encode(), "+", "%20"), nil
}

// SignIn exchanges what the user pasted (redirect URL or code) for tokens and
// saves them. A rejected code returns an error matching ErrInvalidCode and
// leaves the previous token untouched.
//
// Sign-ins are throttled whatever door they come from: a code that cannot
// be Ford's is refused without a call, the same code is never exchanged
// twice, and after a refused code the next exchange waits (5 s, doubling up
// to 30 s). A refusal by the throttle is a *SignInThrottleError.
func (c *Client) SignIn(ctx context.Context, pasted string) error {
	code, err := ParseRedirect(pasted)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(code))
	c.signInMu.Lock() // one exchange at a time
	defer c.signInMu.Unlock()
	c.mu.Lock()
	now := c.now()
	switch {
	case c.signIns.tried(sum, now):
		c.mu.Unlock()
		return fmt.Errorf("%w: this code was already tried, and codes are single-use; sign in again for a new one", ErrInvalidCode)
	case now.Before(c.signIns.next):
		at := c.signIns.next
		c.mu.Unlock()
		return &SignInThrottleError{RetryAt: at}
	}
	c.signIns.remember(sum, now)
	if err := c.signIns.saveCodes(c.store.dir); err != nil {
		c.log.Debug("cannot save the codes tried; a restart may try a code again", zap.Error(err))
	}
	c.mu.Unlock()
	err = c.exchangeCode(ctx, code)
	c.mu.Lock()
	if err != nil {
		// Every failure counts, not only a refused code: a code is
		// single-use, and an exchange that ended in a 5xx may have spent it.
		c.signIns.failures++
		c.signIns.next = c.now().Add(signInBackoff(c.signIns.failures))
	} else {
		c.signIns.failures = 0
	}
	c.mu.Unlock()
	return err
}

// SignInAllowedAt is when the sign-in throttle lets the next code through.
func (c *Client) SignInAllowedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signIns.next
}

// signInThrottle remembers the codes tried (as hashes, with when) and when
// the next exchange may be made; guarded by Client.mu. The codes tried are
// kept in STATE_DIR/codes.json for as long as a code can live, so a code
// that comes again after a restart (retained on the broker, pasted twice)
// costs no Ford call.
type signInThrottle struct {
	seen     map[[32]byte]time.Time
	failures int // refused codes in a row
	next     time.Time
}

const (
	maxSignInWait   = 30 * time.Second
	rememberedCodes = 256
	// codeLife is how long a code is remembered: Ford's codes expire
	// within minutes.
	codeLife      = time.Hour
	codesFileName = "codes.json"
)

// signInBackoff is the wait after the nth refused code in a row.
func signInBackoff(n int) time.Duration {
	return min(5*time.Second<<min(n-1, 10), maxSignInWait)
}

func (t *signInThrottle) tried(sum [32]byte, now time.Time) bool {
	at, ok := t.seen[sum]
	return ok && now.Sub(at) < codeLife
}

// remember records a code tried at now, forgetting codes past their life
// and the oldest beyond rememberedCodes.
func (t *signInThrottle) remember(sum [32]byte, now time.Time) {
	if t.seen == nil {
		t.seen = map[[32]byte]time.Time{}
	}
	for k, at := range t.seen {
		if now.Sub(at) >= codeLife {
			delete(t.seen, k)
		}
	}
	for len(t.seen) >= rememberedCodes {
		var oldest [32]byte
		first := true
		for k, at := range t.seen {
			if first || at.Before(t.seen[oldest]) {
				oldest, first = k, false
			}
		}
		delete(t.seen, oldest)
	}
	t.seen[sum] = now
}

// loadCodes reads the codes tried from dir (a damaged file: none).
func (t *signInThrottle) loadCodes(dir string, now time.Time) {
	data, err := os.ReadFile(filepath.Join(dir, codesFileName))
	if err != nil {
		return
	}
	var saved map[string]time.Time
	if json.Unmarshal(data, &saved) != nil {
		return
	}
	for h, at := range saved {
		var sum [32]byte
		if b, err := hex.DecodeString(h); err == nil && len(b) == len(sum) && now.Sub(at) < codeLife {
			copy(sum[:], b)
			if t.seen == nil {
				t.seen = map[[32]byte]time.Time{}
			}
			t.seen[sum] = at
		}
	}
}

// saveCodes writes the codes tried to dir (hashes only).
func (t *signInThrottle) saveCodes(dir string) error {
	out := make(map[string]time.Time, len(t.seen))
	for sum, at := range t.seen {
		out[hex.EncodeToString(sum[:])] = at.UTC()
	}
	data, _ := json.Marshal(out)
	return WriteFileAtomic(filepath.Join(dir, codesFileName), data)
}

// exchangeCode trades a code for tokens and saves them.
func (c *Client) exchangeCode(ctx context.Context, code string) error {
	p, err := c.store.pending(c.now())
	if err != nil {
		return err
	}
	signIn, snapshot := ClassSignIn, ClassSnapshot
	form := url.Values{}
	form.Set("client_id", oauthClientID)
	form.Set("scope", oauthClientID+" openid")
	form.Set("redirect_uri", c.region.RedirectURI())
	form.Set("grant_type", "authorization_code")
	form.Set("resource", "")
	form.Set("code", code)
	form.Set("code_verifier", p.Verifier)
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.do(ctx, request{endpoint: "b2c_token", class: &signIn, method: http.MethodPost,
		url: c.hosts.login + PathB2C(c.region, "token"), header: h, body: []byte(form.Encode())})
	if err != nil {
		return fmt.Errorf("exchanging the sign-in code: %w", err)
	}
	var b2c struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(resp.body, &b2c) != nil || b2c.AccessToken == "" {
		if resp.status >= 500 {
			return fmt.Errorf("exchanging the sign-in code: %w", fordError("b2c_token", resp))
		}
		return fmt.Errorf("%w: Ford refused it (%s); codes are single-use and expire within minutes, so sign in again and paste the new redirect URL at once",
			ErrInvalidCode, nonEmpty(errorMessage(resp.body), "HTTP "+strconv.Itoa(resp.status)))
	}
	body, _ := json.Marshal(map[string]string{"idpToken": b2c.AccessToken})
	resp, err = c.do(ctx, request{endpoint: "cat_from_b2c", class: &snapshot, method: http.MethodPost,
		url: c.hosts.foundational + PathCATFromB2C, header: c.fordHeaders(), body: body})
	if err != nil {
		return fmt.Errorf("getting the FordPass token: %w", err)
	}
	tok, err := c.parseCAT(resp)
	if err != nil {
		return fmt.Errorf("getting the FordPass token: %w", err)
	}
	c.mu.Lock()
	if err := c.saveLocked(tok); err != nil {
		c.mu.Unlock()
		return fmt.Errorf("saving the token: %w", err)
	}
	c.tok, c.loaded, c.dead, c.auto, c.refresh4x, c.api401 = tok, true, nil, nil, 0, 0
	c.mu.Unlock()
	c.store.clearPending()
	c.log.Info("signed in to FordPass", zap.Time("refresh_expires", tok.RefreshExpiry))
	return nil
}

// catResponse is the CAT token endpoints' answer.
type catResponse struct {
	AccessToken      string  `json:"access_token"`
	RefreshToken     string  `json:"refresh_token"`
	ExpiresIn        float64 `json:"expires_in"`
	RefreshExpiresIn float64 `json:"refresh_expires_in"`
}

func (c *Client) parseCAT(resp *response) (*Token, error) {
	var cr catResponse
	if json.Unmarshal(resp.body, &cr) != nil || cr.AccessToken == "" || cr.RefreshToken == "" {
		if resp.status < 300 {
			return nil, &StatusError{Endpoint: "cat_token", Status: resp.status, Message: "answer without tokens"}
		}
		return nil, fordError("cat_token", resp)
	}
	now := c.now()
	t := &Token{Token: &oauth2.Token{AccessToken: cr.AccessToken, RefreshToken: cr.RefreshToken, TokenType: "Bearer",
		Expiry: now.Add(time.Duration(cr.ExpiresIn * float64(time.Second)))}}
	if cr.RefreshExpiresIn > 0 {
		t.RefreshExpiry = now.Add(time.Duration(cr.RefreshExpiresIn * float64(time.Second)))
	}
	return t, nil
}
