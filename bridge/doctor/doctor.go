package doctor

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// Options tune a doctor run.
type Options struct {
	Live    bool // refresh the token and list vehicles (spends Ford calls)
	Now     func() time.Time
	Timeout time.Duration // per network step [5s]
}

// Run runs the troubleshooting checklist. cfgErr is what
// configuration loading said; with it, only the configuration check runs.
func Run(ctx context.Context, cfg config.Config, cfgErr error, o Options) mqttapi.Report {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	r := mqttapi.Report{At: o.Now().UTC().Truncate(time.Second)}
	add := func(c mqttapi.Check) { r.Checks = append(r.Checks, c) }
	add(checkConfig(cfg, cfgErr))
	if cfgErr != nil {
		return r
	}
	b := checkBroker(ctx, cfg, o)
	add(b.check)
	if b.connected {
		add(checkOtherBridge(cfg, b))
		if c, ok := checkDarkCars(cfg, b); ok {
			add(c)
		}
		if c, ok := checkDemo(cfg, b); ok {
			add(c)
		}
	}
	for _, c := range checkFord(ctx, cfg, o) {
		add(c)
	}
	if cfg.Backend == config.BackendFordConnect || cfg.Backend == config.BackendBoth {
		add(checkFordConnect(cfg, o.Now()))
	}
	if cfg.Backend == config.BackendFordConnect {
		add(checkDrift(cfg.StateDir))
		return publishReport(cfg, b, r, o)
	}
	for _, a := range cfg.AccountList() {
		for _, c := range checkAccount(ctx, cfg, a, o) {
			add(c)
		}
	}
	add(checkDrift(cfg.StateDir))
	return publishReport(cfg, b, r, o)
}

// checkAccount checks one FordPass account's sign-in, budget and what Ford
// answered it; with FORD_ACCOUNTS each check names the account.
func checkAccount(ctx context.Context, cfg config.Config, a config.Account, o Options) []mqttapi.Check {
	acfg := cfg.ForAccount(a)
	var out []mqttapi.Check
	add := func(c mqttapi.Check) {
		if a.Name != "" {
			c.Name += " (" + a.Name + ")"
		}
		out = append(out, c)
	}
	if _, err := os.Stat(acfg.StateDir); a.Name != "" && err != nil {
		add(mqttapi.Check{Name: "token", Status: mqttapi.Fail, Finding: "the account has no folder in STATE_DIR yet: it was never signed in",
			Fix: "start the bridge and sign in: the sign-in page lists the accounts, or publish the redirect URL to " + mqttapi.New(cfg.TopicPrefix).Account(a.Name).CodeSet()})
		return out
	}
	client, err := fordapi.New(fordapi.Config{Region: acfg.Region, BaseURL: acfg.FordBaseURL, StateDir: acfg.StateDir,
		DailyBudget: acfg.DailyBudget, Now: o.Now})
	if err != nil {
		add(mqttapi.Check{Name: "token", Status: mqttapi.Fail, Finding: err.Error(), Fix: "check STATE_DIR"})
		return out
	}
	defer func() { _ = client.Budget().Close() }()
	add(checkToken(cfg, a.Name, client, o.Now()))
	if o.Live {
		for _, c := range checkLive(ctx, client) {
			add(c)
		}
	}
	add(checkBudget(client.Budget(), o.Now()))
	add(checkFordAnswers(acfg.StateDir, client.Protocol(), o.Now(), len(cfg.AccountList()) > 1))
	return out
}

// publishReport hands the report to the bridge's page (signed) and closes
// the broker connection.
func publishReport(cfg config.Config, b brokerResult, r mqttapi.Report, o Options) mqttapi.Report {
	if b.connected {
		if b.info == nil || !b.info.Demo { // the demo's page is not for this report
			if signed, err := bridge.SignReport(cfg.StateDir, r); err == nil {
				data, _ := json.Marshal(signed)
				_ = bridge.WaitToken(b.client.Publish(mqttapi.New(cfg.TopicPrefix).Doctor(), 1, true, data), o.Timeout)
			}
		}
		b.client.Disconnect(100)
	}
	return r
}

func checkConfig(cfg config.Config, cfgErr error) mqttapi.Check {
	c := mqttapi.Check{Name: "configuration", Status: mqttapi.Pass, Finding: "every variable is valid"}
	if cfgErr != nil {
		return mqttapi.Check{Name: "configuration", Status: mqttapi.Fail, Finding: strings.ReplaceAll(cfgErr.Error(), "\n", "; "),
			Fix: "correct the variables named; fordpass2mqtt --help lists them with their defaults"}
	}
	var risks, fixes []string
	bud, _ := fordapi.NewBudget("", cfg.DailyBudget, nil) // the same rules as the bridge's, in memory
	share := bud.Share(fordapi.ClassTelemetry)
	cars := max(len(cfg.VINs), 1)
	perDay := int(24*time.Hour/cfg.PollInterval)*cars + 24
	if !cfg.Stream && perDay > share {
		fit := bud.PollEvery(cars).Round(time.Minute)
		risks = append(risks, fmt.Sprintf("FORD_POLL_INTERVAL=%s asks for about %d Ford calls a day, more than the %d the budget leaves for telemetry; the bridge stretches polling to about %s",
			cfg.PollInterval, perDay, share, fit))
		fixes = append(fixes, fmt.Sprintf("set FORD_POLL_INTERVAL to %s or more, or turn FORD_STREAM on", fit))
	}
	switch cfg.Region.Status {
	case fordapi.RegionUnconfirmed:
		risks = append(risks, fmt.Sprintf("FORD_REGION=%s is not used by any maintained FordPass integration we know of, so nobody has confirmed its login settings", cfg.Region.Key))
		fixes = append(fixes, "if signing in fails, try rest_of_europe (or rest_of_world) and report what worked")
	case fordapi.RegionNotWorking:
		risks = append(risks, fmt.Sprintf("FORD_REGION=%s is reported not working by ha-fordpass's maintainer", cfg.Region.Key))
		fixes = append(fixes, "try rest_of_world; report what worked")
	case fordapi.RegionLocalAccount:
		risks = append(risks, fmt.Sprintf("FORD_REGION=%s works only with an account registered on the country's own Ford site", cfg.Region.Key))
		fixes = append(fixes, "register the FordPass account on the local Ford site")
	}
	if cfg.DailyBudget > 300 {
		risks = append(risks, fmt.Sprintf("FORD_DAILY_CALL_BUDGET=%d is above the roughly 250-300 calls a day at which Ford has locked accounts", cfg.DailyBudget))
		fixes = append(fixes, "lower FORD_DAILY_CALL_BUDGET unless you know your account tolerates it")
	}
	u, _ := url.Parse(cfg.MQTTURL)
	plain := u != nil && (u.Scheme == "tcp" || u.Scheme == "mqtt" || u.Scheme == "ws")
	var opening []string
	for _, name := range bridge.OpeningCommands() {
		if cfg.Allowed(name) {
			opening = append(opening, name)
		}
	}
	if cfg.MQTTUsername == "" && plain && len(opening) > 0 {
		risks = append(risks, strings.Join(opening, "/")+" allowed on a broker connection with no user name and no TLS: anyone who can reach the broker can open the car")
		fixes = append(fixes, "give the broker users and an ACL (deploy/mosquitto), or drop "+strings.Join(opening, ",")+" from COMMANDS_ALLOWED")
	}
	if len(risks) > 0 {
		c.Status, c.Finding, c.Fix = mqttapi.Warn, strings.Join(risks, "; "), strings.Join(fixes, "; ")
	}
	return c
}

type brokerResult struct {
	check     mqttapi.Check
	connected bool
	client    mqtt.Client
	info      *mqttapi.Info
	online    bool
	demoInfo  *mqttapi.Info // a demo's bridge info under config.DemoPrefix, if one runs on this broker
}

// checkBroker connects as the bridge would (same credentials and TLS, its
// own client id so the running bridge is not kicked off), and times a
// publish-receive round trip on a private topic. It also collects the
// retained bridge info for the next check.
func checkBroker(ctx context.Context, cfg config.Config, o Options) brokerResult {
	res := brokerResult{check: mqttapi.Check{Name: "broker"}}
	tree, demo := mqttapi.New(cfg.TopicPrefix), mqttapi.New(config.DemoPrefix)
	suffix := randomHex(4)
	var mu sync.Mutex
	got := make(chan time.Time, 1)
	probe := cfg.TopicPrefix + "/doctor/" + suffix
	opts, err := bridge.MQTTOptions(cfg, zap.NewNop(), false, func(mqtt.Client) {}, func(error) {})
	if err != nil {
		res.check.Status, res.check.Finding, res.check.Fix = mqttapi.Fail, err.Error(), "fix the TLS files named"
		return res
	}
	opts.SetClientID(cfg.MQTTClientID + "-doctor-" + suffix).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(o.Timeout).SetOnConnectHandler(nil).SetConnectionLostHandler(nil)
	c := mqtt.NewClient(opts)
	start := time.Now()
	if err := bridge.WaitToken(c.Connect(), o.Timeout+time.Second); err != nil {
		res.check.Status = mqttapi.Fail
		res.check.Finding, res.check.Fix = explainBrokerError(cfg, err)
		return res
	}
	connectTook := time.Since(start)
	res.connected, res.client = true, c
	handler := func(_ mqtt.Client, m mqtt.Message) {
		switch m.Topic() {
		case probe:
			select {
			case got <- time.Now():
			default:
			}
		case tree.Info():
			var info mqttapi.Info
			if json.Unmarshal(m.Payload(), &info) == nil {
				mu.Lock()
				res.info = &info
				mu.Unlock()
			}
		case demo.Info():
			var info mqttapi.Info
			if json.Unmarshal(m.Payload(), &info) == nil && info.Demo {
				mu.Lock()
				res.demoInfo = &info
				mu.Unlock()
			}
		case tree.Availability():
			mu.Lock()
			res.online = string(m.Payload()) == "online"
			mu.Unlock()
		}
	}
	subs := map[string]byte{probe: 1, tree.Info(): 1, tree.Availability(): 1}
	if cfg.TopicPrefix != config.DemoPrefix {
		subs[demo.Info()] = 1
	}
	if err := bridge.WaitToken(c.SubscribeMultiple(subs, handler), o.Timeout); err != nil {
		res.check.Status, res.check.Finding = mqttapi.Fail, "connected, but subscribing was refused: "+err.Error()
		res.check.Fix = "the broker's ACL must let this user read " + cfg.TopicPrefix + "/#"
		return res
	}
	sent := time.Now()
	if err := bridge.WaitToken(c.Publish(probe, 1, false, "ping"), o.Timeout); err != nil {
		res.check.Status, res.check.Finding = mqttapi.Fail, "connected, but publishing was refused: "+err.Error()
		res.check.Fix = "the broker's ACL must let this user write " + cfg.TopicPrefix + "/#"
		return res
	}
	select {
	case at := <-got:
		res.check.Status = mqttapi.Pass
		res.check.Finding = fmt.Sprintf("connected to %s as %q in %s; publish-receive round trip %s",
			bridge.RedactURL(cfg.MQTTURL), nonEmptyUser(cfg.MQTTUsername), connectTook.Round(time.Millisecond), at.Sub(sent).Round(100*time.Microsecond))
	case <-time.After(o.Timeout):
		res.check.Status, res.check.Finding = mqttapi.Fail, "connected, but a message to "+probe+" never came back"
		res.check.Fix = "the broker's ACL must let this user read and write " + cfg.TopicPrefix + "/#"
	case <-ctx.Done():
		res.check.Status, res.check.Finding = mqttapi.Fail, "interrupted"
	}
	time.Sleep(200 * time.Millisecond) // retained bridge info arrives with the subscription
	mu.Lock()
	defer mu.Unlock()
	return res
}

// checkDemo says whether this report is about a demo, or beside one.
func checkDemo(cfg config.Config, b brokerResult) (mqttapi.Check, bool) {
	switch {
	case b.info != nil && b.info.Demo:
		return mqttapi.Check{Name: "demo", Status: mqttapi.Warn,
			Finding: fmt.Sprintf("%s/ belongs to fordpass2mqtt demo: its cars and its Ford are simulated and its state lives in a temporary folder, so the token, budget and Ford checks here are about this environment's setup (STATE_DIR=%s), not the demo's", cfg.TopicPrefix, cfg.StateDir),
			Fix:     "to check a real bridge, run doctor with that bridge's environment (in Docker: docker compose exec fordpass2mqtt fordpass2mqtt doctor); this report is not posted to the demo's page"}, true
	case b.demoInfo != nil:
		return mqttapi.Check{Name: "demo", Status: mqttapi.Pass,
			Finding: fmt.Sprintf("a fordpass2mqtt demo runs on this broker under %s/ (simulated cars); this report is about the setup in this environment (MQTT_TOPIC_PREFIX=%s, STATE_DIR=%s), not the demo", config.DemoPrefix, cfg.TopicPrefix, cfg.StateDir)}, true
	}
	return mqttapi.Check{}, false
}

func nonEmptyUser(u string) string {
	if u == "" {
		return "anonymous"
	}
	return u
}

// explainBrokerError turns a connection failure into a finding and a fix.
func explainBrokerError(cfg config.Config, err error) (string, string) {
	msg := err.Error()
	low := strings.ToLower(msg)
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	switch {
	case errors.As(err, &ua) || errors.As(err, &he) || strings.Contains(low, "x509") || strings.Contains(low, "certificate"):
		return "TLS: the broker's certificate is not trusted (" + msg + ")",
			"set MQTT_CA_FILE to the PEM file of the CA that signed the broker's certificate, and use the host name the certificate names"
	case strings.Contains(low, "not authorized") || strings.Contains(low, "bad user name or password") || strings.Contains(low, "identifier rejected"):
		return fmt.Sprintf("the broker refused user %q: %s", nonEmptyUser(cfg.MQTTUsername), msg),
			"check MQTT_USERNAME and MQTT_PASSWORD against the broker's password file"
	case strings.Contains(low, "refused") || strings.Contains(low, "no such host") || strings.Contains(low, "timeout") || strings.Contains(low, "timed out"):
		return "cannot reach the broker at " + bridge.RedactURL(cfg.MQTTURL) + ": " + msg,
			"start the broker, or fix MQTT_URL (in Docker Compose the host is the service name, e.g. tcp://mosquitto:1883)"
	}
	return "cannot connect to the broker at " + bridge.RedactURL(cfg.MQTTURL) + ": " + msg, "check MQTT_URL, the credentials and TLS settings"
}

func checkOtherBridge(cfg config.Config, b brokerResult) mqttapi.Check {
	c := mqttapi.Check{Name: "other bridge"}
	mine, _ := bridge.InstanceID(cfg.StateDir)
	switch {
	case b.info == nil:
		c.Status, c.Finding = mqttapi.Pass, "no fordpass2mqtt has published on "+cfg.TopicPrefix+"/ yet"
	case b.info.Instance != "" && b.info.Instance != mine && b.online:
		c.Status = mqttapi.Fail
		c.Finding = fmt.Sprintf("another fordpass2mqtt (instance %s, version %s, started %s) is online on %s/: two bridges double the Ford calls and, on one account, fight over the refresh token",
			b.info.Instance, b.info.Version, b.info.StartedAt.Format(time.RFC3339), cfg.TopicPrefix)
		c.Fix = "stop one of them, or give each its own MQTT_TOPIC_PREFIX, MQTT_CLIENT_ID and FordPass account"
	case b.info.Instance != "" && b.info.Instance != mine:
		c.Status = mqttapi.Warn
		c.Finding = fmt.Sprintf("another fordpass2mqtt installation (instance %s) left its retained state on %s/; it is offline now", b.info.Instance, cfg.TopicPrefix)
		c.Fix = "if it is gone for good, nothing to do; if it comes back, give it its own MQTT_TOPIC_PREFIX"
	case b.info.Reconnects1h >= 5:
		c.Status = mqttapi.Fail
		c.Finding = fmt.Sprintf("the bridge reconnected to the broker %d times in the last hour: another client is most likely using MQTT_CLIENT_ID=%q, and the broker drops one whenever the other connects", b.info.Reconnects1h, cfg.MQTTClientID)
		c.Fix = "give every MQTT client its own client id"
	case b.online:
		c.Status, c.Finding = mqttapi.Pass, fmt.Sprintf("only this installation's bridge (started %s) is on %s/", b.info.StartedAt.Format(time.RFC3339), cfg.TopicPrefix)
	default:
		c.Status, c.Finding = mqttapi.Pass, "this installation's bridge is not running now; no other bridge seen"
	}
	return c
}

// checkFord checks DNS, TCP and TLS to every Ford host in use, and the
// clock against Ford's Date header. These are not API calls (no token, no
// API path) and are not counted in the call budget.
func checkFord(ctx context.Context, cfg config.Config, o Options) []mqttapi.Check {
	var out []mqttapi.Check
	worst := time.Duration(0)
	dated := ""
	for _, origin := range fordapi.Origins(cfg.Region, cfg.FordBaseURL) {
		u, err := url.Parse(origin)
		if err != nil {
			continue
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		c := mqttapi.Check{Name: "ford " + host}
		dctx, cancel := context.WithTimeout(ctx, o.Timeout)
		t0 := time.Now()
		addrs, err := net.DefaultResolver.LookupHost(dctx, host)
		cancel()
		if err != nil {
			c.Status, c.Finding, c.Fix = mqttapi.Fail, "DNS: "+err.Error(), "check the machine's DNS (in Docker, the container's); a firewall or ad blocker may block Ford's hosts"
			out = append(out, c)
			continue
		}
		dnsTook := time.Since(t0)
		t1 := time.Now()
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(addrs[0], port), o.Timeout)
		if err != nil {
			c.Status, c.Finding, c.Fix = mqttapi.Fail, "TCP to "+net.JoinHostPort(host, port)+": "+err.Error(), "check the firewall and any proxy between this machine and Ford"
			out = append(out, c)
			continue
		}
		tcpTook := time.Since(t1)
		tlsNote := ""
		if u.Scheme == "https" {
			tc := tls.Client(conn, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
			_ = tc.SetDeadline(time.Now().Add(o.Timeout))
			t2 := time.Now()
			if err := tc.Handshake(); err != nil {
				conn.Close()
				c.Status, c.Finding, c.Fix = mqttapi.Fail, "TLS to "+host+": "+err.Error(), "a proxy or firewall intercepts TLS, or the system CA certificates are missing"
				out = append(out, c)
				continue
			}
			tlsNote = fmt.Sprintf(", TLS %s", time.Since(t2).Round(time.Millisecond))
		}
		conn.Close()
		c.Status = mqttapi.Pass
		c.Finding = fmt.Sprintf("DNS %s, TCP %s%s", dnsTook.Round(time.Millisecond), tcpTook.Round(time.Millisecond), tlsNote)
		if off, ok := clockOffset(ctx, &http.Client{Timeout: 2 * o.Timeout}, origin); ok {
			c.Finding += fmt.Sprintf(", clock offset %s", off.Round(time.Second))
			if off.Abs() >= worst.Abs() {
				worst, dated = off, host
			}
		}
		out = append(out, c)
	}
	clock := mqttapi.Check{Name: "clock"}
	switch {
	case dated == "":
		clock.Status, clock.Finding = mqttapi.Warn, "no Ford host answered with a Date header; the clock could not be compared"
	case worst.Abs() > time.Minute:
		clock.Status = mqttapi.Fail
		clock.Finding = fmt.Sprintf("this machine's clock is %s off Ford's (%s): fresh tokens look expired or not yet valid", worst.Round(time.Second), dated)
		clock.Fix = "turn on time synchronisation (NTP): timedatectl set-ntp true, or the NAS's time settings"
	case worst.Abs() > 10*time.Second:
		clock.Status = mqttapi.Warn
		clock.Finding = fmt.Sprintf("this machine's clock is %s off Ford's (%s)", worst.Round(time.Second), dated)
		clock.Fix = "turn on time synchronisation (NTP)"
	default:
		clock.Status, clock.Finding = mqttapi.Pass, fmt.Sprintf("within %s of Ford's (%s)", max(worst.Abs().Round(time.Second), time.Second), dated)
	}
	return append(out, clock)
}

// clockOffset is server time minus local time, from the Date header of a
// plain GET of the origin's root.
func clockOffset(ctx context.Context, hc *http.Client, origin string) (time.Duration, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, origin+"/", nil)
	if err != nil {
		return 0, false
	}
	before := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	after := time.Now()
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0, false
	}
	mid := before.Add(after.Sub(before) / 2)
	// The header has whole seconds: the true time is up to 1 s later.
	return date.Add(500 * time.Millisecond).Sub(mid), true
}

func checkToken(cfg config.Config, account string, client *fordapi.Client, now time.Time) mqttapi.Check {
	c := mqttapi.Check{Name: "token"}
	st := client.Status()
	if !st.SignedIn {
		c.Status, c.Finding = mqttapi.Fail, st.Reason
		c.Fix = "sign in: the sign-in page on HTTP_ADDR, fordpass2mqtt login, or publish the redirect URL to " + mqttapi.New(cfg.TopicPrefix).Account(account).CodeSet()
		if account != "" {
			c.Fix = "sign in: the sign-in page on HTTP_ADDR (its account " + account + "), fordpass2mqtt login --account " + account + ", or publish the redirect URL to " + mqttapi.New(cfg.TopicPrefix).Account(account).CodeSet()
		}
		return c
	}
	var notes []string
	if fi, err := os.Stat(client.TokenPath()); err == nil && fi.Mode().Perm() != 0o600 {
		c.Status, c.Finding = mqttapi.Fail, fmt.Sprintf("the token file is readable by others (mode %o)", fi.Mode().Perm())
		c.Fix = "chmod 600 " + client.TokenPath()
		return c
	}
	if di, err := os.Stat(filepath.Dir(client.TokenPath())); err == nil && di.Mode().Perm()&0o077 != 0 {
		notes = append(notes, fmt.Sprintf("STATE_DIR is mode %o; 700 keeps the token private", di.Mode().Perm()))
	}
	dir := filepath.Dir(client.TokenPath())
	if err := fordapi.WriteFileAtomic(filepath.Join(dir, ".doctor-probe"), []byte("probe\n")); err != nil {
		c.Status = mqttapi.Fail
		c.Finding = "STATE_DIR cannot be written (" + err.Error() + "): Ford rotates the refresh token at every refresh, and a token that cannot be saved makes the next restart need a new sign-in"
		c.Fix = "make STATE_DIR writable by the user the bridge runs as (uid 65532 in the image)"
		return c
	}
	_ = os.Remove(filepath.Join(dir, ".doctor-probe"))
	access := "expired (it is refreshed on the next call)"
	if st.AccessExpiry.After(now) {
		access = "valid for " + human(st.AccessExpiry.Sub(now))
	}
	c.Status = mqttapi.Pass
	c.Finding = "signed in; access token " + access
	switch {
	case st.RefreshExpiry.IsZero():
		c.Finding += "; Ford gave no refresh token lifetime"
	case st.RefreshExpiry.Before(now):
		c.Status, c.Fix = mqttapi.Fail, "sign in again"
		c.Finding += "; the refresh token expired " + human(now.Sub(st.RefreshExpiry)) + " ago"
	case st.RefreshExpiry.Sub(now) < 7*24*time.Hour:
		c.Status, c.Fix = mqttapi.Warn, "sign in again soon, before it expires, to avoid an outage"
		c.Finding += "; the refresh token expires in " + human(st.RefreshExpiry.Sub(now))
	default:
		c.Finding += "; refresh token valid until " + st.RefreshExpiry.UTC().Format("2006-01-02") + " (" + human(st.RefreshExpiry.Sub(now)) + ")"
	}
	if len(notes) > 0 {
		c.Finding += "; " + strings.Join(notes, "; ")
		if c.Status == mqttapi.Pass {
			c.Status, c.Fix = mqttapi.Warn, "chmod 700 "+filepath.Dir(client.TokenPath())
		}
	}
	if pid := fordapi.StateDirHolder(cfg.StateDir); pid != "" {
		// One bridge per STATE_DIR: a second one exits naming this PID.
		c.Finding += "; the bridge running on this STATE_DIR is PID " + pid
	}
	return c
}

func checkBudget(b *fordapi.Budget, now time.Time) mqttapi.Check {
	used, limit := b.Used(), b.Limit()
	c := mqttapi.Check{Name: "call budget", Status: mqttapi.Pass,
		Finding: fmt.Sprintf("%d of %d Ford calls used in the last 24 h (telemetry %d of %d, commands %d of %d, sign-ins %d of %d); %d in the last hour; %d Autonomic token exchanges of their own %d",
			used, limit, b.UsedBy(fordapi.ClassTelemetry), b.Share(fordapi.ClassTelemetry), b.UsedBy(fordapi.ClassCommand), b.Share(fordapi.ClassCommand),
			b.UsedBy(fordapi.ClassSignIn), b.Share(fordapi.ClassSignIn), b.InLast(time.Hour), b.UsedBy(fordapi.ClassToken), b.Share(fordapi.ClassToken))}
	if b.Damaged() {
		c.Status = mqttapi.Warn
		c.Finding += "; the saved count (calls.json) was unreadable at start, so this hour's share of every kind of call was assumed spent"
	}
	if at, until := b.LastRateLimit(); !at.IsZero() {
		if until.After(now) {
			c.Status = mqttapi.Warn
			c.Finding += fmt.Sprintf("; Ford answered 429 at %s and asked to wait until %s", at.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
			c.Fix = "nothing to do: the bridge waits; if it keeps happening, another integration may use the same account"
		} else if now.Sub(at) < 7*24*time.Hour {
			c.Finding += "; the last 429 from Ford was " + human(now.Sub(at)) + " ago"
		}
	}
	if used >= limit*8/10 && c.Status == mqttapi.Pass {
		c.Status = mqttapi.Warn
		c.Fix = "the budget is nearly spent: poll less (FORD_POLL_INTERVAL), bridge fewer cars, or send fewer commands"
	}
	return c
}

// human writes a duration the way a person says it.
func human(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%d days", int(math.Round(d.Hours()/24)))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// PrintReport writes the checklist for a person.
func PrintReport(w io.Writer, r mqttapi.Report) {
	fmt.Fprintf(w, "fordpass2mqtt doctor, %s\n\n", r.At.Format("2006-01-02 15:04:05 MST"))
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range r.Checks {
		fmt.Fprintf(w, "  %-4s  %-*s  %s\n", strings.ToUpper(c.Status), width, c.Name, c.Finding)
		if c.Fix != "" {
			fmt.Fprintf(w, "        %-*s  fix: %s\n", width, "", c.Fix)
		}
	}
	fails, warns := 0, 0
	for _, c := range r.Checks {
		switch c.Status {
		case mqttapi.Fail:
			fails++
		case mqttapi.Warn:
			warns++
		}
	}
	fmt.Fprintf(w, "\n%d checks: %d failed, %d warnings.\n", len(r.Checks), fails, warns)
}

// checkDrift is doctor's finding on what Ford sent that this version does
// not understand.
func checkDrift(stateDir string) mqttapi.Check {
	c := mqttapi.Check{Name: "protocol drift", Status: mqttapi.Pass, Finding: "every metric Ford sent was understood"}
	d, err := bridge.ReadDrift(stateDir)
	if err != nil {
		c.Finding = err.Error()
		return c
	}
	var parts []string
	names := make([]string, 0, len(d.Unknown))
	for n := range d.Unknown {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s (%s)", n, d.Unknown[n]))
	}
	if len(parts) == 0 && len(d.Unreadable) == 0 {
		return c
	}
	c.Status = mqttapi.Warn
	c.Finding = ""
	if len(parts) > 0 {
		c.Finding = fmt.Sprintf("Ford sent %d metric(s) this version does not know: %s", len(parts), strings.Join(parts, ", "))
	}
	if len(d.Unreadable) > 0 {
		if c.Finding != "" {
			c.Finding += "; "
		}
		c.Finding += "known metric(s) in a shape this version cannot read, left out: " + strings.Join(d.Unreadable, ", ")
	}
	c.Fix = "nothing breaks: the rest is published. Paste this line into a bug report so a new version can publish them (it holds names and types, never values)"
	return c
}
