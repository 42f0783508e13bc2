package fordapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// TestErrorClassification drives the refresh endpoint with every kind of
// answer Ford has been seen to give and checks what the caller is told.
// Only Ford's explicit dead-token answer may ever mean "sign in again".
func TestErrorClassification(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		hang       bool
		wantReauth bool
		wantRate   bool
		transient  bool
	}{
		{name: "dead token 460", status: 400, body: `{"message":"Invalid or Expired Token","errorCode":"460"}`, wantReauth: true},
		{name: "dead token 401 invalid", status: 401, body: `{"message":"invalid refresh token"}`, wantReauth: true},
		{name: "errorCode only", status: 400, body: `{"errorCode":"460"}`, wantReauth: true},
		{name: "400 without marker", status: 400, body: `{"message":"Bad Request"}`, transient: true},
		{name: "500", status: 500, body: `{"message":"Internal"}`, transient: true},
		{name: "502 html", status: 502, body: `<html><body>Bad gateway</body></html>`, transient: true},
		{name: "503 empty", status: 503, transient: true},
		{name: "403 akamai html", status: 403, body: `<html>Access Denied</html>`, transient: true},
		{name: "429 seconds", status: 429, header: map[string]string{"Retry-After": "120"}, wantRate: true},
		{name: "429 no header", status: 429, wantRate: true},
		{name: "200 garbage", status: 200, body: `{"access_token":`, transient: true},
		{name: "200 without tokens", status: 200, body: `{"message":"ok"}`, transient: true},
		{name: "timeout", hang: true, transient: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.hang {
					select {
					case <-r.Context().Done():
					case <-time.After(2 * time.Second):
					}
					return
				}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			dir := t.TempDir()
			region, _ := fordapi.LookupRegion("deu")
			store := fordapi.NewTokenStore(dir, region.Key)
			expired := testToken(time.Now().Add(-time.Minute))
			if err := store.Save(expired, time.Now()); err != nil {
				t.Fatal(err)
			}
			c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: srv.URL, StateDir: dir,
				HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Budget().Close() })
			_, err = c.Vehicles(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, fordapi.ErrReauthRequired); got != tc.wantReauth {
				t.Errorf("reauth = %v (%v)", got, err)
			}
			if got := errors.Is(err, fordapi.ErrRateLimited); got != tc.wantRate {
				t.Errorf("rate limited = %v (%v)", got, err)
			}
			if got := fordapi.IsTransient(err); got != tc.transient {
				t.Errorf("transient = %v (%v)", got, err)
			}
			if strings.Contains(err.Error(), "refresh-secret") {
				t.Errorf("error leaks the refresh token: %v", err)
			}
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(429)
	}))
	defer srv.Close()
	dir := t.TempDir()
	region, _ := fordapi.LookupRegion("usa")
	_ = fordapi.NewTokenStore(dir, "usa").Save(testToken(time.Now().Add(-time.Minute)), time.Now())
	c, _ := fordapi.New(fordapi.Config{Region: region, BaseURL: srv.URL, StateDir: dir})
	t.Cleanup(func() { _ = c.Budget().Close() })
	_, err := c.Vehicles(context.Background())
	var rl *fordapi.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("got %v", err)
	}
	if d := time.Until(rl.RetryAt); d < 110*time.Second || d > 130*time.Second {
		t.Fatalf("retry in %v, want about 120s", d)
	}
}

// TestRepeated401sWithFreshTokens: Ford refusing every fresh token (more
// than ten 401s in a row, each after a renewal) is a dead sign-in; fewer is
// not.
func TestRepeated401sWithFreshTokens(t *testing.T) {
	t.Parallel()
	refreshes := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "cat-with-refresh-token") {
			refreshes++
			fmt.Fprintf(w, `{"access_token":"a%d","refresh_token":"r%d","expires_in":3600}`, refreshes, refreshes)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	dir := t.TempDir()
	region, _ := fordapi.LookupRegion("usa")
	_ = fordapi.NewTokenStore(dir, "usa").Save(testToken(time.Now().Add(-time.Minute)), time.Now())
	c, _ := fordapi.New(fordapi.Config{Region: region, BaseURL: srv.URL, StateDir: dir, DailyBudget: 1000})
	t.Cleanup(func() { _ = c.Budget().Close() })
	var err error
	calls := 0
	for calls < 20 {
		calls++
		if _, err = c.Vehicles(context.Background()); errors.Is(err, fordapi.ErrReauthRequired) {
			break
		}
		if !fordapi.IsTransient(err) {
			t.Fatalf("call %d: %v", calls, err)
		}
	}
	if !errors.Is(err, fordapi.ErrReauthRequired) {
		t.Fatalf("20 calls refused with fresh tokens and still no reauth: %v", err)
	}
	if refreshes < 11 {
		t.Fatalf("reauth after only %d renewals", refreshes)
	}
}
