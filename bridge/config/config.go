package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/kelseyhightower/envconfig"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordconnect"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// env is the configuration as read from the environment: every value a
// string, so that Validate can report every bad value at once instead of
// stopping at the first one that does not parse.
type env struct {
	MQTTURL           string `envconfig:"MQTT_URL" default:"tcp://localhost:1883" desc:"broker URL: tcp:// (or mqtt://), ssl:// (or tls://, mqtts://), ws://, wss://"`
	MQTTUsername      string `envconfig:"MQTT_USERNAME" desc:"broker user name"`
	MQTTPassword      string `envconfig:"MQTT_PASSWORD" desc:"broker password"`
	MQTTClientID      string `envconfig:"MQTT_CLIENT_ID" default:"fordpass2mqtt" desc:"MQTT client id (unique per broker)"`
	MQTTCAFile        string `envconfig:"MQTT_CA_FILE" desc:"PEM file of the CA that signed the broker's certificate"`
	MQTTCertFile      string `envconfig:"MQTT_CERT_FILE" desc:"PEM client certificate (with MQTT_KEY_FILE)"`
	MQTTKeyFile       string `envconfig:"MQTT_KEY_FILE" desc:"PEM client key (with MQTT_CERT_FILE)"`
	TopicPrefix       string `envconfig:"MQTT_TOPIC_PREFIX" default:"fordpass" desc:"prefix of every topic"`
	HADiscovery       string `envconfig:"HA_DISCOVERY" default:"true" desc:"publish Home Assistant MQTT discovery"`
	HADiscoveryPrefix string `envconfig:"HA_DISCOVERY_PREFIX" default:"homeassistant" desc:"Home Assistant discovery prefix"`
	FordRegion        string `envconfig:"FORD_REGION" default:"usa" desc:"FordPass region key (usa, can, deu, gbr, rest_of_europe, rest_of_world, lincoln_usa, …); unconfirmed by any maintained integration: aut, bel, che, fin, irl, swe; reported not working: arg, bra; local Ford account needed: aus, nzl, zaf"`
	FordVINs          string `envconfig:"FORD_VINS" desc:"comma-separated VINs to bridge; empty: every vehicle on the account"`
	FordAccounts      string `envconfig:"FORD_ACCOUNTS" desc:"several Ford accounts in one bridge: comma-separated names (letters, digits, _), each with its own sign-in, STATE_DIR/<name>/ and P/auth/<name>/ topics, and optional FORD_REGION_<NAME> and FORD_VINS_<NAME>; empty: one account (FORD_BACKEND=fordpass only)"`
	FordBackend       string `envconfig:"FORD_BACKEND" default:"fordpass" desc:"fordpass (the FordPass app's API: telemetry and commands), fordconnect (Ford's official read-only FordConnect Query: telemetry only, polled) or both (FordPass, and FordConnect whenever FordPass fails)"`
	FconClientID      string `envconfig:"FORDCONNECT_CLIENT_ID" desc:"client id of your app at developer.ford.com (FORD_BACKEND=fordconnect)"`
	FconClientSecret  string `envconfig:"FORDCONNECT_CLIENT_SECRET" desc:"client secret of that app"`
	FconRedirectURL   string `envconfig:"FORDCONNECT_REDIRECT_URL" default:"http://localhost:8080/fordconnect/callback" desc:"redirect URL registered with that app (localhost or a public address)"`
	FordBaseURL       string `envconfig:"FORD_BASE_URL" desc:"one origin serving every Ford endpoint (the simulator); empty: Ford's hosts"`
	FordStream        string `envconfig:"FORD_STREAM" default:"true" desc:"take telemetry from Ford's websocket push; polling is the fallback"`
	ClimateDefault    string `envconfig:"FORD_CLIMATE_DEFAULT_PROFILE" default:"false" desc:"where Ford holds no remote climate profile for a car, write ha-fordpass's default one (heaters off, 22 °C) on the first climate change instead of failing"`
	FordPollInterval  string `envconfig:"FORD_POLL_INTERVAL" default:"10m" desc:"telemetry poll interval without a stream (at least 1m against Ford)"`
	FordDailyBudget   string `envconfig:"FORD_DAILY_CALL_BUDGET" default:"250" desc:"hard ceiling on Ford calls per 24 h (every kind counted)"`
	CommandsAllowed   string `envconfig:"COMMANDS_ALLOWED" default:"all" desc:"commands accepted on P/VIN/command: all (every command, those of later versions too) or a comma-separated list of them"`
	StateDir          string `envconfig:"STATE_DIR" default:"./data" desc:"token, sign-in and call budget state (created 0700)"`
	HTTPAddr          string `envconfig:"HTTP_ADDR" default:":8080" desc:"address of health, metrics and the sign-in page; empty disables"`
	HTTPPublicURL     string `envconfig:"HTTP_PUBLIC_URL" desc:"how users reach the sign-in page, e.g. http://nas.local:8080/"`
	HTTPAllowedHosts  string `envconfig:"HTTP_ALLOWED_HOSTS" desc:"comma-separated host names the sign-in page answers to, besides IP addresses, localhost and HTTP_PUBLIC_URL's host"`
	HTTPUsername      string `envconfig:"HTTP_USERNAME" desc:"HTTP basic auth user for everything but /healthz (with HTTP_PASSWORD)"`
	HTTPPassword      string `envconfig:"HTTP_PASSWORD" desc:"HTTP basic auth password (with HTTP_USERNAME)"`
	LogLevel          string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat         string `envconfig:"LOG_FORMAT" default:"console" desc:"console or json"`

	fromOptions []string // variables the add-on's options.json set
	// perAccount are FORD_REGION_<NAME> and FORD_VINS_<NAME>, which no
	// struct field can name (from the environment or the add-on's
	// ford_accounts option).
	perAccount map[string]string
}

// The backends (FORD_BACKEND).
const (
	BackendFordPass    = mqttapi.BackendFordPass
	BackendFordConnect = mqttapi.BackendFordConnect
	// BackendBoth: FordPass for the stream and the commands, FordConnect
	// for the cars' state whenever FordPass cannot give it.
	BackendBoth = "both"
)

// AllCommands in COMMANDS_ALLOWED allows every command of the table,
// those a later version adds too.
const AllCommands = "all"

// DemoPrefix is the topic prefix of fordpass2mqtt demo (a second demo on
// the same broker takes DemoPrefix_<random>).
const DemoPrefix = "fordpass_demo"

// FordConnectApp is the owner's app at developer.ford.com.
type FordConnectApp struct {
	ClientID, ClientSecret, RedirectURL string
}

// Config is the validated configuration.
type Config struct {
	MQTTURL           string
	MQTTUsername      string
	MQTTPassword      string
	MQTTClientID      string
	MQTTCAFile        string
	MQTTCertFile      string
	MQTTKeyFile       string
	TopicPrefix       string
	HADiscovery       bool
	HADiscoveryPrefix string
	Region            fordapi.Region
	VINs              []string // upper case; empty: all
	// Accounts are the Ford accounts served: one with the name "" (the
	// topics and STATE_DIR as they always were) unless FORD_ACCOUNTS names
	// several.
	Accounts    []Account
	FordBaseURL string
	// Backend is BackendFordPass, BackendFordConnect or BackendBoth.
	Backend          string
	FordConnect      FordConnectApp
	Stream           bool
	ClimateDefault   bool // FORD_CLIMATE_DEFAULT_PROFILE
	PollInterval     time.Duration
	DailyBudget      int
	CommandsAllowed  []string
	StateDir         string
	HTTPAddr         string
	HTTPPublicURL    string
	HTTPAllowedHosts []string // lower case, without ports
	HTTPUsername     string
	HTTPPassword     string
	LogLevel         string
	LogFormat        string
	// Demo is set by fordpass2mqtt demo (never from the environment).
	Demo bool
	// Addon is set when the Home Assistant Supervisor started the bridge
	// (SUPERVISOR_TOKEN); IngressOnly then lets only Home Assistant's
	// ingress proxy (and this host) reach the page, unless the user opened
	// its port in the add-on's network settings.
	Addon, IngressOnly bool
}

// Account is one Ford account of FORD_ACCOUNTS: its sign-in, files and
// auth topics are its own.
type Account struct {
	Name   string // "" for the only account when FORD_ACCOUNTS is unset
	Region fordapi.Region
	VINs   []string // upper case; empty: all of the account's cars
}

// maxAccounts bounds FORD_ACCOUNTS: each account is a sign-in, a call
// budget and a socket of its own.
const maxAccounts = 16

// AccountList is Accounts, or the one account of FORD_REGION and FORD_VINS
// for a Config made without Load (Accounts empty).
func (c Config) AccountList() []Account {
	if len(c.Accounts) == 0 {
		return []Account{{Region: c.Region, VINs: c.VINs}}
	}
	return c.Accounts
}

// ForAccount is the configuration as one account sees it: its STATE_DIR
// (STATE_DIR/<name>/ for a named account), region and VINs.
func (c Config) ForAccount(a Account) Config {
	c.Region, c.VINs = a.Region, a.VINs
	if a.Name != "" {
		c.StateDir = filepath.Join(c.StateDir, a.Name)
	}
	return c
}

// Error is a setting that cannot work: the variable it names must be
// changed. The binary exits with code 2 for it (matched with errors.As).
type Error struct {
	Var string // the environment variable, e.g. STATE_DIR
	Err error
}

func (e *Error) Error() string { return e.Var + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// NewError wraps err as a problem with the variable name (one found when
// the setting is used, such as a certificate file that does not parse).
func NewError(name string, err error) error { return &Error{Var: name, Err: err} }

// Load reads the environment and validates it, reporting every problem
// at once, each naming its variable. commands are the names
// COMMANDS_ALLOWED may hold (the bridge's command table).
func Load(commands []string) (Config, error) {
	var e env
	if err := envconfig.Process("", &e); err != nil {
		return Config{}, err // only strings: cannot fail in practice
	}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "FORD_REGION_") || strings.HasPrefix(k, "FORD_VINS_") {
			e.setPerAccount(k, v)
		}
	}
	if !inAddon() {
		return e.validate(commands)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	optErr := e.applyAddonOptions()
	brokerErr := e.addonBroker(ctx)
	cfg, err := e.validate(commands)
	cfg.Addon = true
	self := addonSelfInfo(ctx)
	cfg.IngressOnly = true
	for port, host := range self.Network {
		if strings.HasPrefix(port, portOf(cfg.HTTPAddr)+"/") && host != nil {
			cfg.IngressOnly = false // the user opened the page's port on purpose
		}
	}
	if cfg.HTTPPublicURL == "" && self.Slug != "" {
		cfg.HTTPPublicURL = ingressURL(self.Slug) // the device page's Visit link opens the panel
	}
	return cfg, errors.Join(optErr, brokerErr, err)
}

// setPerAccount keeps a FORD_REGION_<NAME> or FORD_VINS_<NAME>.
func (e *env) setPerAccount(k, v string) {
	if e.perAccount == nil {
		e.perAccount = map[string]string{}
	}
	e.perAccount[k] = v
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func (e env) validate(commands []string) (Config, error) {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, NewError(name, fmt.Errorf(format, args...)))
	}
	c := Config{
		MQTTURL: strings.TrimSpace(e.MQTTURL), MQTTUsername: e.MQTTUsername, MQTTPassword: e.MQTTPassword,
		MQTTClientID: strings.TrimSpace(e.MQTTClientID), MQTTCAFile: e.MQTTCAFile, MQTTCertFile: e.MQTTCertFile,
		MQTTKeyFile: e.MQTTKeyFile, TopicPrefix: strings.Trim(strings.TrimSpace(e.TopicPrefix), "/"),
		HADiscoveryPrefix: strings.Trim(strings.TrimSpace(e.HADiscoveryPrefix), "/"),
		FordBaseURL:       strings.TrimSpace(e.FordBaseURL), StateDir: e.StateDir, HTTPAddr: strings.TrimSpace(e.HTTPAddr),
		HTTPPublicURL: strings.TrimSpace(e.HTTPPublicURL), HTTPUsername: e.HTTPUsername, HTTPPassword: e.HTTPPassword, LogLevel: strings.ToLower(strings.TrimSpace(e.LogLevel)),
		LogFormat: strings.ToLower(strings.TrimSpace(e.LogFormat)),
	}

	if msg := checkBrokerURL(c.MQTTURL); msg != "" {
		bad("MQTT_URL", "%s", msg)
	}
	switch {
	case c.MQTTClientID == "":
		bad("MQTT_CLIENT_ID", "must not be empty")
	case len(c.MQTTClientID) > 65535:
		bad("MQTT_CLIENT_ID", "is %d bytes; MQTT allows at most 65535 (and many brokers 23)", len(c.MQTTClientID))
	case !utf8.ValidString(c.MQTTClientID) || strings.ContainsRune(c.MQTTClientID, 0):
		bad("MQTT_CLIENT_ID", "%.40q must be UTF-8 text without NUL", c.MQTTClientID)
	}
	for _, f := range []struct{ name, path string }{{"MQTT_CA_FILE", c.MQTTCAFile}, {"MQTT_CERT_FILE", c.MQTTCertFile}, {"MQTT_KEY_FILE", c.MQTTKeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad(f.name, "cannot read %s: %v", f.path, errors.Unwrap(err))
		}
	}
	switch {
	case c.MQTTCertFile != "" && c.MQTTKeyFile == "":
		bad("MQTT_CERT_FILE", "is set without MQTT_KEY_FILE; a client certificate needs its key: set both or neither")
	case c.MQTTKeyFile != "" && c.MQTTCertFile == "":
		bad("MQTT_KEY_FILE", "is set without MQTT_CERT_FILE; a client key needs its certificate: set both or neither")
	}
	validTopic := func(name, v string) {
		if v == "" || strings.ContainsAny(v, "+#\x00") {
			bad(name, "%q must be non-empty and hold no +, # or NUL", v)
		}
	}
	validTopic("MQTT_TOPIC_PREFIX", c.TopicPrefix)
	validTopic("HA_DISCOVERY_PREFIX", c.HADiscoveryPrefix)

	var err error
	if c.HADiscovery, err = strconv.ParseBool(strings.TrimSpace(e.HADiscovery)); err != nil {
		bad("HA_DISCOVERY", "%q is not true or false", e.HADiscovery)
	}
	if c.ClimateDefault, err = strconv.ParseBool(strings.TrimSpace(e.ClimateDefault)); err != nil {
		bad("FORD_CLIMATE_DEFAULT_PROFILE", "%q is not true or false", e.ClimateDefault)
	}
	if c.Stream, err = strconv.ParseBool(strings.TrimSpace(e.FordStream)); err != nil {
		bad("FORD_STREAM", "%q is not true or false", e.FordStream)
	}
	if c.Region, err = fordapi.LookupRegion(e.FordRegion); err != nil {
		bad("FORD_REGION", "%v", err)
	}
	for _, v := range strings.Split(e.FordVINs, ",") {
		v = strings.ToUpper(strings.TrimSpace(v))
		if v == "" {
			continue
		}
		if !mqttapi.IsVIN(v) {
			bad("FORD_VINS", "%q is not a VIN (17 letters and digits, without I, O and Q)", v)
			continue
		}
		if !slices.Contains(c.VINs, v) {
			c.VINs = append(c.VINs, v)
		}
	}
	c.Accounts = e.accounts(c, bad)
	if c.FordBaseURL != "" {
		u, err := url.Parse(c.FordBaseURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "":
			bad("FORD_BASE_URL", "%q is not an http(s) origin such as http://127.0.0.1:9000", c.FordBaseURL)
		case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			bad("FORD_BASE_URL", "%q must be an origin only (scheme, host and port): the simulator serves Ford's own paths under it", c.FordBaseURL)
		case badPort(u.Port()):
			bad("FORD_BASE_URL", "port %q is not a number from 1 to 65535", u.Port())
		}
	}
	c.Backend = strings.ToLower(strings.TrimSpace(e.FordBackend))
	c.FordConnect = FordConnectApp{ClientID: strings.TrimSpace(e.FconClientID), ClientSecret: strings.TrimSpace(e.FconClientSecret),
		RedirectURL: strings.TrimSpace(e.FconRedirectURL)}
	if c.FordConnect.RedirectURL == "" {
		c.FordConnect.RedirectURL = fordconnect.DefaultRedirect
	}
	switch c.Backend {
	case BackendFordPass, "":
		c.Backend = BackendFordPass
	case BackendFordConnect, BackendBoth:
		if c.Backend == BackendFordConnect {
			c.Stream = false // FordConnect Query has no push
		}
		if c.FordConnect.ClientID == "" || c.FordConnect.ClientSecret == "" {
			bad("FORDCONNECT_CLIENT_ID", "FORD_BACKEND=%s needs FORDCONNECT_CLIENT_ID and FORDCONNECT_CLIENT_SECRET: the client id and secret of your app at developer.ford.com (README, \"FordConnect\")", c.Backend)
		}
		if msg := checkRedirect(c.FordConnect.RedirectURL); msg != "" {
			bad("FORDCONNECT_REDIRECT_URL", "%s", msg)
		}
	default:
		bad("FORD_BACKEND", "%q is not fordpass, fordconnect or both", e.FordBackend)
	}
	if c.Accounts[0].Name != "" && c.Backend != BackendFordPass {
		bad("FORD_ACCOUNTS", "takes FORD_BACKEND=fordpass: FordConnect's consents are one app's, served by one account (unset FORD_ACCOUNTS or use one bridge per account)")
	}
	if c.PollInterval, err = time.ParseDuration(strings.TrimSpace(e.FordPollInterval)); err != nil {
		bad("FORD_POLL_INTERVAL", "%q is not a duration such as 10m", e.FordPollInterval)
	} else if c.PollInterval <= 0 {
		bad("FORD_POLL_INTERVAL", "must be positive")
	} else if c.PollInterval < time.Minute && c.FordBaseURL == "" {
		bad("FORD_POLL_INTERVAL", "%s is under 1m; Ford locks accounts that poll that often", c.PollInterval)
	} else if c.PollInterval > 24*time.Hour {
		bad("FORD_POLL_INTERVAL", "%s is more than a day; the longest useful interval is 24h", c.PollInterval)
	}
	if c.DailyBudget, err = strconv.Atoi(strings.TrimSpace(e.FordDailyBudget)); err != nil {
		bad("FORD_DAILY_CALL_BUDGET", "%q is not a whole number", e.FordDailyBudget)
	} else if c.DailyBudget < 10 {
		bad("FORD_DAILY_CALL_BUDGET", "%d leaves no room for a sign-in and a command; use at least 10", c.DailyBudget)
	} else if c.DailyBudget > 5000 && c.FordBaseURL == "" {
		// Against the simulator (FORD_BASE_URL) a load test may need more.
		bad("FORD_DAILY_CALL_BUDGET", "%d is far beyond the about 250 calls a day at which Ford locks accounts; at most 5000", c.DailyBudget)
	}
	for _, v := range strings.Split(e.CommandsAllowed, ",") {
		v = strings.ToLower(strings.TrimSpace(v))
		switch {
		case v == "":
		case v == AllCommands:
			for _, name := range commands {
				if !slices.Contains(c.CommandsAllowed, name) {
					c.CommandsAllowed = append(c.CommandsAllowed, name)
				}
			}
		case !slices.Contains(commands, v):
			bad("COMMANDS_ALLOWED", "%q is not all or one of %s", v, strings.Join(commands, ", "))
		case !slices.Contains(c.CommandsAllowed, v):
			c.CommandsAllowed = append(c.CommandsAllowed, v)
		}
	}
	if strings.TrimSpace(c.StateDir) == "" {
		bad("STATE_DIR", "must not be empty")
	}
	if c.HTTPAddr != "" {
		if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			bad("HTTP_ADDR", "%q is not host:port such as :8080", c.HTTPAddr)
		} else if port != "0" && badPort(port) {
			bad("HTTP_ADDR", "port %q is not a number from 1 to 65535", port)
		}
	}
	if c.HTTPPublicURL != "" {
		if u, err := url.Parse(c.HTTPPublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("HTTP_PUBLIC_URL", "%q is not an http(s) URL such as http://nas.local:8080/", c.HTTPPublicURL)
		}
	}
	for _, h := range strings.Split(e.HTTPAllowedHosts, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		if strings.ContainsAny(h, "/: @") {
			bad("HTTP_ALLOWED_HOSTS", "%q is not a bare host name such as nas.local (no scheme, port or path)", h)
			continue
		}
		c.HTTPAllowedHosts = append(c.HTTPAllowedHosts, h)
	}
	if (c.HTTPUsername == "") != (c.HTTPPassword == "") {
		bad("HTTP_USERNAME", "HTTP_USERNAME and HTTP_PASSWORD go together; set both or neither")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("LOG_LEVEL", "%q is not debug, info, warn or error", e.LogLevel)
	}
	if c.LogFormat != "console" && c.LogFormat != "json" {
		bad("LOG_FORMAT", "%q is not console or json", e.LogFormat)
	}
	return c, errors.Join(errs...)
}

// accounts reads FORD_ACCOUNTS with each account's FORD_REGION_<NAME> and
// FORD_VINS_<NAME> (FORD_REGION and FORD_VINS when unset); unset, the one
// account is FORD_REGION's and FORD_VINS's, named "".
func (e env) accounts(c Config, bad func(name, format string, args ...any)) []Account {
	if strings.TrimSpace(e.FordAccounts) == "" {
		for k := range e.perAccount {
			bad(k, "is set, but FORD_ACCOUNTS is not: name the accounts in FORD_ACCOUNTS, or use FORD_REGION and FORD_VINS for the one account")
		}
		return []Account{{Region: c.Region, VINs: c.VINs}}
	}
	if len(c.VINs) > 0 {
		bad("FORD_VINS", "with FORD_ACCOUNTS each account takes its own FORD_VINS_<NAME>")
	}
	var out []Account
	owner := map[string]string{} // VIN → account
	for _, name := range strings.Split(e.FordAccounts, ",") {
		name = strings.TrimSpace(name)
		up := strings.ToUpper(name)
		switch {
		case name == "":
			bad("FORD_ACCOUNTS", "%q has an empty name", e.FordAccounts)
			continue
		case strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" || len(name) > 32:
			bad("FORD_ACCOUNTS", "%q is not a name of letters, digits and _ (at most 32)", name)
			continue
		case slices.Contains(mqttapi.ReservedAccountNames, strings.ToLower(name)):
			bad("FORD_ACCOUNTS", "%q is taken by a topic of its own (P/auth/%s/…); pick another name", name, name)
			continue
		case slices.ContainsFunc(out, func(a Account) bool { return strings.EqualFold(a.Name, name) }):
			bad("FORD_ACCOUNTS", "%q is named twice (names are told apart regardless of case: FORD_REGION_%s serves both)", name, up)
			continue
		}
		a := Account{Name: name, Region: c.Region}
		if v, ok := e.perAccount["FORD_REGION_"+up]; ok && strings.TrimSpace(v) != "" {
			r, err := fordapi.LookupRegion(v)
			if err != nil {
				bad("FORD_REGION_"+up, "%v", err)
			}
			a.Region = r
		}
		for _, v := range strings.Split(e.perAccount["FORD_VINS_"+up], ",") {
			v = strings.ToUpper(strings.TrimSpace(v))
			switch {
			case v == "":
			case !mqttapi.IsVIN(v):
				bad("FORD_VINS_"+up, "%q is not a VIN (17 letters and digits, without I, O and Q)", v)
			case owner[v] != "" && owner[v] != name:
				bad("FORD_VINS_"+up, "%s is bridged by account %s already; a car belongs to one account", v, owner[v])
			case !slices.Contains(a.VINs, v):
				owner[v] = name
				a.VINs = append(a.VINs, v)
			}
		}
		out = append(out, a)
	}
	for k := range e.perAccount {
		name, _ := strings.CutPrefix(k, "FORD_REGION_")
		name, _ = strings.CutPrefix(name, "FORD_VINS_")
		if !slices.ContainsFunc(out, func(a Account) bool { return strings.ToUpper(a.Name) == name }) {
			bad(k, "names no account of FORD_ACCOUNTS (%s)", e.FordAccounts)
		}
	}
	if len(out) > maxAccounts {
		bad("FORD_ACCOUNTS", "names %d accounts; at most %d", len(out), maxAccounts)
	}
	if len(out) == 0 {
		return []Account{{Region: c.Region}}
	}
	return out
}

// checkRedirect says what is wrong with FORDCONNECT_REDIRECT_URL ("" if
// nothing): Ford registers only localhost or public addresses
// (ha-fordconnect-query's REGISTER_APPLICATION.md: a private IP is
// refused).
func checkRedirect(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Sprintf("%q is not an http(s) URL such as http://localhost:8080/fordconnect/callback", raw)
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && !ip.IsLoopback() && (ip.IsPrivate() || ip.IsLinkLocalUnicast()) {
		return fmt.Sprintf("%q is a private address, which Ford does not register; use localhost (and paste the address the browser lands on) or a public address", raw)
	}
	return ""
}

// brokerSchemes are the schemes MQTT_URL accepts; mqtt:// and mqtts:// are
// aliases of tcp:// and ssl://, as many tools write them.
var brokerSchemes = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}

// checkBrokerURL says what is wrong with MQTT_URL ("" if nothing).
func checkBrokerURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque != ""):
		return fmt.Sprintf("%q is not a broker URL such as tcp://localhost:1883", raw)
	case !slices.Contains(brokerSchemes, u.Scheme):
		return fmt.Sprintf("scheme %q is not one of %s", u.Scheme, strings.Join(brokerSchemes, ", "))
	case u.Hostname() == "":
		return fmt.Sprintf("%q has no host; write e.g. %s://localhost:1883 (in Docker Compose, the broker's service name)", raw, u.Scheme)
	case badPort(u.Port()) && u.Port() != "":
		return fmt.Sprintf("port %q is not a number from 1 to 65535", u.Port())
	case strings.HasSuffix(u.Host, ":"):
		return fmt.Sprintf("%q has an empty port; leave the colon out for the default (1883, or 8883 for TLS)", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q has a query or fragment, which a broker URL never has", raw)
	case (u.Scheme != "ws" && u.Scheme != "wss") && strings.Trim(u.Path, "/") != "":
		return fmt.Sprintf("%q has a path; only ws:// and wss:// URLs have one", raw)
	case u.User != nil:
		return "credentials go in MQTT_USERNAME and MQTT_PASSWORD, not in the URL"
	}
	return ""
}

// badPort reports whether p is not a TCP port number.
func badPort(p string) bool {
	if p == "" {
		return false
	}
	n, err := strconv.Atoi(p)
	return err != nil || n < 1 || n > 65535
}

// PrintEnvHelp writes the table of environment variables and defaults.
func PrintEnvHelp(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	// From the tags envconfig reads, rather than with its Usagef: its
	// text/template calls methods by name, so a binary that links it keeps
	// every exported method (with html/template, 1.9 MB; issue 36).
	for tag := range envTags {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", tag.Get("envconfig"), tag.Get("default"), tag.Get("desc"))
	}
	return tw.Flush()
}

// envTags yields the struct tag of every environment variable the bridge
// reads, in the order of env.
func envTags(yield func(reflect.StructTag) bool) {
	t := reflect.TypeOf(env{})
	for i := range t.NumField() {
		if tag := t.Field(i).Tag; tag.Get("envconfig") != "" && !yield(tag) {
			return
		}
	}
}

// EnvVars lists every environment variable the bridge reads.
func EnvVars() []string {
	var out []string
	for tag := range envTags {
		out = append(out, tag.Get("envconfig"))
	}
	return out
}

// Default is the default of an environment variable ("" for none or an
// unknown name).
func Default(name string) string {
	for tag := range envTags {
		if tag.Get("envconfig") == name {
			return tag.Get("default")
		}
	}
	return ""
}

// Service is the name of the Ford service the bridge signs in to, for
// the words users read.
func (c Config) Service() string {
	if c.Backend == BackendFordConnect {
		return "FordConnect"
	}
	return "FordPass"
}

// Allowed reports whether a command is on the allow-list.
// FordConnect Query has no commands: none is allowed with it.
func (c Config) Allowed(cmd string) bool {
	return c.Backend != BackendFordConnect && slices.Contains(c.CommandsAllowed, cmd)
}
