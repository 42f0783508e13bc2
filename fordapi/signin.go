package fordapi

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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
	c.signInMu.Lock() // one exchange at a time
	defer c.signInMu.Unlock()
	if err := c.signIns.Admit(code); err != nil {
		return err
	}
	err = c.exchangeCode(ctx, code)
	c.signIns.Done(err == nil)
	return err
}

// SignInAllowedAt is when the sign-in throttle lets the next code through.
func (c *Client) SignInAllowedAt() time.Time { return c.signIns.AllowedAt() }

// codesFileName keeps the hashes of the codes tried (CodeThrottle).
const codesFileName = "codes.json"

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
			ErrInvalidCode, cmp.Or(errorMessage(resp.body), "HTTP "+strconv.Itoa(resp.status)))
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
	c.tok, c.loaded, c.dead, c.auto, c.refresh4x, c.api401, c.refusal = tok, true, nil, nil, 0, 0, nil
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
