package bridge_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/broker"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// TestBrokerFailuresSayWhy starts the bridge against a closed port, with a
// wrong password, with TLS to a plain listener and with an untrusted
// certificate: each time the log names the cause (at warn, once however
// many retries), and /healthz and the metrics say it too.
func TestBrokerFailuresSayWhy(t *testing.T) {
	t.Parallel()
	auth, err := broker.StartWith(broker.Options{Addr: "127.0.0.1:0", Users: map[string]string{"fordpass": "right"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = auth.Close() })
	plain, err := broker.StartWith(broker.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	_, tlsCfg := testCA(t)
	secured, err := broker.StartWith(broker.Options{Addr: "127.0.0.1:0", TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = secured.Close() })
	cases := []struct {
		name, url, user, pass, words, cause string
	}{
		{"closed port", "tcp://" + bridgetest.FreeAddr(t), "", "", "connection refused", "refused"},
		{"wrong password", auth.URL(), "fordpass", "wrong", "not authorized", "not_authorized"},
		{"TLS to a plain listener", "ssl://" + plain.Addr(), "", "", "does not speak TLS", "tls_to_plain"},
		{"untrusted certificate", "ssl://" + secured.Addr(), "", "", "certificate is not trusted", "certificate_untrusted"},
		{"unknown host", "tcp://no-such-host.invalid:1883", "", "", "unknown host", "unknown_host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			region, _ := fordapi.LookupRegion("usa")
			cfg := config.Config{MQTTURL: tc.url, MQTTUsername: tc.user, MQTTPassword: tc.pass, MQTTClientID: "why" + bridgetest.Suffix(),
				TopicPrefix: "fpw" + bridgetest.Suffix(), Region: region, FordBaseURL: "http://127.0.0.1:1", PollInterval: time.Minute,
				DailyBudget: 250, StateDir: filepath.Join(t.TempDir(), "s"), CommandsAllowed: []string{"lock"}}
			c, _ := fordapi.New(fordapi.Config{Region: region, BaseURL: cfg.FordBaseURL, StateDir: t.TempDir()})
			core, logs := observer.New(zapcore.DebugLevel)
			b := bridge.New(cfg, c, bridge.Options{Logger: zap.New(core)})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- b.Run(ctx) }()
			defer func() { cancel(); <-done }()
			warned := func() []observer.LoggedEntry {
				return logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("cannot connect to the broker").All()
			}
			deadline := time.Now().Add(10 * time.Second)
			for len(warned()) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no warning naming the cause within 10 s; logs: %v", logs.All())
				}
				time.Sleep(20 * time.Millisecond)
			}
			w := warned()[0]
			if !strings.Contains(w.Message, tc.words) || w.ContextMap()["cause"] != tc.cause || w.ContextMap()["next_try"] == nil {
				t.Fatalf("warning %q %v; want %q (%s) and the next try", w.Message, w.ContextMap(), tc.words, tc.cause)
			}
			srv := httptestServer(t, b.HTTPHandler())
			resp, err := bridgetest.HTTP.Get(srv + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			if body := readAll(t, resp); resp.StatusCode != 503 || !strings.Contains(body, tc.words) {
				t.Errorf("/healthz: %d %q", resp.StatusCode, body)
			}
			resp, _ = bridgetest.HTTP.Get(srv + "/metrics")
			if body := readAll(t, resp); !strings.Contains(body, `fordpass_mqtt_connect_failures_total{cause="`+tc.cause+`"}`) {
				t.Errorf("metrics lack the cause %s", tc.cause)
			}
			// paho retries every 2 s: after two more tries, still one warning.
			time.Sleep(4500 * time.Millisecond)
			if n := len(warned()); n != 1 {
				t.Errorf("%d warnings for one cause; want it logged once", n)
			}
		})
	}
}
