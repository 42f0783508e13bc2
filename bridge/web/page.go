package web

import (
	"html"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// The sign-in page is written by hand rather than with html/template: the
// page is one fixed layout, and html/template alone was 270 KB of the
// binary (issue 36). What html/template guaranteed, the page keeps:
// every value goes through text or attr (HTML-escaped) and every link
// through link (HTTP(S) or relative only), and only the page's own
// literal markup is written as it is. TestSignInPageEscapesEveryValue
// tries hostile values in each place.

// pageWriter builds the page.
type pageWriter struct{ strings.Builder }

// raw writes the page's own markup. The writing methods are not inlined:
// the page has over a hundred writes, and inlined they made it 21 KB of
// code.
//
//go:noinline
func (p *pageWriter) raw(s ...string) {
	for _, x := range s {
		p.WriteString(x)
	}
}

// text writes a value as element text or inside a quoted attribute.
//
//go:noinline
func (p *pageWriter) text(s string) { p.WriteString(html.EscapeString(s)) }

// link writes an address into a quoted href or action: an absolute one
// only with an http or https scheme (anything else, javascript: above
// all, becomes "#"), escaped.
func (p *pageWriter) link(s string) {
	if !safeLink(s) {
		s = "#"
	}
	p.text(s)
}

// safeLink reports whether s is an http(s) address or a relative one. A
// scheme is what comes before the first colon, when no slash, question
// mark or hash comes first; control characters and spaces, which
// browsers drop from a scheme, are refused outright.
func safeLink(s string) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	i := strings.IndexAny(s, ":/?#")
	if i < 0 || s[i] != ':' {
		return true
	}
	scheme := strings.ToLower(strings.TrimSpace(s[:i]))
	return scheme == "http" || scheme == "https"
}

func (p *pageWriter) when(t time.Time, layout string) { p.text(t.Format(layout)) }

// row opens a table row of the page's two-column tables: a state (with
// class as its cell's class, when not "") and "name: text"; the caller
// adds to the second cell and closes the row.
func (p *pageWriter) row(class, state, name, text string) {
	p.raw("<tr><td")
	if class != "" {
		p.raw(" class=\"")
		p.text(class)
		p.raw("\"")
	}
	p.raw(">")
	p.text(state)
	p.raw("</td><td><strong>")
	p.text(name)
	p.raw("</strong>: ")
	p.text(text)
}

const pageStyle = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#1b1f24;line-height:1.5}
h1{font-size:1.5rem;margin:0 0 .25rem}
.state{border-radius:.5rem;padding:1rem 1.25rem;margin:1rem 0;border:1px solid #d0d7de}
.ok{background:#e9f7ef;border-color:#7fcf9b}.reauth_required{background:#fff4e5;border-color:#f0b45b}
.rate_limited,.unavailable{background:#eef3fb;border-color:#9db8e0}
.err{background:#fdecea;border:1px solid #e0877d;border-radius:.5rem;padding:.75rem 1rem}
.good{background:#e9f7ef;border:1px solid #7fcf9b;border-radius:.5rem;padding:.75rem 1rem}
ol li{margin:.5rem 0}
a.button,button{display:inline-block;background:#0b5cad;color:#fff;border:0;border-radius:.4rem;padding:.55rem 1rem;font-size:1rem;text-decoration:none;cursor:pointer}
textarea{width:100%;box-sizing:border-box;min-height:6rem;font-family:ui-monospace,monospace;font-size:.85rem}
code{background:#f3f4f6;padding:.1rem .3rem;border-radius:.25rem}
small,.muted{color:#57606a}
table{border-collapse:collapse;width:100%}td{padding:.35rem .5rem;border-top:1px solid #d0d7de;vertical-align:top}
td.pass{color:#1a7f37;font-weight:600}td.warn{color:#9a6700;font-weight:600}td.fail{color:#cf222e;font-weight:600}
`

const (
	longTime  = "2006-01-02 15:04:05 MST"
	shortTime = "2006-01-02 15:04 MST"
)

// render writes the sign-in page for d.
func (d pageData) render() string {
	var p pageWriter
	p.Grow(8 << 10)
	p.raw("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>fordpass2mqtt — ")
	p.text(d.Headline)
	p.raw("</title>\n<style>\n", pageStyle, "</style>\n</head>\n<body>\n<h1>fordpass2mqtt</h1>\n<p class=\"muted\">FordPass to MQTT bridge")
	if !d.Broker {
		p.raw(" · <strong>not connected to the MQTT broker</strong>")
	}
	p.raw("</p>\n")
	if len(d.Accounts) > 0 {
		p.raw("<p>Accounts:")
		for _, a := range d.Accounts {
			p.raw(" ")
			if a.Shown {
				p.raw("<strong>")
				p.text(a.Name)
				p.raw("</strong>")
			} else {
				p.raw("<a href=\"")
				p.link(d.Base + "?account=" + url.QueryEscape(a.Name))
				p.raw("\">")
				p.text(a.Name)
				p.raw("</a>")
			}
			p.raw(" (")
			p.text(a.State)
			p.raw(")")
		}
		p.raw("</p>\n<h2>Account ")
		p.text(d.Account)
		p.raw("</h2>")
	}
	p.raw("\n")
	if d.SignedIn {
		p.raw("<p class=\"good\">Signed in. The bridge is fetching your vehicles now.</p>")
	}
	p.raw("\n")
	if d.Error != "" {
		p.raw("<p class=\"err\">")
		p.text(d.Error)
		p.raw("</p>")
	}
	p.raw("\n<div class=\"state ")
	p.text(d.Info.State)
	p.raw("\">\n<strong>")
	p.text(d.Headline)
	p.raw("</strong><br>")
	p.text(d.Words)
	p.raw("\n<br><small>Detail: ")
	p.text(d.Info.Reason)
	if d.Info.RetryAt != nil {
		p.raw(" · next try ")
		p.when(*d.Info.RetryAt, longTime)
	}
	p.raw(" · since ")
	p.when(d.Info.Since, longTime)
	p.raw("</small>\n</div>\n<h2>")
	if d.Info.State == mqttapi.StateReauthRequired {
		p.raw("Sign in")
	} else {
		p.raw("Sign in again (optional)")
	}
	p.raw("</h2>\n")
	d.signInSteps(&p)
	p.raw("\n<h2>Status</h2>\n<p>Ford calls in the last 24 h: <strong>", strconv.Itoa(d.Calls), "</strong> of ", strconv.Itoa(d.Budget), ".\nVehicles: ")
	if len(d.Vehicles) == 0 {
		p.raw("none yet")
	}
	for i, v := range d.Vehicles {
		if i > 0 {
			p.raw(", ")
		}
		p.raw("<code>")
		p.text(v)
		p.raw("</code>")
	}
	p.raw(".</p>\n")
	d.backends(&p)
	p.raw("\n<h2>Diagnose</h2>\n")
	if d.Doctor != nil {
		p.raw("<p>The last <code>fordpass2mqtt doctor</code> run, ")
		p.when(d.Doctor.At, shortTime)
		p.raw(":</p>\n<table>")
		for _, c := range d.Doctor.Checks {
			p.row(c.Status, c.Status, c.Name, c.Finding)
			if c.Fix != "" {
				p.raw("<br><small>Fix: ")
				p.text(c.Fix)
				p.raw("</small>")
			}
			p.raw("</td></tr>")
		}
		p.raw("</table>\n")
	} else {
		p.raw("<p>Run <code>fordpass2mqtt doctor</code> (in Docker: <code>docker compose exec fordpass2mqtt fordpass2mqtt doctor</code>) for a checklist of what can break the FordPass connection; its results appear here.</p>")
	}
	p.raw("\n<p><small>Health: <a href=\"")
	p.link(d.Base + "healthz")
	p.raw("\">/healthz</a> · Metrics: <a href=\"")
	p.link(d.Base + "metrics")
	p.raw("\">/metrics</a></small></p>\n</body>\n</html>\n")
	return p.String()
}

// signInSteps writes the steps and the form: FordConnect's consent, or
// FordPass's login and its pasted address.
func (d pageData) signInSteps(p *pageWriter) {
	form := func(label, button string) {
		p.raw("<form method=\"post\" action=\"")
		p.link(d.Base + "auth/code")
		p.raw("\">\n<input type=\"hidden\" name=\"form_token\" value=\"")
		p.text(d.FormToken)
		p.raw("\">\n<input type=\"hidden\" name=\"account\" value=\"")
		p.text(d.Account)
		p.raw("\">\n<label for=\"redirect_url\">", label, "</label>\n",
			"<textarea id=\"redirect_url\" name=\"redirect_url\" required maxlength=\"16000\" autocomplete=\"off\" spellcheck=\"false\"></textarea>\n",
			"<p><button type=\"submit\">", button, "</button></p>\n</form>")
	}
	p.raw("<ol>\n<li><a class=\"button\" href=\"")
	p.link(d.Info.LoginURL)
	if d.FordConnect {
		p.raw("\" target=\"_blank\" rel=\"noopener noreferrer\">Open the FordConnect consent</a>\n",
			"<br><small>One consent covers one car; open the link again for each further car.</small></li>\n",
			"<li>Sign in with your Ford account and consent for the car. Ford then sends your browser to <code>")
		p.text(d.Redirect)
		p.raw("</code>: when that is this page, the consent completes by itself.</li>\n",
			"<li>Otherwise (that page does not load), copy the whole address the browser landed on, with <code>code=</code> and <code>state=</code>, and paste it here within a few minutes.</li>\n</ol>\n")
		form("The address the browser landed on (<code>…?code=…&amp;state=…</code>)", "Add the car")
		return
	}
	p.raw("\" target=\"_blank\" rel=\"noopener noreferrer\">Open the FordPass login</a>\n",
		"<br><small>Use a desktop browser. Open its developer tools (F12) on the <em>Network</em> tab before you sign in.</small></li>\n",
		"<li>Sign in with your FordPass e-mail and password (and the e-mail code, if Ford asks). The page then keeps loading: that is expected, because your browser cannot open the FordPass app's address.</li>\n",
		"<li>In the developer tools, find the last request, whose address starts with <code>fordapp://userauthorized</code> (the console also shows it as a failed load). Copy that whole address and paste it here within a few minutes — codes are single-use and expire quickly.</li>\n</ol>\n")
	form("Redirect address (<code>fordapp://userauthorized/?code=…</code>) or the bare code", "Sign in")
}

// backends writes each backend's state, with two.
func (d pageData) backends(p *pageWriter) {
	if len(d.Info.Backends) == 0 {
		return
	}
	p.raw("<h2>Backends</h2>\n<table>")
	for _, b := range d.Info.Backends {
		p.row("", b.State, b.Name, b.Reason)
		p.raw("\n")
		for _, c := range b.Cars {
			p.raw("<br><code>")
			p.text(c.VIN)
			p.raw("</code> ")
			switch {
			case c.Consented:
				p.raw("consented")
			case c.Refused != "":
				p.raw("consent refused")
				if c.RetryAt != nil {
					p.raw(", tried again by itself at ")
					p.when(*c.RetryAt, shortTime)
				}
			default:
				p.raw("not consented: read through FordPass only")
			}
		}
		p.raw("\n")
		if b.Name == mqttapi.BackendFordConnect && b.LoginURL != "" {
			p.raw("<br><a href=\"")
			p.link(b.LoginURL)
			p.raw("\" target=\"_blank\" rel=\"noopener noreferrer\">Consent one more car to FordConnect</a>")
		}
		p.raw("</td></tr>")
	}
	p.raw("</table>")
}
