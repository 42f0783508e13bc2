package bridge

import (
	"net/http"
	"strings"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// HTTPHandler serves /healthz, /metrics, the sign-in page and its form.
func (b *Bridge) HTTPHandler() http.Handler { return b.web.Handler() }

// webSide is the bridge as its HTTP side (package web) asks it.
type webSide struct{ *Bridge }

// Health is /healthz's answer. Unhealthy (503): the broker is not
// connected, the broker drops the bridge's publishes, or nothing can reach
// Ford until a rate limit's end. Healthy (200) with a warning or the cars
// with no channel to Ford named: a restart would not help them.
func (w webSide) Health() (bool, string) {
	b := w.Bridge
	if !b.pub.connected.Load() {
		msg := "broker not connected"
		if p := b.pub.brokerProblem(); p != "" {
			msg += ": " + p
		}
		return false, msg
	}
	if lost := b.pub.lostSaying(); lost != "" {
		return false, lost
	}
	info := b.auth.gate.get()
	if info.State == StateRateLimited && info.RetryAt != nil && b.now().Before(*info.RetryAt) {
		// The wait is kept on disk: a restart would not end it either.
		return false, "rate limited until " + info.RetryAt.UTC().Format(time.RFC3339) + ": " + info.Reason
	}
	if info.Warning != "" {
		return true, "ok; warning: " + info.Warning
	}
	if dark := b.fleet.darkCars(); len(dark) > 0 {
		return true, "ok; offline cars (no channel to Ford): " + strings.Join(dark, ", ")
	}
	return true, "ok"
}

func (w webSide) LoginURL() (string, error)     { return w.ford.LoginURL() }
func (w webSide) Info() mqttapi.Info            { return w.info() }
func (w webSide) BrokerConnected() bool         { return w.pub.connected.Load() }
func (w webSide) DoctorReport() *mqttapi.Report { return w.doctor.Load() }
