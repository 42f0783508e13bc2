package bridge

import (
	"context"
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
	info := b.worst()
	if info.State == StateRateLimited && info.RetryAt != nil && b.now().Before(*info.RetryAt) {
		// The wait is kept on disk: a restart would not end it either.
		return false, "rate limited until " + info.RetryAt.UTC().Format(time.RFC3339) + ": " + info.Reason
	}
	if info.Warning != "" {
		return true, "ok; warning: " + info.Warning
	}
	if dark := b.darkCars(); len(dark) > 0 {
		return true, "ok; offline cars (no channel to Ford): " + strings.Join(dark, ", ")
	}
	return true, "ok"
}

func (w webSide) LoginURL(account string) (string, error) {
	if a := w.account(account); a != nil {
		return a.ford.LoginURL()
	}
	return "", errNoAccount(account)
}

func (w webSide) AuthInfo(account string) mqttapi.AuthInfo {
	if a := w.account(account); a != nil {
		return a.auth.info()
	}
	return w.worst()
}

func (w webSide) SignIn(ctx context.Context, account, pasted string) error {
	return w.SignInAccount(ctx, account, pasted)
}

func (w webSide) Accounts() []string {
	names := make([]string, 0, len(w.accounts))
	for _, a := range w.accounts {
		names = append(names, a.name)
	}
	return names
}

func (w webSide) Info() mqttapi.Info            { return w.info() }
func (w webSide) BrokerConnected() bool         { return w.pub.connected.Load() }
func (w webSide) DoctorReport() *mqttapi.Report { return w.doctor.Load() }
