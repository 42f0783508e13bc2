package fordapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// File names inside the state directory.
const (
	tokenFileName  = "token.json"
	loginFileName  = "login.json"
	budgetFileName = "calls.json"
)

// storedToken is the token file's format.
type storedToken struct {
	AccessToken   string    `json:"access_token"`
	RefreshToken  string    `json:"refresh_token"`
	Expiry        time.Time `json:"expiry"`
	RefreshExpiry time.Time `json:"refresh_expiry,omitzero"`
	Region        string    `json:"region"`
	SavedAt       time.Time `json:"saved_at"`
}

// Token is the FordPass (CAT) token with the expiry of its refresh token,
// which oauth2.Token does not carry.
type Token struct {
	*oauth2.Token
	RefreshExpiry time.Time
}

// TokenStore keeps the CAT token and a pending sign-in in the state
// directory. Every write is atomic and 0600.
type TokenStore struct {
	dir    string
	region string
}

// NewTokenStore uses dir (which must exist) for a region's token.
func NewTokenStore(dir, region string) *TokenStore { return &TokenStore{dir: dir, region: region} }

// TokenPath is where the token lives.
func (s *TokenStore) TokenPath() string { return filepath.Join(s.dir, tokenFileName) }

// Load reads the token. No file, an unreadable file, a damaged file and a
// token of another region all return a *ReauthError saying which.
func (s *TokenStore) Load() (*Token, error) {
	data, err := ReadSecretFile(s.TokenPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, &ReauthError{Reason: "not signed in yet: open the login link and paste the redirect URL"}
	}
	if errors.Is(err, ErrSymlink) {
		return nil, &ReauthError{Reason: "the token file " + err.Error() + ", then sign in again"}
	}
	if err != nil {
		return nil, &ReauthError{Reason: fmt.Sprintf("the token file cannot be read (%v): sign in again", errors.Unwrap(err))}
	}
	var st storedToken
	if err := json.Unmarshal(data, &st); err != nil || st.RefreshToken == "" {
		return nil, &ReauthError{Reason: "the token file is damaged or not a fordpass2mqtt token: sign in again"}
	}
	if st.Region != "" && st.Region != s.region {
		return nil, &ReauthError{Reason: fmt.Sprintf("the saved token is for region %q but FORD_REGION is %q: sign in again", st.Region, s.region)}
	}
	return &Token{
		Token:         &oauth2.Token{AccessToken: st.AccessToken, RefreshToken: st.RefreshToken, Expiry: st.Expiry, TokenType: "Bearer"},
		RefreshExpiry: st.RefreshExpiry,
	}, nil
}

// Save writes the token atomically.
func (s *TokenStore) Save(t *Token, now time.Time) error {
	data, err := json.MarshalIndent(storedToken{
		AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, Expiry: t.Expiry.UTC(),
		RefreshExpiry: t.RefreshExpiry.UTC(), Region: s.region, SavedAt: now.UTC(),
	}, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(s.TokenPath(), data)
}

// pendingLogin is a sign-in whose link was shown but whose code has not come
// back yet. Keeping it on disk lets a restart happen in between.
type pendingLogin struct {
	Verifier string    `json:"code_verifier"`
	Region   string    `json:"region"`
	Created  time.Time `json:"created_at"`
}

// pendingLoginTTL is how long one login link is offered before a new one is
// made (Ford's authorize URL carries max_age=3600).
const pendingLoginTTL = 12 * time.Hour

func (s *TokenStore) loginPath() string { return filepath.Join(s.dir, loginFileName) }

// pending returns the pending sign-in, creating (and saving) a new one when
// there is none, it is stale, or it belongs to another region.
func (s *TokenStore) pending(now time.Time) (pendingLogin, error) {
	if data, err := ReadSecretFile(s.loginPath()); err == nil {
		var p pendingLogin
		if json.Unmarshal(data, &p) == nil && p.Verifier != "" && p.Region == s.region && now.Sub(p.Created) < pendingLoginTTL {
			return p, nil
		}
	}
	buf := make([]byte, 96)
	if _, err := rand.Read(buf); err != nil {
		return pendingLogin{}, err
	}
	p := pendingLogin{Verifier: base64.RawURLEncoding.EncodeToString(buf), Region: s.region, Created: now.UTC()}
	data, _ := json.Marshal(p)
	if err := WriteFileAtomic(s.loginPath(), data); err != nil {
		return pendingLogin{}, fmt.Errorf("saving the pending sign-in: %w", err)
	}
	return p, nil
}

// clearPending forgets the pending sign-in after a successful one.
func (s *TokenStore) clearPending() { _ = os.Remove(s.loginPath()) }

// PKCEChallenge is base64url(SHA-256(verifier)) without padding (S256).
func PKCEChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// maxCodeInput bounds what a user may paste.
const maxCodeInput = 16 << 10

// ParseRedirect extracts the authorization code from what a user pasted: the
// whole redirect URL (fordapp://userauthorized?code=…, with or without a
// trailing slash, possibly URL-encoded, possibly wrapped in quotes or
// whitespace) or just the code.
func ParseRedirect(input string) (string, error) {
	s := strings.TrimSpace(input)
	s = strings.Trim(s, `"'<> `)
	if s == "" {
		return "", fmt.Errorf("%w: nothing was pasted", ErrInvalidCode)
	}
	if len(s) > maxCodeInput {
		return "", fmt.Errorf("%w: the pasted text is %d bytes, more than a redirect URL can be", ErrInvalidCode, len(s))
	}
	// A fully URL-encoded redirect (fordapp%3A%2F%2F…) is decoded first.
	if !strings.Contains(s, "://") && strings.Contains(strings.ToLower(s), "%3a%2f%2f") {
		if d, err := url.QueryUnescape(s); err == nil {
			s = d
		}
	}
	if i := strings.Index(s, "://"); i >= 0 {
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("%w: the pasted URL cannot be parsed: %v", ErrInvalidCode, err)
		}
		q := u.Query()
		if e := q.Get("error"); e != "" {
			desc := q.Get("error_description")
			return "", fmt.Errorf("%w: Ford's login page reported %q %s", ErrInvalidCode, e, desc)
		}
		code := q.Get("code")
		if code == "" {
			return "", fmt.Errorf("%w: the URL has no code parameter; copy the whole fordapp://userauthorized?code=… address", ErrInvalidCode)
		}
		return code, validCode(code)
	}
	if strings.HasPrefix(s, "code=") {
		s = strings.TrimPrefix(s, "code=")
		if d, err := url.QueryUnescape(s); err == nil {
			s = d
		}
	}
	return s, validCode(s)
}

// Sign-in codes are JWT-like (base64url parts joined by dots) and a few
// hundred characters long; the simulator's are 56. Anything else cannot be
// a code, and is refused without a call to Ford.
const minCodeLen, maxCodeLen = 32, 4096

func validCode(code string) error {
	if len(code) < minCodeLen {
		return fmt.Errorf("%w: %d characters is too short for a sign-in code (they are hundreds long); copy the whole fordapp://userauthorized/?code=… address", ErrInvalidCode, len(code))
	}
	if len(code) > maxCodeLen {
		return fmt.Errorf("%w: %d characters is too long for a sign-in code", ErrInvalidCode, len(code))
	}
	for _, r := range code {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.~+/=", r)
		if !ok {
			return fmt.Errorf("%w: the code contains %q, which a sign-in code never has", ErrInvalidCode, r)
		}
	}
	return nil
}
