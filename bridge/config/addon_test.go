package config

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// supervisor is a stand-in for Home Assistant's Supervisor API (the real
// one cannot run here): the MQTT service and the add-on's own info.
func supervisor(t *testing.T, mqtt map[string]any, self map[string]any) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer test-token" {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"result": "error", "message": "unauthorized"})
			return
		}
		switch r.URL.Path {
		case "/services/mqtt":
			if mqtt == nil {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]any{"result": "error", "message": "No mqtt service available"})
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"result": "ok", "data": mqtt})
		case "/addons/self/info":
			_ = json.NewEncoder(w).Encode(map[string]any{"result": "ok", "data": self})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// addonEnv sets the environment the Supervisor gives an add-on, with
// options.json in a fresh STATE_DIR.
func addonEnv(t *testing.T, supervisorURL string, options string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "options.json"), []byte(options), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SUPERVISOR_TOKEN", "test-token")
	t.Setenv("SUPERVISOR_URL", supervisorURL)
	t.Setenv("STATE_DIR", dir)
	return dir
}

func TestAddonModeTakesOptionsAndTheSupervisorsBroker(t *testing.T) {
	url := supervisor(t, map[string]any{"host": "core-mosquitto", "port": 1883, "ssl": false, "protocol": "3.1.1",
		"username": "addons", "password": "secret"}, map[string]any{"slug": "a0d7b954_fordpass2mqtt", "ingress": true,
		"network": map[string]any{"8080/tcp": nil}})
	addonEnv(t, url, `{"ford_region":"deu","ford_vins":[],"commands_allowed":["lock","unlock"],"ford_daily_call_budget":200,
		"log_level":"debug","mqtt_topic_prefix":"ford","ha_discovery_prefix":"homeassistant","ford_stream":false}`)
	t.Setenv("LOG_LEVEL", "warn") // an environment variable wins over the option
	cfg, err := Load(commands)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTTURL != "tcp://core-mosquitto:1883" || cfg.MQTTUsername != "addons" || cfg.MQTTPassword != "secret" {
		t.Errorf("broker %q as %q", cfg.MQTTURL, cfg.MQTTUsername)
	}
	if cfg.Region.Key != "deu" || cfg.DailyBudget != 200 || cfg.Allowed("start") || !cfg.Allowed("unlock") || cfg.TopicPrefix != "ford" || cfg.Stream {
		t.Errorf("options not applied: %+v", cfg)
	}
	if cfg.LogLevel != "warn" {
		t.Errorf("LOG_LEVEL=warn must win over the option, got %q", cfg.LogLevel)
	}
	if !cfg.Addon || !cfg.IngressOnly || cfg.HTTPPublicURL != "homeassistant://hassio/ingress/a0d7b954_fordpass2mqtt" {
		t.Errorf("add-on mode: addon %v, ingress only %v, visit link %q", cfg.Addon, cfg.IngressOnly, cfg.HTTPPublicURL)
	}
}

// TestAddonAccounts: the ford_accounts option is FORD_ACCOUNTS with each
// account's region and VINs; a bad entry is an error naming the option.
func TestAddonAccounts(t *testing.T) {
	url := supervisor(t, map[string]any{"host": "core-mosquitto", "port": 1883}, map[string]any{"slug": "x_fordpass2mqtt"})
	addonEnv(t, url, `{"ford_region":"usa","ford_accounts":[{"name":"home"},{"name":"work","region":"deu","vins":"3FMTK3SU000000002"}]}`)
	cfg, err := Load(commands)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != 2 || cfg.Accounts[0].Name != "home" || cfg.Accounts[0].Region.Key != "usa" ||
		cfg.Accounts[1].Region.Key != "deu" || !slices.Equal(cfg.Accounts[1].VINs, []string{"3FMTK3SU000000002"}) {
		t.Fatalf("accounts = %+v", cfg.Accounts)
	}
	for options, want := range map[string]string{
		`{"ford_accounts":[{"name":"home","colour":"red"}]}`: `"colour" is not name, region or vins`,
		`{"ford_accounts":["home"]}`:                         "item 1 is not an account",
		`{"ford_accounts":{"name":"home"}}`:                  "is a list of accounts",
	} {
		addonEnv(t, url, options)
		if _, err := Load(commands); err == nil || !strings.Contains(err.Error(), "option ford_accounts: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", options, err, want)
		}
	}
}

func TestAddonModeOpenPortAllowsDirectRequests(t *testing.T) {
	url := supervisor(t, map[string]any{"host": "core-mosquitto", "port": 8883, "ssl": true},
		map[string]any{"slug": "x_fordpass2mqtt", "network": map[string]any{"8080/tcp": 8080}})
	addonEnv(t, url, `{}`)
	cfg, err := Load(commands)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IngressOnly || cfg.MQTTURL != "ssl://core-mosquitto:8883" {
		t.Errorf("ingress only %v with the port opened; broker %q", cfg.IngressOnly, cfg.MQTTURL)
	}
}

func TestAddonModeReportsBadOptionsAndAMissingBroker(t *testing.T) {
	url := supervisor(t, nil, map[string]any{})
	addonEnv(t, url, `{"ford_region":"mars","colour":"blue","ford_daily_call_budget":{"a":1}}`)
	_, err := Load(commands)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"FORD_REGION:", "option colour: is not a setting", "option ford_daily_call_budget:", "Mosquitto broker add-on"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if !errors.As(err, new(*Error)) {
		t.Errorf("not a config error: %v", err)
	}
}

// TestAddonModeBadOptionsFileAndBrokerAnswers: each broken options.json and
// each unusable Supervisor answer is a configuration error that says what
// is wrong, never a panic or a silent default.
func TestAddonModeBadOptionsFileAndBrokerAnswers(t *testing.T) {
	broker := map[string]any{"host": "core-mosquitto", "port": 1883}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway</html>"))
	}))
	t.Cleanup(down.Close)
	for _, tc := range []struct {
		name, supervisorURL, options, want string
	}{
		{"options not JSON", supervisor(t, broker, nil), `ford_region: deu`, "options.json: "},
		{"options a list", supervisor(t, broker, nil), `["deu"]`, "is not a JSON object"},
		{"a list of lists", supervisor(t, broker, nil), `{"commands_allowed":[["lock"]]}`, "option commands_allowed: is a list of lists"},
		{"broker without a port", supervisor(t, map[string]any{"host": "core-mosquitto"}, nil), `{}`, "names no host and port"},
		{"Supervisor down", down.URL, `{}`, "cannot ask the Supervisor for the MQTT broker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addonEnv(t, tc.supervisorURL, tc.options)
			_, err := Load(commands)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, new(*Error)) {
				t.Errorf("Load(commands) = %v, want a config error containing %q", err, tc.want)
			}
		})
	}
}
