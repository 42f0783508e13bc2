package bridge

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// Metrics are the Prometheus metrics of one bridge, in a registry of their
// own (no global state).
type Metrics struct {
	reg           *prometheus.Registry
	fordCalls     *prometheus.CounterVec
	refreshes     *prometheus.CounterVec
	budget        atomic.Pointer[fordapi.Budget] // read at every scrape: the figures never lag
	authState     *prometheus.GaugeVec
	commands      *prometheus.CounterVec
	mqttConnected prometheus.Gauge
	published     prometheus.Counter
	telemetryAgeG *prometheus.GaugeVec
	streaming     *prometheus.GaugeVec
	drift         *prometheus.CounterVec
	// brokerFailures counts failed broker connection attempts by cause.
	brokerFailures *prometheus.CounterVec
}

// NewMetrics makes the metrics and their registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		fordCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fordpass_ford_calls_total",
			Help: "HTTP calls to the FordPass cloud by endpoint and outcome (budget: refused locally)."}, []string{"endpoint", "outcome"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fordpass_token_refreshes_total",
			Help: "FordPass token refreshes by outcome (ok, dead, error)."}, []string{"outcome"}),
		authState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fordpass_auth_state",
			Help: "1 for the current auth state, 0 for the others."}, []string{"state"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fordpass_commands_total",
			Help: "Commands by type and final status."}, []string{"command", "status"}),
		mqttConnected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fordpass_mqtt_connected",
			Help: "1 while connected to the MQTT broker."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "fordpass_mqtt_state_publishes_total",
			Help: "Retained state messages published (unchanged values are not)."}),
		telemetryAgeG: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fordpass_telemetry_age_seconds",
			Help: "Seconds since the bridge last got telemetry for a vehicle."}, []string{"vin"}),
		streaming: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fordpass_stream_connected",
			Help: "1 while a vehicle's telemetry websocket is open."}, []string{"vin"}),
		brokerFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fordpass_mqtt_connect_failures_total",
			Help: "Failed broker connection attempts by cause (refused, unknown_host, timeout, bad_credentials, not_authorized, certificate_untrusted, certificate_name_mismatch, tls_to_plain, closed, other)."}, []string{"cause"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fordpass_telemetry_drift_total",
			Help: "Distinct metrics Ford sent that this version does not know (unknown) or cannot read (unreadable)."}, []string{"kind"}),
	}
	used := func() float64 {
		if b := m.budget.Load(); b != nil {
			return float64(b.Used())
		}
		return 0
	}
	classes := []fordapi.Class{fordapi.ClassTelemetry, fordapi.ClassCommand, fordapi.ClassSignIn, fordapi.ClassToken}
	for _, k := range classes {
		for name, f := range map[string]func(*fordapi.Budget) float64{
			"fordpass_budget_class_calls_24h": func(b *fordapi.Budget) float64 { return float64(b.UsedBy(k)) },
			"fordpass_budget_class_share":     func(b *fordapi.Budget) float64 { return float64(b.Share(k)) },
		} {
			help := "Ford calls of a budget class in the last 24 hours."
			if name == "fordpass_budget_class_share" {
				help = "Calls a budget class may make in any 24 hours."
			}
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help,
				ConstLabels: prometheus.Labels{"class": k.String()}}, func() float64 {
				if b := m.budget.Load(); b != nil {
					return f(b)
				}
				return 0
			}))
		}
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fordpass_ford_calls_24h",
			Help: "Ford calls in the last 24 hours that count against FORD_DAILY_CALL_BUDGET."}, used),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fordpass_ford_calls_left_24h",
			Help: "Ford calls left under FORD_DAILY_CALL_BUDGET in the rolling 24 hours."}, func() float64 {
			if b := m.budget.Load(); b != nil {
				return float64(max(b.Limit()-b.Used(), 0))
			}
			return 0
		}))
	m.reg.MustRegister(m.fordCalls, m.refreshes, m.authState, m.commands, m.drift, m.brokerFailures,
		m.mqttConnected, m.published, m.telemetryAgeG, m.streaming,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// FordCall counts a call (fordapi.Config.OnCall).
func (m *Metrics) FordCall(endpoint, outcome string) {
	m.fordCalls.WithLabelValues(endpoint, outcome).Inc()
}

// TokenRefresh counts a refresh (fordapi.Config.OnRefresh).
func (m *Metrics) TokenRefresh(outcome string) { m.refreshes.WithLabelValues(outcome).Inc() }

func (m *Metrics) setBudget(b *fordapi.Budget) { m.budget.Store(b) }

func (m *Metrics) setAuthState(state string) {
	for _, s := range []string{StateOK, StateReauthRequired, StateRateLimited, StateUnavailable} {
		v := 0.0
		if s == state {
			v = 1
		}
		m.authState.WithLabelValues(s).Set(v)
	}
}

func (m *Metrics) command(cmd, status string) {
	if cmd == "" {
		cmd = "invalid"
	}
	if _, ok := fordCommand[cmd]; !ok {
		cmd = "invalid" // never a label per garbage payload
	}
	m.commands.WithLabelValues(cmd, status).Inc()
}

func (m *Metrics) telemetryAge(vin string, last time.Time) {
	if !last.IsZero() {
		m.telemetryAgeG.WithLabelValues(vin).Set(time.Since(last).Seconds())
	}
}

func (m *Metrics) setStreaming(vin string, on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.streaming.WithLabelValues(vin).Set(v)
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
