package bridge

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// Metrics are the Prometheus metrics of one bridge, in a set of their own
// (no global state), written in the Prometheus text format by
// VictoriaMetrics/metrics: the same names and labels as before, at a
// fraction of prometheus/client_golang's size (README, "Dependencies").
//
// The metrics, all prefixed fordpass_: ford_calls_total{endpoint,outcome},
// token_refreshes_total{outcome}, ford_calls_24h, ford_calls_left_24h,
// budget_class_calls_24h{class}, budget_class_share{class},
// auth_state{state}, commands_total{command,status}, mqtt_connected,
// mqtt_state_publishes_total, telemetry_age_seconds{vin},
// stream_connected{vin}, telemetry_drift_total{kind},
// mqtt_connect_failures_total{cause}, vehicle_list_empty_total,
// http_auth_failures_total{outcome}; and the Go
// and process metrics.
type Metrics struct {
	set           *metrics.Set
	budget        atomic.Pointer[[]*fordapi.Budget] // read at every scrape: the figures never lag
	mqttConnected *metrics.Gauge
	published     *metrics.Counter
}

// NewMetrics makes the metrics and their set.
func NewMetrics() *Metrics {
	metrics.ExposeMetadata(true) // # TYPE lines, as Prometheus clients write them
	m := &Metrics{set: metrics.NewSet()}
	budget := func(f func(*fordapi.Budget) float64) func() float64 {
		return func() float64 {
			sum := 0.0
			if bs := m.budget.Load(); bs != nil {
				for _, b := range *bs {
					sum += f(b) // several accounts: their sum
				}
			}
			return sum
		}
	}
	m.set.NewGauge("fordpass_ford_calls_24h", budget(func(b *fordapi.Budget) float64 { return float64(b.Used()) }))
	m.set.NewGauge("fordpass_ford_calls_left_24h", budget(func(b *fordapi.Budget) float64 { return float64(max(b.Limit()-b.Used(), 0)) }))
	for _, k := range []fordapi.Class{fordapi.ClassTelemetry, fordapi.ClassCommand, fordapi.ClassSignIn, fordapi.ClassToken} {
		label := fmt.Sprintf("{class=%q}", k.String())
		m.set.NewGauge("fordpass_budget_class_calls_24h"+label, budget(func(b *fordapi.Budget) float64 { return float64(b.UsedBy(k)) }))
		m.set.NewGauge("fordpass_budget_class_share"+label, budget(func(b *fordapi.Budget) float64 { return float64(b.Share(k)) }))
	}
	m.mqttConnected = m.set.NewGauge("fordpass_mqtt_connected", nil)
	m.published = m.set.NewCounter("fordpass_mqtt_state_publishes_total")
	return m
}

// counter increments name{labels…}; labels come in key, value pairs.
func (m *Metrics) counter(name string, labels ...string) {
	m.set.GetOrCreateCounter(name + labelSet(labels)).Inc()
}

// gauge sets name{labels…}.
func (m *Metrics) gauge(name string, v float64, labels ...string) {
	m.set.GetOrCreateGauge(name+labelSet(labels), nil).Set(v)
}

func labelSet(kv []string) string {
	if len(kv) == 0 {
		return ""
	}
	b := []byte{'{'}
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, kv[i]...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, kv[i+1])
	}
	return string(append(b, '}'))
}

// FordCall counts a call (fordapi.Config.OnCall).
func (m *Metrics) FordCall(endpoint, outcome string) {
	m.counter("fordpass_ford_calls_total", "endpoint", endpoint, "outcome", outcome)
}

// TokenRefresh counts a refresh (fordapi.Config.OnRefresh).
func (m *Metrics) TokenRefresh(outcome string) {
	m.counter("fordpass_token_refreshes_total", "outcome", outcome)
}

func (m *Metrics) setBudget(bs ...*fordapi.Budget) { m.budget.Store(&bs) }

func (m *Metrics) setAuthState(state string) {
	for _, s := range []string{StateOK, StateReauthRequired, StateRateLimited, StateUnavailable} {
		v := 0.0
		if s == state {
			v = 1
		}
		m.gauge("fordpass_auth_state", v, "state", s)
	}
}

func (m *Metrics) command(cmd, status string) {
	if commandNamed(cmd) == nil {
		cmd = "invalid" // never a label per garbage payload
	}
	m.counter("fordpass_commands_total", "command", cmd, "status", status)
}

func (m *Metrics) setConnected(on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.mqttConnected.Set(v)
}

func (m *Metrics) telemetryAge(vin string, last time.Time) {
	if !last.IsZero() {
		m.gauge("fordpass_telemetry_age_seconds", time.Since(last).Seconds(), "vin", vin)
	}
}

func (m *Metrics) setStreaming(vin string, on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.gauge("fordpass_stream_connected", v, "vin", vin)
}

// driftSeen counts a metric Ford sent that this version does not know
// (kind unknown) or cannot read (unreadable).
// authFailure counts wrong basic-auth credentials on the sign-in page
// (refused) and requests refused for too many of them (throttled).
func (m *Metrics) authFailure(outcome string) {
	m.counter("fordpass_http_auth_failures_total", "outcome", outcome)
}

// vehicleListEmpty counts Ford's vehicle lists that named no vehicle.
func (m *Metrics) vehicleListEmpty() { m.counter("fordpass_vehicle_list_empty_total") }

func (m *Metrics) driftSeen(kind string) { m.counter("fordpass_telemetry_drift_total", "kind", kind) }

// brokerFailure counts a failed broker connection attempt by cause.
func (m *Metrics) brokerFailure(cause string) {
	m.counter("fordpass_mqtt_connect_failures_total", "cause", cause)
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
}
