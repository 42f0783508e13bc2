package bridge_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/broker"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/doctor"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

func check(t *testing.T, r bridge.Report, name string) bridge.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name || strings.HasPrefix(c.Name, name) {
			return c
		}
	}
	t.Fatalf("no %q check in %+v", name, r.Checks)
	return bridge.Check{}
}

func runDoctor(t *testing.T, cfg config.Config, live bool) bridge.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return doctor.Run(ctx, cfg, nil, doctor.Options{Live: live, Timeout: 2 * time.Second})
}

func TestDoctorHealthySetup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	cfg := e.cfg
	cfg.MQTTUsername = "x" // not the anonymous-broker warning; the broker accepts anyone
	cfg.DailyBudget = 250
	r := runDoctor(t, cfg, true)
	for _, c := range r.Checks {
		if c.Status != bridge.Pass {
			t.Errorf("%s: %s: %s (fix: %s)", c.Name, c.Status, c.Finding, c.Fix)
		}
	}
	if r.Failed() {
		t.Fatal("a healthy setup failed")
	}
	if c := check(t, r, "vehicle list"); !strings.Contains(c.Finding, vin1) || !strings.Contains(c.Finding, "Ford calls spent") {
		t.Errorf("vehicle list: %s", c.Finding)
	}
	if c := check(t, r, "other bridge"); !strings.Contains(c.Finding, "only this installation") {
		t.Errorf("other bridge: %s", c.Finding)
	}
	if c := check(t, r, "cars"); !strings.Contains(c.Finding, "has a channel to Ford") {
		t.Errorf("cars: %s", c.Finding)
	}
	// The report is retained for the sign-in page and for HA.
	raw := e.w.WaitFor(e.topic("bridge", "doctor"), 5*time.Second, func(s string) bool { return strings.Contains(s, "checks") })
	for _, secret := range []string{"simcat-", "simrefresh-", "simauto-", "simcode-", "simb2c-"} {
		if strings.Contains(raw, secret) {
			t.Fatalf("the doctor report leaks a secret (%s…)", secret)
		}
	}
	srv := httptestServer(t, e.bridge.HTTPHandler())
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := bridgetest.HTTP.Get(srv + "/")
		if err != nil {
			t.Fatal(err)
		}
		if page := readAll(t, resp); strings.Contains(page, "vehicle list") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sign-in page does not show the doctor's results")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The bridge keeps working with the token doctor --live rotated.
	e.patch(vin1, `{"metrics":{"odometer":{"value":777.7}}}`)
	e.w.WaitValue(e.topic(vin1, "odometer"), "777.7", 15*time.Second)
}

func TestDoctorRevokedRefreshToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.simPost("/_sim/revoke")
	r := runDoctor(t, e.cfg, true)
	c := check(t, r, "live token refresh")
	if c.Status != bridge.Fail || !strings.Contains(c.Fix, "sign in again") {
		t.Fatalf("live token check: %+v", c)
	}
	if !r.Failed() {
		t.Fatal("doctor passed with a dead refresh token")
	}
}

func TestDoctorBrokerProblems(t *testing.T) {
	t.Parallel()
	_, fordURL := bridgetest.Ford(t, fordsim.Options{})
	region, _ := fordapi.LookupRegion("usa")
	base := config.Config{MQTTClientID: "doc", TopicPrefix: "fpd" + bridgetest.Suffix(), Region: region, FordBaseURL: fordURL,
		Stream: true, PollInterval: time.Minute, DailyBudget: 250, StateDir: t.TempDir(), CommandsAllowed: []string{"lock"}}

	// Stopped broker.
	cfg := base
	cfg.MQTTURL = "tcp://" + bridgetest.FreeAddr(t)
	c := check(t, runDoctor(t, cfg, false), "broker")
	if c.Status != bridge.Fail || !strings.Contains(c.Finding, "cannot reach") || !strings.Contains(c.Fix, "start the broker") {
		t.Errorf("stopped broker: %+v", c)
	}

	// Wrong password.
	b, err := broker.StartWith(broker.Options{Addr: "127.0.0.1:0", Users: map[string]string{"fordpass": "right"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg = base
	cfg.MQTTURL, cfg.MQTTUsername, cfg.MQTTPassword = b.URL(), "fordpass", "wrong"
	c = check(t, runDoctor(t, cfg, false), "broker")
	if c.Status != bridge.Fail || !strings.Contains(c.Finding, "refused user") || !strings.Contains(c.Fix, "MQTT_PASSWORD") {
		t.Errorf("wrong password: %+v", c)
	}
	cfg.MQTTPassword = "right"
	if c = check(t, runDoctor(t, cfg, false), "broker"); c.Status != bridge.Pass {
		t.Errorf("right password: %+v", c)
	}

	// Untrusted certificate, then trusted with MQTT_CA_FILE.
	caFile, tlsCfg := testCA(t)
	tb, err := broker.StartWith(broker.Options{Addr: "127.0.0.1:0", TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	cfg = base
	cfg.MQTTURL = "ssl://" + tb.Addr()
	c = check(t, runDoctor(t, cfg, false), "broker")
	if c.Status != bridge.Fail || !strings.Contains(c.Finding, "not trusted") || !strings.Contains(c.Fix, "MQTT_CA_FILE") {
		t.Errorf("untrusted certificate: %+v", c)
	}
	cfg.MQTTCAFile = caFile
	if c = check(t, runDoctor(t, cfg, false), "broker"); c.Status != bridge.Pass {
		t.Errorf("trusted certificate: %+v", c)
	}
}

// TestBridgeVerifiesBrokerCertificate: the bridge itself refuses an
// untrusted broker and works once MQTT_CA_FILE names the CA.
func TestBridgeVerifiesBrokerCertificate(t *testing.T) {
	t.Parallel()
	caFile, tlsCfg := testCA(t)
	tb, err := broker.StartWith(broker.Options{Addr: "127.0.0.1:0", TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	plain := bridgetest.Broker(t) // only to satisfy newEnv's watcher; the bridge uses TLS below
	_ = plain
	for _, trusted := range []bool{false, true} {
		region, _ := fordapi.LookupRegion("usa")
		cfg := config.Config{MQTTURL: "ssl://" + tb.Addr(), MQTTClientID: "tls" + bridgetest.Suffix(), TopicPrefix: "fpt" + bridgetest.Suffix(),
			Region: region, FordBaseURL: "http://127.0.0.1:1", PollInterval: time.Minute, DailyBudget: 250,
			StateDir: filepath.Join(t.TempDir(), "s"), CommandsAllowed: []string{"lock"}}
		if trusted {
			cfg.MQTTCAFile = caFile
		}
		c, _ := fordapi.New(fordapi.Config{Region: region, BaseURL: cfg.FordBaseURL, StateDir: t.TempDir()})
		b := bridge.New(cfg, c, bridge.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		srv := httptestServer(t, b.HTTPHandler())
		healthy := false
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			resp, err := bridgetest.HTTP.Get(srv + "/healthz")
			if err == nil {
				readAll(t, resp)
				if resp.StatusCode == 200 {
					healthy = true
					break
				}
			}
		}
		cancel()
		<-done
		if healthy != trusted {
			t.Errorf("trusted CA %v: connected %v", trusted, healthy)
		}
	}
}

func TestDoctorSecondBridgeAndClockSkew(t *testing.T) {
	t.Parallel()
	url := bridgetest.Broker(t)
	_, fordURL := bridgetest.Ford(t, fordsim.Options{ClockSkew: 10 * time.Minute})
	region, _ := fordapi.LookupRegion("usa")
	cfg := config.Config{MQTTURL: url, MQTTUsername: "x", MQTTClientID: "doc", TopicPrefix: "fpd" + bridgetest.Suffix(), Region: region,
		FordBaseURL: fordURL, Stream: true, PollInterval: time.Minute, DailyBudget: 250, StateDir: t.TempDir(),
		CommandsAllowed: []string{"lock"}}
	w := bridgetest.Watch(t, url, cfg.TopicPrefix+"/#")
	info, _ := json.Marshal(bridge.Info{Version: "0.9", StartedAt: time.Now().Add(-time.Hour), Instance: "someoneelse1"})
	w.Publish(cfg.TopicPrefix+"/bridge/info", string(info), true)
	w.Publish(cfg.TopicPrefix+"/bridge/availability", "online", true)
	r := runDoctor(t, cfg, false)
	if c := check(t, r, "other bridge"); c.Status != bridge.Fail || !strings.Contains(c.Finding, "someoneelse1") {
		t.Errorf("second bridge: %+v", c)
	}
	if c := check(t, r, "clock"); c.Status != bridge.Fail || !strings.Contains(c.Finding, "10m0s") || !strings.Contains(c.Fix, "NTP") {
		t.Errorf("clock: %+v", c)
	}
	// Client-id clash: a bridge of this installation that keeps reconnecting.
	id, _ := bridge.InstanceID(cfg.StateDir)
	info, _ = json.Marshal(bridge.Info{Version: "1", StartedAt: time.Now(), Instance: id, Reconnects1h: 12})
	w.Publish(cfg.TopicPrefix+"/bridge/info", string(info), true)
	if c := check(t, runDoctor(t, cfg, false), "other bridge"); c.Status != bridge.Fail || !strings.Contains(c.Finding, "client id") && !strings.Contains(c.Finding, "MQTT_CLIENT_ID") {
		t.Errorf("client id clash: %+v", c)
	}
	w.Publish(cfg.TopicPrefix+"/bridge/info", "", true)
	w.Publish(cfg.TopicPrefix+"/bridge/availability", "", true)
}

func TestDoctorConfigurationFindings(t *testing.T) {
	t.Parallel()
	region, _ := fordapi.LookupRegion("usa")
	cfg := config.Config{MQTTURL: "tcp://" + bridgetest.FreeAddr(t), MQTTClientID: "doc", TopicPrefix: "fpd", Region: region, Stream: false,
		PollInterval: time.Minute, DailyBudget: 250, StateDir: t.TempDir(), CommandsAllowed: []string{"lock", "unlock", "start"}}
	c := check(t, runDoctor(t, cfg, false), "configuration")
	if c.Status != bridge.Warn || !strings.Contains(c.Finding, "FORD_POLL_INTERVAL=1m0s") || !strings.Contains(c.Finding, "anyone who can reach the broker") {
		t.Errorf("risky configuration: %+v", c)
	}
	r := doctor.Run(context.Background(), cfg, errFake("FORD_REGION: unknown region"), doctor.Options{})
	if len(r.Checks) != 1 || r.Checks[0].Status != bridge.Fail || !strings.Contains(r.Checks[0].Finding, "FORD_REGION") {
		t.Errorf("bad configuration: %+v", r.Checks)
	}
}

type errFake string

func (e errFake) Error() string { return string(e) }

// testCA makes a CA and a server certificate for 127.0.0.1; it returns the
// CA's PEM file and the server's TLS configuration.
func testCA(t *testing.T) (string, *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// TestForgedDoctorReportIsNotShown: a report on P/bridge/doctor that doctor
// on this installation did not sign (none, or a made-up signature) never
// reaches the sign-in page; a signed one does.
func TestForgedDoctorReportIsNotShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	e.w.WaitValue(e.topic("bridge", "availability"), "online", 10*time.Second)
	srv := httptestServer(t, e.bridge.HTTPHandler())
	page := func() string {
		resp, err := bridgetest.HTTP.Get(srv + "/")
		if err != nil {
			t.Fatal(err)
		}
		return readAll(t, resp)
	}
	for _, forged := range []string{
		`{"at":"2026-12-01T00:00:00Z","checks":[{"name":"phishing","status":"fail","finding":"sign in at http://evil.example/"}]}`,
		`{"at":"2026-12-01T00:00:00Z","checks":[{"name":"phishing","status":"fail","finding":"sign in at http://evil.example/"}],"sig":"` + strings.Repeat("ab", 32) + `"}`,
	} {
		e.w.Publish(e.topic("bridge", "doctor"), forged, true)
		time.Sleep(300 * time.Millisecond)
		if p := page(); strings.Contains(p, "evil.example") || strings.Contains(p, "phishing") {
			t.Fatal("the page shows a forged doctor report")
		}
	}
	runDoctor(t, e.cfg, false) // signs with STATE_DIR's key
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(page(), "configuration") {
		if time.Now().After(deadline) {
			t.Fatal("the page does not show the signed report")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
