package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"go.uber.org/zap"
)

// Why a connection to the broker failed, in words a user can act on. The
// code names the cause in metrics; the words go to the log and /healthz.
type brokerCause struct {
	code, words, fix string
}

// explainBroker classifies a connection failure.
func explainBroker(err error, secure bool) brokerCause {
	var dns *net.DNSError
	var ne net.Error
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rec tls.RecordHeaderError
	low := strings.ToLower(err.Error())
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return brokerCause{"bad_credentials", "bad user name or password", "check MQTT_USERNAME and MQTT_PASSWORD"}
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return brokerCause{"not_authorized", "the broker refused the log-in as not authorized (mosquitto and most brokers answer a wrong password so)",
			"check MQTT_USERNAME and MQTT_PASSWORD against the broker's password file, and its ACL"}
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return brokerCause{"client_id_rejected", "the broker rejected MQTT_CLIENT_ID", "use a plain, unique MQTT_CLIENT_ID"}
	case errors.As(err, &ua):
		return brokerCause{"certificate_untrusted", "the broker's TLS certificate is not trusted", "set MQTT_CA_FILE to the CA that signed it"}
	case errors.As(err, &he):
		return brokerCause{"certificate_name_mismatch", "the broker's TLS certificate does not name the host in MQTT_URL", "use the host name the certificate names in MQTT_URL"}
	case errors.As(err, &ci):
		return brokerCause{"certificate_invalid", "the broker's TLS certificate is invalid (" + ci.Error() + ")", "renew the broker's certificate"}
	case errors.As(err, &rec) || strings.Contains(low, "first record does not look like a tls handshake"):
		return brokerCause{"tls_to_plain", "TLS to a listener that does not speak TLS", "use tcp:// for this port, or the broker's TLS port with ssl://"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return brokerCause{"refused", "connection refused: nothing listens at that host and port", "start the broker, or fix MQTT_URL's host and port"}
	case errors.As(err, &dns):
		return brokerCause{"unknown_host", "unknown host " + dns.Name, "fix MQTT_URL's host (in Docker Compose, the broker's service name)"}
	case errors.As(err, &ne) && ne.Timeout():
		return brokerCause{"timeout", "timed out", "check that the broker runs and that no firewall drops the port"}
	case secure && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.Contains(low, "eof")):
		return brokerCause{"tls_to_plain", "the connection closed during the TLS handshake: most likely TLS to a listener that does not speak TLS",
			"use tcp:// for this port, or the broker's TLS port with ssl://"}
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.Contains(low, "eof"):
		return brokerCause{"closed", "the broker closed the connection during the MQTT handshake: most likely plain MQTT to a TLS listener, or a broker that refuses the client",
			"use ssl:// for a TLS port; check the broker's log"}
	}
	return brokerCause{"other", err.Error(), "check MQTT_URL, the credentials and the TLS settings"}
}

// brokerState is what the bridge knows of its broker connection: the
// current failure cause, for the log (once per change), /healthz and the
// metrics.
type brokerState struct {
	mu      sync.Mutex
	cause   brokerCause
	since   time.Time
	attempt int
}

// connectionNotifications logs every change of cause at warn, with when the
// next try comes.
func (p *publisher) connectionNotifications(secure bool) mqtt.ConnectionNotificationHandler {
	return func(_ mqtt.Client, n mqtt.ConnectionNotification) {
		switch n := n.(type) {
		case mqtt.ConnectionNotificationConnecting:
			p.broker.mu.Lock()
			p.broker.attempt = n.Attempt
			p.broker.mu.Unlock()
			if !n.IsReconnect {
				return
			}
		case mqtt.ConnectionNotificationFailed:
			c := explainBroker(n.Reason, secure)
			p.m.brokerFailure(c.code)
			p.broker.mu.Lock()
			changed := c.code != p.broker.cause.code || c.words != p.broker.cause.words
			if changed {
				p.broker.cause, p.broker.since = c, p.now()
			}
			attempt := p.broker.attempt
			p.broker.mu.Unlock()
			if !changed {
				return
			}
			// paho retries the first connection every 2 s, and a lost one
			// with a doubling wait from 1 s up to 30 s.
			retry := 2 * time.Second
			if p.everConnected.Load() {
				retry = min(time.Second<<min(attempt, 5), 30*time.Second)
			}
			p.log.Warn("cannot connect to the broker: "+c.words+"; retrying by itself", zap.String("url", RedactURL(p.cfg.MQTTURL)),
				zap.String("cause", c.code), zap.String("fix", c.fix), zap.Time("next_try", p.now().Add(retry).Truncate(time.Second)))
		case mqtt.ConnectionNotificationConnected:
			p.everConnected.Store(true)
			p.broker.mu.Lock()
			p.broker.cause = brokerCause{}
			p.broker.mu.Unlock()
		}
	}
}

// brokerProblem is the current connection failure in words ("" if none).
func (p *publisher) brokerProblem() string {
	p.broker.mu.Lock()
	defer p.broker.mu.Unlock()
	if p.broker.cause.code == "" {
		return ""
	}
	return p.broker.cause.words + " (since " + p.broker.since.UTC().Format(time.RFC3339) + "; " + p.broker.cause.fix + ")"
}
