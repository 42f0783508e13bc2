// Package web is the bridge's HTTP side: /healthz, /metrics and the
// sign-in page with its form, behind a guard against DNS rebinding and
// password guessing. It asks the running bridge through Bridge.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/floodlog"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// Bridge is what the HTTP side asks of the running bridge.
type Bridge interface {
	// Health is /healthz's answer: whether the bridge is healthy, and
	// why in a line.
	Health() (healthy bool, line string)
	// Accounts are the Ford accounts' names in order: one, "", unless
	// FORD_ACCOUNTS names several.
	Accounts() []string
	// AuthInfo is an account's auth state, with the link a sign-in needs.
	AuthInfo(account string) mqttapi.AuthInfo
	// LoginURL is a fresh sign-in link of an account (offered even when
	// none is needed, to switch accounts).
	LoginURL(account string) (string, error)
	// SignIn takes what the user pasted for an account, or the path and
	// query Ford's consent sent the browser to.
	SignIn(ctx context.Context, account, pasted string) error
	// Info is what P/bridge/info says.
	Info() mqttapi.Info
	// BrokerConnected says whether the bridge reaches its broker.
	BrokerConnected() bool
	// DoctorReport is the last report of doctor on this installation (nil
	// if none).
	DoctorReport() *mqttapi.Report
}

// Options are the HTTP side's parts that are not user configuration.
type Options struct {
	Log     *zap.Logger
	Metrics http.Handler // /metrics
	// AuthFailure counts a refused basic-auth answer ("refused", or
	// "throttled" for an address held back).
	AuthFailure   func(outcome string)
	FloodLogEvery time.Duration // wrong passwords are logged as one count per this interval
	Now           func() time.Time
}

// UI is the HTTP side.
type UI struct {
	cfg   config.Config
	b     Bridge
	log   *zap.Logger
	o     Options
	fails *authThrottle // wrong basic-auth passwords, per address
}

// New makes the HTTP side of a bridge.
func New(cfg config.Config, b Bridge, o Options) *UI {
	return &UI{cfg: cfg, b: b, log: o.Log, o: o, fails: newAuthThrottle(o.Now, floodlog.New(o.FloodLogEvery))}
}

func (u *UI) now() time.Time { return u.o.Now() }

// maxFormBody bounds what the sign-in form accepts.
const maxFormBody = 32 << 10

// Handler serves /healthz, /metrics, the sign-in page and its form.
func (u *UI) Handler() http.Handler {
	formToken := make([]byte, 16)
	_, _ = rand.Read(formToken)
	token := hex.EncodeToString(formToken)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		healthy, line := u.b.Health()
		if !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(line + "\n"))
	})
	mux.Handle("GET /metrics", u.o.Metrics)
	debugHandlers(mux)
	// FordConnect sends the browser to the registered redirect with code
	// and state; when that is this page, the consent completes here. The
	// state is one of the bridge's own login links, so a forged address
	// signs nothing in.
	callback := func(w http.ResponseWriter, r *http.Request) {
		if err := u.b.SignIn(r.Context(), "", r.URL.String()); err != nil {
			u.renderPage(w, r, http.StatusBadRequest, token, false, "The consent did not complete: "+err.Error())
			return
		}
		http.Redirect(w, r, u.ingressPath(r)+"/?signed_in=1", http.StatusSeeOther)
	}
	fconPath := ""
	if u.cfg.Backend == config.BackendFordConnect || u.cfg.Backend == config.BackendBoth {
		if ru, err := url.Parse(u.cfg.FordConnect.RedirectURL); err == nil && ru.Path != "" && ru.Path != "/" &&
			!slices.Contains([]string{"/healthz", "/metrics", "/auth/code"}, ru.Path) {
			fconPath = ru.Path
			mux.HandleFunc("GET "+fconPath, callback)
		}
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); (u.cfg.Backend == config.BackendFordConnect || u.cfg.Backend == config.BackendBoth) && fconPath == "" && q.Get("code") != "" && q.Get("state") != "" {
			callback(w, r)
			return
		}
		u.renderPage(w, r, http.StatusOK, token, r.URL.Query().Get("signed_in") == "1", "")
	})
	mux.HandleFunc("POST /auth/code", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		if err := r.ParseForm(); err != nil {
			u.renderPage(w, r, http.StatusRequestEntityTooLarge, token, false, "The form was too large or unreadable; paste only the fordapp:// address.")
			return
		}
		// Through Home Assistant's ingress the browser's origin is Home
		// Assistant's, which has already authenticated the user; the form
		// token still proves the post came from this page.
		origin := u.ingressPath(r) != "" || sameOrigin(r)
		if !origin || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("form_token")), []byte(token)) != 1 {
			u.renderPage(w, r, http.StatusForbidden, token, false, "This form must be sent from the sign-in page itself; reload the page and try again.")
			return
		}
		account := r.PostForm.Get("account")
		if !slices.Contains(u.b.Accounts(), account) {
			u.renderPage(w, r, http.StatusBadRequest, token, false, "The form names no account of this bridge; reload the page and try again.")
			return
		}
		if err := u.b.SignIn(r.Context(), account, r.PostForm.Get("redirect_url")); err != nil {
			var te *fordapi.SignInThrottleError
			if errors.As(err, &te) {
				u.renderPage(w, r, http.StatusTooManyRequests, token, false, "Too many sign-in attempts in a row, so Ford is not asked yet: the bridge keeps this code and tries it by itself at "+
					te.RetryAt.Local().Format("15:04:05")+" (Ford locks accounts after repeated failed sign-ins). Reload this page then to see the result.")
				return
			}
			u.renderPage(w, r, http.StatusBadRequest, token, false, "Sign-in failed: "+err.Error())
			return
		}
		target := u.ingressPath(r) + "/?signed_in=1"
		if account != "" {
			target += "&account=" + url.QueryEscape(account)
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	})
	return u.securityHeaders(u.guard(mux))
}

// ingressPath is the path prefix Home Assistant's ingress proxy serves this
// page under (X-Ingress-Path), when the request comes from that proxy in
// add-on mode; "" otherwise (a header from anyone else is not trusted).
func (u *UI) ingressPath(r *http.Request) string {
	p := r.Header.Get("X-Ingress-Path")
	if p == "" || !u.fromIngressProxy(r) {
		return ""
	}
	p = strings.TrimRight(p, "/")
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/_-.~", c)) {
			return "" // not a path the proxy would send
		}
	}
	if !strings.HasPrefix(p, "/") {
		return ""
	}
	return p
}

// fromIngressProxy reports whether the request comes from Home Assistant's
// ingress proxy, in add-on mode: Home Assistant has signed the user in.
func (u *UI) fromIngressProxy(r *http.Request) bool {
	return u.cfg.Addon && remoteIP(r) == config.IngressProxy
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// guard refuses what a LAN must not reach: a request for a host name the
// bridge was not told about (DNS rebinding: a web page whose name resolves
// to the bridge could read the form token), and, with HTTP_USERNAME set, a
// request without the right credentials. /healthz answers anything: it
// tells nothing and Docker's health check must reach it.
func (u *UI) guard(h http.Handler) http.Handler {
	allowed := map[string]bool{"localhost": true}
	for _, n := range u.cfg.HTTPAllowedHosts {
		allowed[n] = true
	}
	if pub, err := url.Parse(u.cfg.HTTPPublicURL); err == nil && pub.Hostname() != "" {
		allowed[strings.ToLower(pub.Hostname())] = true
	}
	user, pass := []byte(u.cfg.HTTPUsername), []byte(u.cfg.HTTPPassword)
	// Each refused host name is logged once, and at most maxLoggedHosts of
	// them: a flood of made-up names must not flood the log.
	var logged struct {
		sync.Mutex
		names map[string]bool
	}
	logged.names = map[string]bool{}
	logRefusal := func(host, from string) {
		logged.Lock()
		defer logged.Unlock()
		if logged.names[host] || len(logged.names) > maxLoggedHosts {
			return
		}
		logged.names[host] = true
		if len(logged.names) > maxLoggedHosts {
			u.log.Warn("HTTP requests for more unknown host names are refused without a log line", zap.Int("names_logged", maxLoggedHosts))
			return
		}
		u.log.Warn("HTTP request for an unknown host name refused (logged once per name)", zap.String("host", host), zap.String("from", from))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			h.ServeHTTP(w, r)
			return
		}
		if u.cfg.IngressOnly {
			if ip := net.ParseIP(remoteIP(r)); ip == nil || (!ip.IsLoopback() && ip.String() != config.IngressProxy) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusForbidden)
				_, _ = fmt.Fprintln(w, "fordpass2mqtt runs as a Home Assistant add-on: open its page from Home Assistant's sidebar. To reach it directly, open its port in the add-on's Network settings.")
				return
			}
		}
		host := strings.ToLower(r.Host)
		if hn, _, err := net.SplitHostPort(host); err == nil {
			host = hn
		}
		host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
		// Home Assistant's ingress proxy passes the browser's Host along (Home
		// Assistant's own name); it has signed the user in, and no page can
		// rebind a name to it.
		viaIngress := u.fromIngressProxy(r)
		if !viaIngress && net.ParseIP(host) == nil && !allowed[host] && !strings.HasSuffix(host, ".localhost") {
			logRefusal(fmt.Sprintf("%.80s", host), remoteIP(r))
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusMisdirectedRequest)
			_, _ = fmt.Fprintf(w, "fordpass2mqtt does not answer to the host name %q. If that is how you reach it, add it to HTTP_ALLOWED_HOSTS (or set HTTP_PUBLIC_URL to the address you use) and restart the bridge.\n", fmt.Sprintf("%.80s", host))
			return
		}
		if len(user) > 0 && !viaIngress { // Home Assistant has signed the user in
			addr := remoteIP(r)
			if until := u.fails.refusedUntil(addr); !until.IsZero() {
				u.o.AuthFailure("throttled")
				refuseGuesser(w, until.Sub(u.now()))
				return
			}
			name, pw, ok := r.BasicAuth()
			userOK := subtle.ConstantTimeCompare([]byte(name), user) == 1
			passOK := subtle.ConstantTimeCompare([]byte(pw), pass) == 1
			switch {
			case !ok: // a browser's first request asks for the credentials
				w.Header().Set("WWW-Authenticate", `Basic realm="fordpass2mqtt", charset="UTF-8"`)
				http.Error(w, "sign in with HTTP_USERNAME and HTTP_PASSWORD", http.StatusUnauthorized)
				return
			case !userOK || !passOK:
				u.o.AuthFailure("refused")
				until := u.fails.failed(addr)
				u.fails.log.Note(addr, func() {
					u.log.Warn("wrong HTTP basic-auth credentials (more from this address in the next minute are counted, not logged)", zap.String("from", addr))
				}, func() {
					u.log.Warn("wrong HTTP basic-auth credentials from more addresses; counted, not logged, until the minute is over")
				}, func(from string, n int) {
					if from == floodlog.Other {
						from = "other addresses"
					}
					u.log.Warn("more wrong HTTP basic-auth credentials", zap.Int("count", n), zap.String("from", from))
				})
				if !until.IsZero() {
					refuseGuesser(w, until.Sub(u.now()))
					return
				}
				w.Header().Set("WWW-Authenticate", `Basic realm="fordpass2mqtt", charset="UTF-8"`)
				http.Error(w, "sign in with HTTP_USERNAME and HTTP_PASSWORD", http.StatusUnauthorized)
				return
			}
			u.fails.succeeded(addr)
		}
		h.ServeHTTP(w, r)
	})
}

// refuseGuesser answers an address that gave too many wrong passwords.
func refuseGuesser(w http.ResponseWriter, wait time.Duration) {
	secs := int(max(wait, time.Second)/time.Second) + 1
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	http.Error(w, fmt.Sprintf("too many wrong passwords from this address; try again in %d s", secs), http.StatusTooManyRequests)
}

// maxLoggedHosts bounds how many refused host names are logged.
const maxLoggedHosts = 16

// sameOrigin refuses a cross-site form post (the browser says where it came
// from in Origin or Referer).
func sameOrigin(r *http.Request) bool {
	from := r.Header.Get("Origin")
	if from == "" {
		from = r.Header.Get("Referer")
	}
	if from == "" || from == "null" {
		return from == "" // a non-browser client sends neither
	}
	u, err := url.Parse(from)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func (u *UI) securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		frames := "'none'"
		if u.ingressPath(r) != "" {
			frames = "'self'" // Home Assistant shows the panel in a frame of its own origin
		}
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors "+frames+"; base-uri 'none'")
		h.ServeHTTP(w, r)
	})
}

type pageData struct {
	Info mqttapi.AuthInfo
	// Account is the account the page is of ("" with one account);
	// Accounts are every account with its state, when there are several.
	Account   string
	Accounts  []accountLink
	Headline  string
	Words     string
	SignedIn  bool
	Error     string
	FormToken string
	Calls     int
	Budget    int
	Vehicles  []string
	Doctor    *mqttapi.Report
	Broker    bool
	// Base prefixes every link and the form's action: the ingress path and a
	// slash under Home Assistant, "" (relative links) otherwise.
	Base string
	// FordConnect: the backend is FordConnect Query, whose consent lands
	// on Redirect.
	FordConnect bool
	Redirect    string
}

var stateWords = map[string][2]string{
	mqttapi.StateOK:             {"Connected", "The bridge is signed in to FordPass and keeps your car on MQTT."},
	mqttapi.StateReauthRequired: {"Sign-in needed", "FordPass needs you to sign in again. Follow the three steps below; no restart is needed."},
	mqttapi.StateRateLimited:    {"Waiting (rate limited)", "Ford asked the bridge to slow down, or the daily call budget is spent. It waits and resumes by itself."},
	mqttapi.StateUnavailable:    {"Ford unreachable", "FordPass cannot be reached right now. The bridge retries by itself; your sign-in is fine."},
}

// accountLink is an account as the page lists it, when there are several.
type accountLink struct {
	Name, State string
	Shown       bool // the account the page is of
}

// pageAccount is the account the page shows: the one asked for
// (?account=), else the first that needs a sign-in, else the first.
func (u *UI) pageAccount(r *http.Request) (string, []accountLink) {
	names := u.b.Accounts()
	if len(names) == 1 {
		return names[0], nil
	}
	shown := r.FormValue("account")
	if !slices.Contains(names, shown) {
		shown = names[0]
		for _, n := range names {
			if u.b.AuthInfo(n).State == mqttapi.StateReauthRequired {
				shown = n
				break
			}
		}
	}
	links := make([]accountLink, 0, len(names))
	for _, n := range names {
		links = append(links, accountLink{Name: n, State: u.b.AuthInfo(n).State, Shown: n == shown})
	}
	return shown, links
}

func (u *UI) renderPage(w http.ResponseWriter, r *http.Request, status int, token string, signedIn bool, errMsg string) {
	account, links := u.pageAccount(r)
	info := u.b.AuthInfo(account)
	if info.State != mqttapi.StateReauthRequired && info.LoginURL == "" {
		// Offer the link anyway, for switching accounts or refreshing a sign-in.
		info.LoginURL, _ = u.b.LoginURL(account)
	}
	words := stateWords[info.State]
	words[1] = strings.ReplaceAll(words[1], "FordPass", u.cfg.Service())
	bi := u.b.Info()
	for _, a := range bi.Accounts {
		if a.Name == account {
			bi.Calls24h, bi.CallBudget, bi.VINs = a.Calls24h, a.CallBudget, a.VINs
		}
	}
	d := pageData{Info: info, Account: account, Accounts: links, Headline: words[0], Words: words[1], SignedIn: signedIn, Error: errMsg, FormToken: token,
		Calls: bi.Calls24h, Budget: bi.CallBudget, Vehicles: bi.VINs, Broker: u.b.BrokerConnected(),
		FordConnect: u.cfg.Backend == config.BackendFordConnect, Redirect: u.cfg.FordConnect.RedirectURL}
	for _, b := range info.Backends {
		// With two backends the link offered is the one that needs a
		// sign-in most; the steps follow it.
		if b.LoginURL != "" && b.LoginURL == info.LoginURL {
			d.FordConnect = b.Name == config.BackendFordConnect
		}
	}
	d.Doctor = u.b.DoctorReport()
	if p := u.ingressPath(r); p != "" {
		d.Base = p + "/"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if _, err := io.WriteString(w, d.render()); err != nil {
		u.log.Debug("sending the sign-in page", zap.Error(err))
	}
}

// Serve starts the HTTP server on HTTP_ADDR.
func (u *UI) Serve() (*http.Server, error) {
	ln, err := net.Listen("tcp", u.cfg.HTTPAddr)
	if err != nil {
		return nil, config.NewError("HTTP_ADDR", err)
	}
	srv := &http.Server{Handler: u.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 120 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 32 << 10,
		BaseContext: func(net.Listener) context.Context { return context.Background() }}
	u.log.Info("serving health, metrics and the sign-in page", zap.String("addr", ln.Addr().String()))
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			u.log.Error("HTTP server stopped", zap.Error(err))
		}
	}()
	return srv, nil
}
