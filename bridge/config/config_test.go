package config

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// commands stand for the bridge's command table.
var commands = []string{"lock", "unlock", "start", "stop", "refresh", "horn"}

// defaults is the environment with nothing set.
func defaults() env {
	return env{MQTTURL: "tcp://localhost:1883", MQTTClientID: "fordpass2mqtt", TopicPrefix: "fordpass", HADiscovery: "true",
		HADiscoveryPrefix: "homeassistant", FordRegion: "usa", FordStream: "true", ClimateDefault: "false", FordPollInterval: "10m",
		FordDailyBudget: "250", CommandsAllowed: Default("COMMANDS_ALLOWED"), StateDir: "./data",
		HTTPAddr: ":8080", LogLevel: "info", LogFormat: "console"}
}

func TestDefaultsAreValid(t *testing.T) {
	c, err := defaults().validate(commands)
	if err != nil {
		t.Fatal(err)
	}
	if c.PollInterval != 10*time.Minute || c.DailyBudget != 250 || !c.Stream || !c.HADiscovery || c.Region.Key != "usa" ||
		len(c.CommandsAllowed) != 6 || len(c.VINs) != 0 {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestBadConfigs(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*env)
		want []string // every variable that must be named
	}{
		{"broker url", func(e *env) { e.MQTTURL = "localhost" }, []string{"MQTT_URL"}},
		{"broker scheme", func(e *env) { e.MQTTURL = "http://x:1" }, []string{"MQTT_URL"}},
		{"broker port too big", func(e *env) { e.MQTTURL = "tcp://host:99999" }, []string{"MQTT_URL"}},
		{"broker port not a number", func(e *env) { e.MQTTURL = "tcp://host:mqtt" }, []string{"MQTT_URL"}},
		{"broker without host", func(e *env) { e.MQTTURL = "tcp://:1883" }, []string{"MQTT_URL"}},
		{"broker with a path", func(e *env) { e.MQTTURL = "tcp://host:1883/mqtt" }, []string{"MQTT_URL"}},
		{"broker with a query", func(e *env) { e.MQTTURL = "ssl://host:8883?x=1" }, []string{"MQTT_URL"}},
		{"broker with credentials", func(e *env) { e.MQTTURL = "tcp://u:p@host:1883" }, []string{"MQTT_URL"}},
		{"client id too long", func(e *env) { e.MQTTClientID = strings.Repeat("x", 70000) }, []string{"MQTT_CLIENT_ID"}},
		{"client id empty", func(e *env) { e.MQTTClientID = "  " }, []string{"MQTT_CLIENT_ID"}},
		{"key without cert", func(e *env) { e.MQTTKeyFile = "/etc/hostname" }, []string{"MQTT_KEY_FILE"}},
		{"base url with a path", func(e *env) { e.FordBaseURL = "http://127.0.0.1:9000/api" }, []string{"FORD_BASE_URL"}},
		{"base url with a query", func(e *env) { e.FordBaseURL = "http://127.0.0.1:9000?x=1" }, []string{"FORD_BASE_URL"}},
		{"base url port", func(e *env) { e.FordBaseURL = "http://127.0.0.1:70000" }, []string{"FORD_BASE_URL"}},
		{"poll too slow", func(e *env) { e.FordPollInterval = "1000000h" }, []string{"FORD_POLL_INTERVAL"}},
		{"budget huge", func(e *env) { e.FordDailyBudget = "100000" }, []string{"FORD_DAILY_CALL_BUDGET"}},
		{"http port", func(e *env) { e.HTTPAddr = ":99999" }, []string{"HTTP_ADDR"}},
		{"missing CA", func(e *env) { e.MQTTCAFile = "/nonexistent/ca.pem" }, []string{"MQTT_CA_FILE"}},
		{"cert without key", func(e *env) { e.MQTTCertFile = "/etc/hostname" }, []string{"MQTT_CERT_FILE"}},
		{"wildcard prefix", func(e *env) { e.TopicPrefix = "ford/#" }, []string{"MQTT_TOPIC_PREFIX"}},
		{"discovery bool", func(e *env) { e.HADiscovery = "yes please" }, []string{"HA_DISCOVERY"}},
		{"region", func(e *env) { e.FordRegion = "mars" }, []string{"FORD_REGION"}},
		{"vin", func(e *env) { e.FordVINs = "1FTEW1EP000000001,NOTAVIN" }, []string{"FORD_VINS"}},
		{"vin with O", func(e *env) { e.FordVINs = "1FTEW1EPO00000001" }, []string{"FORD_VINS"}},
		{"poll syntax", func(e *env) { e.FordPollInterval = "ten minutes" }, []string{"FORD_POLL_INTERVAL"}},
		{"poll too fast", func(e *env) { e.FordPollInterval = "30s" }, []string{"FORD_POLL_INTERVAL"}},
		{"poll negative", func(e *env) { e.FordPollInterval = "-5m" }, []string{"FORD_POLL_INTERVAL"}},
		{"budget type", func(e *env) { e.FordDailyBudget = "lots" }, []string{"FORD_DAILY_CALL_BUDGET"}},
		{"budget small", func(e *env) { e.FordDailyBudget = "3" }, []string{"FORD_DAILY_CALL_BUDGET"}},
		{"base url", func(e *env) { e.FordBaseURL = "ftp://sim" }, []string{"FORD_BASE_URL"}},
		{"stream", func(e *env) { e.FordStream = "maybe" }, []string{"FORD_STREAM"}},
		{"command", func(e *env) { e.CommandsAllowed = "lock,selfdestruct" }, []string{"COMMANDS_ALLOWED"}},
		{"state dir", func(e *env) { e.StateDir = " " }, []string{"STATE_DIR"}},
		{"http addr", func(e *env) { e.HTTPAddr = "8080" }, []string{"HTTP_ADDR"}},
		{"public url", func(e *env) { e.HTTPPublicURL = "nas.local:8080" }, []string{"HTTP_PUBLIC_URL"}},
		{"log level", func(e *env) { e.LogLevel = "verbose" }, []string{"LOG_LEVEL"}},
		{"backend", func(e *env) { e.FordBackend = "tesla" }, []string{"FORD_BACKEND"}},
		{"both without FordConnect's app", func(e *env) { e.FordBackend = "both" }, []string{"FORDCONNECT_CLIENT_ID"}},
		{"fordconnect without its app", func(e *env) { e.FordBackend = "fordconnect" }, []string{"FORDCONNECT_CLIENT_ID"}},
		{"fordconnect to a private address", func(e *env) {
			e.FordBackend, e.FconClientID, e.FconClientSecret, e.FconRedirectURL = "fordconnect", "id", "secret", "http://192.168.1.20:8080/fordconnect/callback"
		}, []string{"FORDCONNECT_REDIRECT_URL"}},
		{"fordconnect redirect not a URL", func(e *env) {
			e.FordBackend, e.FconClientID, e.FconClientSecret, e.FconRedirectURL = "fordconnect", "id", "secret", "localhost:8080"
		}, []string{"FORDCONNECT_REDIRECT_URL"}},
		{"log format", func(e *env) { e.LogFormat = "xml" }, []string{"LOG_FORMAT"}},
		{"every problem at once", func(e *env) {
			e.MQTTURL, e.FordRegion, e.FordPollInterval, e.LogLevel = "::", "xx", "1s", "loud"
		}, []string{"MQTT_URL", "FORD_REGION", "FORD_POLL_INTERVAL", "LOG_LEVEL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := defaults()
			tc.mod(&e)
			_, err := e.validate(commands)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, v := range tc.want {
				if !strings.Contains(err.Error(), v+":") {
					t.Errorf("error does not name %s: %v", v, err)
				}
			}
			if lines := strings.Count(err.Error(), "\n") + 1; lines != len(tc.want) {
				t.Errorf("%d problems reported, want %d: %v", lines, len(tc.want), err)
			}
		})
	}
}

// TestConfigMessagesArePrecise: each case is named for what it is.
func TestConfigMessagesArePrecise(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*env)
		want string
	}{
		{func(e *env) { e.MQTTURL = "tcp://host:99999" }, `port "99999" is not a number from 1 to 65535`},
		{func(e *env) { e.MQTTURL = "tcp://:1883" }, "has no host"},
		{func(e *env) { e.MQTTURL = "gopher://host" }, "tcp, mqtt, ssl, tls, mqtts, ws, wss"},
		{func(e *env) { e.MQTTClientID = strings.Repeat("x", 70000) }, "is 70000 bytes; MQTT allows at most 65535"},
		{func(e *env) { e.MQTTKeyFile = "/etc/hostname" }, "MQTT_KEY_FILE: is set without MQTT_CERT_FILE"},
		{func(e *env) { e.FordBaseURL = "http://sim:9000/api" }, "must be an origin only"},
		{func(e *env) { e.FordPollInterval = "1000000h" }, "is more than a day"},
	} {
		e := defaults()
		tc.mod(&e)
		if _, err := e.validate(commands); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	for _, ok := range []string{"mqtt://broker", "mqtts://broker", "tls://broker:8883", "ws://broker:9001/mqtt", "wss://broker/mqtt", "tcp://[::1]:1883"} {
		e := defaults()
		e.MQTTURL = ok
		if _, err := e.validate(commands); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

func TestFastPollAllowedAgainstSimulator(t *testing.T) {
	e := defaults()
	e.FordPollInterval, e.FordBaseURL, e.FordDailyBudget = "5s", "http://127.0.0.1:9000", "10000000" // a load test against the simulator
	e.FordVINs = " 1ftew1ep000000001 , 1FTEW1EP000000001,"
	c, err := e.validate(commands)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.VINs, []string{"1FTEW1EP000000001"}) {
		t.Fatalf("VINs = %v", c.VINs)
	}
}

func TestLoadConfigReadsEnvironment(t *testing.T) {
	t.Setenv("FORD_REGION", "deu")
	t.Setenv("FORD_DAILY_CALL_BUDGET", "400")
	t.Setenv("COMMANDS_ALLOWED", "lock")
	c, err := Load(commands)
	if err != nil {
		t.Fatal(err)
	}
	if c.Region.Key != "deu" || c.DailyBudget != 400 || !c.Allowed("lock") || c.Allowed("unlock") {
		t.Fatalf("config = %+v", c)
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var buf bytes.Buffer
	if err := PrintEnvHelp(&buf); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(env{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Tag.Get("envconfig") == "" {
			continue // not a variable
		}
		line := ""
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.HasPrefix(l, f.Tag.Get("envconfig")+" ") {
				line = l
			}
		}
		if line == "" {
			t.Errorf("%s missing from --help", f.Tag.Get("envconfig"))
			continue
		}
		if d := f.Tag.Get("default"); d != "" && !strings.Contains(line, d) {
			t.Errorf("--help line for %s lacks its default %q: %s", f.Tag.Get("envconfig"), d, line)
		}
	}
}

// TestHelpMarksRegionsNobodyConfirmed keeps --help in step with the region
// table: every region not confirmed by a maintained integration is named.
func TestHelpMarksRegionsNobodyConfirmed(t *testing.T) {
	f, _ := reflect.TypeOf(env{}).FieldByName("FordRegion")
	desc := f.Tag.Get("desc")
	for _, group := range []struct {
		label    string
		statuses []string
	}{
		{"unconfirmed by any maintained integration: ", []string{fordapi.RegionUnconfirmed}},
		{"reported not working: ", []string{fordapi.RegionNotWorking}},
		{"local Ford account needed: ", []string{fordapi.RegionLocalAccount}},
	} {
		want := group.label + strings.Join(fordapi.RegionsWithStatus(group.statuses...), ", ")
		if !strings.Contains(desc, want) {
			t.Errorf("FORD_REGION's help lacks %q: %s", want, desc)
		}
	}
}

// TestAllCommandsMeansTheWholeTable: COMMANDS_ALLOWED=all (the default)
// allows every command the caller's table has, so a command a later
// version adds reaches users on the default; a list allows what it names,
// once each, in its order.
func TestAllCommandsMeansTheWholeTable(t *testing.T) {
	for in, want := range map[string][]string{
		"all":                commands,
		" ALL ":              commands,
		"unlock,lock,unlock": {"unlock", "lock"},
		"horn,all":           {"horn", "lock", "unlock", "start", "stop", "refresh"},
		"":                   nil,
	} {
		e := defaults()
		e.CommandsAllowed = in
		c, err := e.validate(commands)
		if err != nil || !slices.Equal(c.CommandsAllowed, want) {
			t.Errorf("COMMANDS_ALLOWED=%q: %v (%v), want %v", in, c.CommandsAllowed, err, want)
		}
	}
	if _, err := defaults().validate(append(commands, "guard_mode")); err != nil {
		t.Fatal(err)
	}
	if c, _ := defaults().validate(append(commands, "guard_mode")); !c.Allowed("guard_mode") {
		t.Errorf("a command the table gains is not allowed on the default")
	}
}

// TestAccounts: FORD_ACCOUNTS names the accounts, each with its region and
// VINs or FORD_REGION's; every mistake names its variable.
func TestAccounts(t *testing.T) {
	e := defaults()
	e.FordAccounts = " home , Work_2 "
	e.perAccount = map[string]string{"FORD_REGION_WORK_2": "deu", "FORD_VINS_HOME": "1ftew1ep000000001, 3FMTK3SU000000002"}
	c, err := e.validate(commands)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Accounts) != 2 || c.Accounts[0].Name != "home" || c.Accounts[0].Region.Key != "usa" ||
		!slices.Equal(c.Accounts[0].VINs, []string{"1FTEW1EP000000001", "3FMTK3SU000000002"}) ||
		c.Accounts[1].Name != "Work_2" || c.Accounts[1].Region.Key != "deu" || len(c.Accounts[1].VINs) != 0 {
		t.Fatalf("accounts = %+v", c.Accounts)
	}
	if dir := c.ForAccount(c.Accounts[1]).StateDir; dir != "data/Work_2" {
		t.Fatalf("work's STATE_DIR is %q", dir)
	}
	one, err := defaults().validate(commands)
	if err != nil || len(one.Accounts) != 1 || one.Accounts[0].Name != "" || one.ForAccount(one.Accounts[0]).StateDir != "./data" {
		t.Fatalf("without FORD_ACCOUNTS: %+v, %v", one.Accounts, err)
	}

	for _, tc := range []struct {
		accounts string
		vars     map[string]string
		mod      func(*env)
		name     string // the variable named
		want     string
	}{
		{accounts: "home,,work", name: "FORD_ACCOUNTS", want: "an empty name"},
		{accounts: "home,wo rk", name: "FORD_ACCOUNTS", want: "letters, digits and _"},
		{accounts: "home,../x", name: "FORD_ACCOUNTS", want: "letters, digits and _"},
		{accounts: "home,HOME", name: "FORD_ACCOUNTS", want: "named twice"},
		{accounts: "home,code", name: "FORD_ACCOUNTS", want: "taken by a topic"},
		{accounts: "fordpass", name: "FORD_ACCOUNTS", want: "taken by a topic"},
		{accounts: "a0,a1,a2,a3,a4,a5,a6,a7,a8,a9,a10,a11,a12,a13,a14,a15,a16", name: "FORD_ACCOUNTS", want: "at most 16"},
		{accounts: "home,work", vars: map[string]string{"FORD_REGION_WORK": "mars"}, name: "FORD_REGION_WORK"},
		{accounts: "home,work", vars: map[string]string{"FORD_VINS_WORK": "NOTAVIN"}, name: "FORD_VINS_WORK", want: "is not a VIN"},
		{accounts: "home,work", vars: map[string]string{"FORD_VINS_HOME": "1FTEW1EP000000001", "FORD_VINS_WORK": "1FTEW1EP000000001"},
			name: "FORD_VINS_", want: "a car belongs to one account"},
		{accounts: "home", vars: map[string]string{"FORD_VINS_GARAGE": "1FTEW1EP000000001"}, name: "FORD_VINS_GARAGE", want: "names no account"},
		{vars: map[string]string{"FORD_REGION_HOME": "deu"}, name: "FORD_REGION_HOME", want: "FORD_ACCOUNTS is not"},
		{accounts: "home", mod: func(e *env) { e.FordVINs = "1FTEW1EP000000001" }, name: "FORD_VINS", want: "FORD_VINS_<NAME>"},
		{accounts: "home", mod: func(e *env) {
			e.FordBackend, e.FconClientID, e.FconClientSecret = "both", "id", "secret"
		}, name: "FORD_ACCOUNTS", want: "takes FORD_BACKEND=fordpass"},
	} {
		e := defaults()
		e.FordAccounts, e.perAccount = tc.accounts, tc.vars
		if tc.mod != nil {
			tc.mod(&e)
		}
		_, err := e.validate(commands)
		if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FORD_ACCOUNTS=%q %v: got %v, want %s: …%s", tc.accounts, tc.vars, err, tc.name, tc.want)
		}
	}
}
