package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// retainedCache remembers every retained state payload the bridge has
// published, so that unchanged values are not sent again and everything
// can be sent again after a reconnect.
type retainedCache struct {
	mu sync.Mutex
	m  map[string]string
}

// set records payload and, when it changed, calls send while still holding
// the cache: a republish of the whole cache (each) then either sees the new
// value or runs entirely before it is sent, never sending an older value
// after a newer one. It reports whether the payload changed.
func (c *retainedCache) set(topic, payload string, send func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[topic]; ok && old == payload {
		return false
	}
	c.m[topic] = payload
	send()
	return true
}

func (c *retainedCache) forget(topic string) {
	c.mu.Lock()
	delete(c.m, topic)
	c.mu.Unlock()
}

// each calls f with every cached topic and payload, holding the cache so
// no set sends between two of them.
func (c *retainedCache) each(f func(topic, payload string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.m {
		f(k, v)
	}
}

// TLSConfig builds the broker TLS configuration: system roots plus
// MQTT_CA_FILE, and the client certificate. Certificates are always
// verified.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, config.NewError("MQTT_CA_FILE", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, config.NewError("MQTT_CA_FILE", fmt.Errorf("%s holds no PEM certificate", caFile))
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, config.NewError("MQTT_CERT_FILE", fmt.Errorf("with MQTT_KEY_FILE: %w", err))
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// brokerURL maps the contract's schemes to paho's.
func brokerURL(raw string) (string, bool, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, err
	}
	secure := false
	switch u.Scheme {
	case "tls", "mqtts":
		u.Scheme, secure = "ssl", true
	case "ssl", "wss":
		secure = true
	case "mqtt":
		u.Scheme = "tcp"
	}
	if u.Port() == "" && (u.Scheme == "tcp" || u.Scheme == "ssl") {
		port := "1883"
		if secure {
			port = "8883"
		}
		u.Host += ":" + port
	}
	return u.String(), secure, nil
}

// MQTTOptions are paho's options the way a long-running service uses them:
// clean session (commands sent while away are not delivered late),
// automatic reconnect, a retained "offline" will (the bridge; not doctor),
// subscriptions made in onConnect.
func MQTTOptions(cfg config.Config, log *zap.Logger, will bool, onConnect func(mqtt.Client), onLost func(error)) (*mqtt.ClientOptions, error) {
	server, secure, err := brokerURL(cfg.MQTTURL)
	if err != nil {
		return nil, err
	}
	o := mqtt.NewClientOptions().AddBroker(server).SetClientID(cfg.MQTTClientID).
		SetUsername(cfg.MQTTUsername).SetPassword(cfg.MQTTPassword).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(2 * time.Second).SetMaxReconnectInterval(30 * time.Second).
		// Messages are handed to the bridge one at a time, in the order the
		// broker sent them: commands must reach the car in the order they
		// were published (handlers never block, so this costs nothing).
		SetConnectTimeout(10 * time.Second).SetKeepAlive(30 * time.Second).SetOrderMatters(true).
		SetStore(nullStore{}).
		SetOnConnectHandler(onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { onLost(err) }).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) { log.Debug("reconnecting to the broker") })
	if will {
		o.SetWill(mqttapi.New(cfg.TopicPrefix).Availability(), "offline", 1, true)
	}
	if secure || cfg.MQTTCAFile != "" || cfg.MQTTCertFile != "" {
		tc, err := TLSConfig(cfg.MQTTCAFile, cfg.MQTTCertFile, cfg.MQTTKeyFile)
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(tc)
	}
	return o, nil
}

// nullStore keeps no in-flight messages. paho resends the messages that
// were in flight when a connection dropped once it reconnects; the bridge
// instead republishes every retained state from its own cache in onConnect,
// so a resent (older) state could land after the fresh one and win. paho
// 1.5.1's resend also races with its writer (seen under -race).
type nullStore struct{}

func (nullStore) Open()                             {}
func (nullStore) Put(string, packets.ControlPacket) {}
func (nullStore) Get(string) packets.ControlPacket  { return nil }
func (nullStore) All() []string                     { return nil }
func (nullStore) Del(string)                        {}
func (nullStore) Close()                            {}
func (nullStore) Reset()                            {}

// WaitToken waits for a paho token with a deadline (never a bare Wait).
func WaitToken(t mqtt.Token, d time.Duration) error {
	if !t.WaitTimeout(d) {
		return errors.New("timed out waiting for the broker")
	}
	return t.Error()
}

// RetainedOn reads the value retained on topic at the broker cfg names: ""
// when none comes within d (the demo's question: does another demo run
// there?).
func RetainedOn(cfg config.Config, topic string, d time.Duration) (string, error) {
	opts, err := MQTTOptions(cfg, zap.NewNop(), false, func(mqtt.Client) {}, func(error) {})
	if err != nil {
		return "", err
	}
	opts.SetClientID(cfg.MQTTClientID + "-probe").SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(d).SetOnConnectHandler(nil).SetConnectionLostHandler(nil)
	c := mqtt.NewClient(opts)
	if err := WaitToken(c.Connect(), d+time.Second); err != nil {
		return "", err
	}
	defer c.Disconnect(100)
	got := make(chan string, 1)
	if err := WaitToken(c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	}), d); err != nil {
		return "", err
	}
	select {
	case v := <-got:
		return v, nil
	case <-time.After(d):
		return "", nil
	}
}
