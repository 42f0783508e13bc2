package web

import (
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// pageWith is a page that shows every part: several accounts, an error,
// two backends with cars in each state, a retry time and a doctor report,
// each string value being s and each link being link.
func pageWith(s, link string) pageData {
	at := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	return pageData{
		Info: mqttapi.AuthInfo{State: s, Reason: s, Since: at, RetryAt: &at, LoginURL: link,
			Backends: []mqttapi.BackendInfo{
				{Name: s, State: s, Reason: s, LoginURL: link},
				{Name: mqttapi.BackendFordConnect, State: s, Reason: s, LoginURL: link, Cars: []mqttapi.BackendCar{
					{VIN: s, Consented: true}, {VIN: s, Refused: s, RetryAt: &at}, {VIN: s}}},
			}},
		Account: s, Accounts: []accountLink{{Name: s, State: s, Shown: true}, {Name: s, State: s}},
		Headline: s, Words: s, SignedIn: true, Error: s, FormToken: s, Calls: 7, Budget: 250,
		Vehicles: []string{s, s}, Broker: true, Base: "/ingress/",
		Doctor:   &mqttapi.Report{At: at, Checks: []mqttapi.Check{{Name: s, Status: s, Finding: s, Fix: s}}},
		Redirect: s,
	}
}

// Every value on the sign-in page comes from outside the page: Ford's
// reasons, account names, VINs, the doctor's findings, the login link. A
// value never becomes markup, and a link is never anything but http(s)
// or relative.
func TestSignInPageEscapesEveryValue(t *testing.T) {
	const hostile = `<script>alert(1)</script>"'&><img src=x onerror=alert(2)>`
	for _, fordConnect := range []bool{false, true} {
		benign := pageWith("plain", "https://login.example/authorize?a=1&b=2")
		benign.FordConnect = fordConnect
		want := benign.render()
		for _, link := range []string{"javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:x", "https://login.example/\"><script>alert(1)</script>"} {
			d := pageWith(hostile, link)
			d.FordConnect = fordConnect
			got := d.render()
			for _, bad := range []string{"<script", "<img", "javascript:", "JavaScript:", "data:", "vbscript:"} {
				if i := strings.Index(got, bad); i >= 0 {
					t.Errorf("link %q (FordConnect %v): the page holds %q: …%s…", link, fordConnect, bad, got[max(0, i-60):min(len(got), i+60)])
				}
			}
			// The markup is the benign page's: as many tags and as many
			// attribute quotes, so no value opened or closed one.
			for _, c := range []string{"<", ">", `"`} {
				if n, m := strings.Count(got, c), strings.Count(want, c); n != m {
					t.Errorf("link %q (FordConnect %v): %d %q in the page, the same page with plain values has %d", link, fordConnect, n, c, m)
				}
			}
			if n := strings.Count(got, "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;&gt;"); n < 20 {
				t.Errorf("the hostile value is shown escaped %d times, want every place (20 or more)", n)
			}
		}
	}
}

func TestSignInPageLinks(t *testing.T) {
	for link, safe := range map[string]bool{
		"https://login.example/a?b=c": true, "HTTP://x": true, "/ingress/auth/code": true, "auth/code": true, "?account=home": true,
		"#top": true, "": true, "javascript:alert(1)": false, "JAVASCRIPT:x": false, " javascript:x": false, "java\nscript:x": false,
		"data:text/html,x": false, "fordapp://userauthorized/?code=1": false, "mailto:a@b": false,
	} {
		if safeLink(link) != safe {
			t.Errorf("safeLink(%q) = %v, want %v", link, !safe, safe)
		}
	}
	d := pageWith("plain", "javascript:alert(1)")
	if page := d.render(); !strings.Contains(page, `<a class="button" href="#"`) {
		t.Errorf("a javascript: login link is not replaced by #")
	}
	d = pageWith("plain", "https://login.example/authorize?a=1&b=2")
	if page := d.render(); !strings.Contains(page, `href="https://login.example/authorize?a=1&amp;b=2"`) {
		t.Errorf("the login link is not kept as given, escaped")
	}
	d.Accounts[1].Name = "a b&c"
	if page := d.render(); !strings.Contains(page, `href="/ingress/?account=a&#43;b%26c"`) && !strings.Contains(page, `href="/ingress/?account=a+b%26c"`) {
		t.Errorf("an account's link does not carry its name query-escaped:\n%s", page)
	}
}
