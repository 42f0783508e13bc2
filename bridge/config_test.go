package bridge

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// defaults is the environment with nothing set.
func defaults() env {
	return env{MQTTURL: "tcp://localhost:1883", MQTTClientID: "fordpass2mqtt", TopicPrefix: "fordpass", HADiscovery: "true",
		HADiscoveryPrefix: "homeassistant", FordRegion: "usa", FordStream: "true", FordPollInterval: "10m",
		FordDailyBudget: "250", CommandsAllowed: "lock,unlock,start,stop,refresh,horn", StateDir: "./data",
		HTTPAddr: ":8080", LogLevel: "info", LogFormat: "console"}
}

func TestDefaultsAreValid(t *testing.T) {
	c, err := defaults().validate()
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
			_, err := e.validate()
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
		if _, err := e.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	for _, ok := range []string{"mqtt://broker", "mqtts://broker", "tls://broker:8883", "ws://broker:9001/mqtt", "wss://broker/mqtt", "tcp://[::1]:1883"} {
		e := defaults()
		e.MQTTURL = ok
		if _, err := e.validate(); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

func TestFastPollAllowedAgainstSimulator(t *testing.T) {
	e := defaults()
	e.FordPollInterval, e.FordBaseURL, e.FordDailyBudget = "5s", "http://127.0.0.1:9000", "10000000" // a load test against the simulator
	e.FordVINs = " 1ftew1ep000000001 , 1FTEW1EP000000001,"
	c, err := e.validate()
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
	c, err := LoadConfig()
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

func TestParseCommand(t *testing.T) {
	good := map[string]CommandRequest{
		"lock":                               {Command: "lock"},
		" UnLock \n":                         {Command: "unlock"},
		`"start"`:                            {Command: "start"},
		`{"command":"stop","id":"x-1"}`:      {Command: "stop", ID: "x-1"},
		`{"command":"horn","transaction":7}`: {Command: "horn", ID: "7"},
	}
	for in, want := range good {
		got, err := ParseCommand([]byte(in))
		if err != nil || got.Command != want.Command || got.ID != want.ID {
			t.Errorf("ParseCommand(%q) = %+v, %v", in, got, err)
		}
	}
	// Each bad payload is refused with words that say what is wrong with it.
	for in, want := range map[string]string{
		"":                                      "empty payload",
		"{}":                                    `without "command"`,
		`["lock"]`:                              "a JSON array is not a command",
		`{"command":"lock","id":{}}`:            `"id" must be a string`,
		"\xff\xfe":                              "not UTF-8",
		"open sesame":                           `unknown command "open sesame"`,
		strings.Repeat("a", 5000):               "payload is 5000 bytes",
		`{"command":"lock","command":"unlock"}`: `"command" appears twice`,
		`{"command":5}`:                         `"command" is a number`,
		`{"command":"lock"`:                     "malformed JSON",
		`{"command":"lock","id":"` + strings.Repeat("x", 201) + `"}`: "longer than 200",
	} {
		_, err := ParseCommand([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCommand(%.40q) = %v, want an error saying %q", in, err, want)
		}
	}
}

// TestParseCommandNamesWhatIsWrong: the precise reason, never the payload
// echoed back as an unknown command.
func TestParseCommandNamesWhatIsWrong(t *testing.T) {
	for in, want := range map[string]string{
		`{"command":"lock","command":"unlock"}`:     `the key "command" appears twice`,
		`{"id":"a","command":"lock","id":"b"}`:      `the key "id" appears twice`,
		`{"command":null}`:                          `"command" is null; it must be a string`,
		`{"command":7}`:                             `"command" is a number`,
		`{"command":true}`:                          `"command" is a boolean`,
		`{"command":{"lock":1}}`:                    `"command" is an object`,
		`{"command":["lock"]}`:                      `"command" is a list`,
		`{"command":"fly"}`:                         `unknown command "fly"`,
		`{"command":"lock","nested":{"a":1,"a":2}}`: `the key "nested.a" appears twice`, // at any depth
		`{"command":"start","id":"c1","climate":{"temperature":21,"temperature":30}}`: `the key "climate.temperature" appears twice`,
		`{"command":"start","climate":{"seats":[{"x":1,"x":2}]}}`:                     `the key "climate.seats[0].x" appears twice`,
		`{"command":"lock","id":"x","transaction":"y"}`:                               "",
	} {
		req, err := ParseCommand([]byte(in))
		if strings.Contains(in, `"id":"c1"`) && req.ID != "c1" {
			t.Errorf("ParseCommand(%s): the id %q is lost; the result could not be matched", in, req.ID)
		}
		switch {
		case want == "" && err != nil:
			t.Errorf("ParseCommand(%s): %v", in, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("ParseCommand(%s) = %v, want %q", in, err, want)
		case err != nil && strings.Contains(err.Error(), in):
			t.Errorf("ParseCommand(%s) echoes the payload: %v", in, err)
		}
	}
}

// TestRejectedCommandKeepsTheCallersID: whenever the payload's id can be
// read, the rejection carries it, so a flow waiting for its id gets its
// answer; an id given twice is no id (which one was meant is unknown).
func TestRejectedCommandKeepsTheCallersID(t *testing.T) {
	for in, want := range map[string]string{
		`{"command":"lock","command":"unlock","id":"flow-7"}`: "flow-7",
		`{"id":"flow-8","command":"fly"}`:                     "flow-8",
		`{"transaction":"flow-9"}`:                            "flow-9",
		`{"id":42,"command":"lock","horn":1,"horn":2}`:        "42",
		`{"id":"a","command":"lock","id":"b"}`:                "",
	} {
		req, err := ParseCommand([]byte(in))
		if err == nil || req.ID != want {
			t.Errorf("ParseCommand(%s): id %q, error %v; want id %q and an error", in, req.ID, err, want)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"lock", `{"command":"lock","id":"1"}`, `{"transaction":"x"}`, `"horn"`, `[`, "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseCommand(data)
		if err == nil {
			if specOf(req.Command) == nil {
				t.Fatalf("accepted unknown command %q", req.Command)
			}
		}
		if len(req.ID) > 200 {
			t.Fatalf("id of %d bytes", len(req.ID))
		}
	})
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

// TestCommandsAllowedDefaultIsTheTable: the default allow-list is every
// command of the one command table.
func TestCommandsAllowedDefaultIsTheTable(t *testing.T) {
	f, _ := reflect.TypeOf(env{}).FieldByName("CommandsAllowed")
	if got, want := f.Tag.Get("default"), strings.Join(commandNames, ","); got != want {
		t.Fatalf("COMMANDS_ALLOWED defaults to %q; the command table has %q", got, want)
	}
}

// TestCommandOptions: a command's other keys are checked by its row: the
// horn takes a duration of 1, 3 or 5 s (3 unless given), and a key the
// command does not take is refused, naming it and what the command takes
// ({"command":"lock","state":"on"} would lock while the flow meant
// something else).
func TestCommandOptions(t *testing.T) {
	for in, want := range map[string]any{
		"horn":                              3,
		`{"command":"horn","duration":5}`:   5,
		`{"command":"horn","duration":1}`:   1,
		`{"command":"horn","duration":7}`:   "must be 1, 3 or 5",
		`{"command":"horn","duration":"3"}`: "must be 1, 3 or 5",
		`{"command":"horn","volume":11}`:    `horn does not take "volume"; it takes duration`,
		`{"command":"lock","duration":5}`:   `lock does not take "duration"; it takes no options`,
		`{"command":"lock","state":"on"}`:   `lock does not take "state"`,
		`{"command":"unlock","a":1,"b":2}`:  `unlock does not take "a", "b"`,
		`{"command":"unlock","id":"x"}`:     nil,
	} {
		req, err := ParseCommand([]byte(in))
		switch w := want.(type) {
		case int:
			if err != nil || req.props["duration"] != w {
				t.Errorf("ParseCommand(%s): %v, %v; want the duration %d", in, req.props, err, w)
			}
		case string:
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("ParseCommand(%s) = %v, want an error saying %q", in, err, w)
			}
		case nil:
			if err != nil || req.props != nil {
				t.Errorf("ParseCommand(%s) = %v, %v; want no properties", in, req.props, err)
			}
		}
	}
}
