package bridge

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// TestSignInPageUnderIngress renders the page as Home Assistant's ingress
// proxy asks for it: every link and the form under the ingress path, a
// frame policy that lets Home Assistant show it, and direct requests from
// elsewhere refused.
func TestSignInPageUnderIngress(t *testing.T) {
	t.Parallel()
	b := New(config.Config{TopicPrefix: "fp", StateDir: t.TempDir(), Addon: true, IngressOnly: true}, fakeLoginFord(t), Options{})
	h := b.HTTPHandler()
	get := func(remote, ingress string) *httptest.ResponseRecorder {
		// The ingress proxy passes the browser's Host along: Home Assistant's name.
		req := httptest.NewRequest(http.MethodGet, "http://homeassistant.local:8123/", nil)
		req.RemoteAddr = remote + ":40000"
		if ingress != "" {
			req.Header.Set("X-Ingress-Path", ingress)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	const prefix = "/api/hassio_ingress/Ab3-x_Yz9"
	rec := get(config.IngressProxy, prefix)
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("through ingress: %d %s", rec.Code, body)
	}
	for _, attr := range []string{`href="`, `action="`, `src="`} {
		for _, part := range strings.Split(body, attr)[1:] {
			link := part[:strings.Index(part, `"`)]
			if strings.HasPrefix(link, "/") && !strings.HasPrefix(link, prefix+"/") {
				t.Errorf("%s%s\" is outside the ingress path", attr, link)
			}
		}
	}
	if !strings.Contains(body, `action="`+prefix+`/auth/code"`) || !strings.Contains(body, `href="`+prefix+`/metrics"`) {
		t.Errorf("the form and links are not under the ingress path")
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self'") {
		t.Errorf("Home Assistant cannot frame the page: %s", csp)
	}
	// The form posts from Home Assistant's origin through the proxy: the
	// form token is checked, the origin (Home Assistant's) is not refused.
	token := body[strings.Index(body, `name="form_token" value="`)+len(`name="form_token" value="`):]
	token = token[:strings.Index(token, `"`)]
	post := httptest.NewRequest(http.MethodPost, "http://homeassistant.local:8123/auth/code",
		strings.NewReader("form_token="+token+"&redirect_url=short"))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("Origin", "http://homeassistant.local:8123")
	post.Header.Set("X-Ingress-Path", prefix)
	post.RemoteAddr = config.IngressProxy + ":40000"
	prec := httptest.NewRecorder()
	h.ServeHTTP(prec, post)
	if prec.Code != http.StatusBadRequest || !strings.Contains(prec.Body.String(), "Sign-in failed") {
		t.Errorf("a post through ingress: %d; want the code itself judged (400), not the origin refused", prec.Code)
	}
	if rec := get("192.168.1.20", ""); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "sidebar") {
		t.Errorf("a direct request from the LAN: %d", rec.Code)
	}
	if rec := get("127.0.0.1", ""); rec.Code != http.StatusMisdirectedRequest {
		t.Errorf("a request from this host (the health check): %d", rec.Code)
	}
	// An X-Ingress-Path from anyone but the proxy is not trusted.
	b2 := New(config.Config{TopicPrefix: "fp", StateDir: t.TempDir(), Addon: true}, fakeLoginFord(t), Options{})
	req := httptest.NewRequest(http.MethodGet, "http://192.168.1.5:8080/", nil)
	req.RemoteAddr = "192.168.1.9:5000"
	req.Header.Set("X-Ingress-Path", "/evil")
	rec = httptest.NewRecorder()
	b2.HTTPHandler().ServeHTTP(rec, req)
	if strings.Contains(rec.Body.String(), "/evil/") || strings.Contains(rec.Header().Get("Content-Security-Policy"), "frame-ancestors 'self'") {
		t.Error("a spoofed X-Ingress-Path was honoured")
	}
}

// fakeLoginFord is a FordPass client that is never called: enough to
// render the sign-in page.
func fakeLoginFord(t *testing.T) fordapi.Backend {
	t.Helper()
	region, _ := fordapi.LookupRegion("usa")
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: "http://127.0.0.1:9", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	return c
}
