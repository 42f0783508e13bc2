package doctor

// doctor's checks of what Ford answers and of the running bridge's cars.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordconnect"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// checkFordAnswers reports what the bridge has learned of Ford's answers
// (STATE_DIR/protocol.json and vehicles.json): REST telemetry retired,
// vehicle lists that named no vehicle, cars a list left out.
func checkFordAnswers(dir string, p fordapi.Protocol, now time.Time, accounts bool) mqttapi.Check {
	c := mqttapi.Check{Name: "ford answers", Status: mqttapi.Pass}
	var found, fixes []string
	if !p.RESTTelemetryGone.IsZero() {
		found = append(found, fmt.Sprintf("Ford answered REST telemetry with 404 (%s ago): the cars' state comes from the websocket, and REST is tried again once a day",
			human(now.Sub(p.RESTTelemetryGone))))
	}
	if p.OneSocketAt(now) {
		found = append(found, fmt.Sprintf("Ford closes a car's telemetry socket when another car's opens on the same sign-in (found %s ago): one car streams (the car last used), the others are read on the poll interval; checked again a day after it was found",
			human(now.Sub(p.OneSocketSince))))
		if !accounts {
			// Not a fault: the cars are read. Streaming each needs a
			// sign-in of its own (ha-fordpass's workarounds).
			fixes = append(fixes, "to stream every car, give each its own sign-in: FORD_ACCOUNTS with one car each (FORD_VINS_<NAME>), signed in once per account (README, \"Several accounts\")")
		}
	}
	a, err := bridge.ReadAccount(dir)
	if err != nil {
		c.Status = mqttapi.Warn
		found = append(found, "the vehicle cache (vehicles.json) is unreadable")
		fixes = append(fixes, "nothing: the bridge writes it again from Ford's next vehicle list")
	}
	if a.EmptyAnswers > 0 {
		c.Status = mqttapi.Warn
		found = append(found, fmt.Sprintf("Ford answered the vehicle list with no vehicles %d time(s), the last %s ago; the %d car(s) known are kept",
			a.EmptyAnswers, human(now.Sub(a.EmptyAt)), len(a.Vehicles)))
		fixes = append(fixes, "nothing to do: this is Ford's side, and the bridge asks again every hour; if the FordPass app shows no cars either, check FORD_REGION")
	}
	for _, v := range a.Vehicles {
		since, ok := a.MissingSince[v.VIN]
		if !ok {
			continue
		}
		c.Status = mqttapi.Warn
		found = append(found, fmt.Sprintf("%s is missing from Ford's vehicle list for %s; it is removed in %s unless Ford lists it again",
			v.VIN, human(now.Sub(since)), human(since.Add(bridge.MissingGrace).Sub(now))))
		fixes = append(fixes, "if the car left your account, leave it out of FORD_VINS to remove it now")
	}
	if len(found) == 0 {
		found = append(found, "Ford serves REST telemetry, its last vehicle list named every car, and every car has a socket of its own")
	}
	c.Finding, c.Fix = strings.Join(found, "; "), strings.Join(slices.Compact(fixes), "; ")
	return c
}

// checkDarkCars names the cars the running bridge reports offline (no
// channel to Ford for them), from its retained P/bridge/info.
func checkDarkCars(cfg config.Config, b brokerResult) (mqttapi.Check, bool) {
	if b.info == nil || !b.online {
		return mqttapi.Check{}, false
	}
	c := mqttapi.Check{Name: "cars", Status: mqttapi.Pass, Finding: fmt.Sprintf("every bridged car (%d) has a channel to Ford", len(b.info.VINs))}
	if len(b.info.Dark) > 0 {
		c.Status = mqttapi.Warn
		c.Finding = "offline, no channel to Ford: " + strings.Join(b.info.Dark, ", ")
		c.Fix = "read why (and until when) on " + mqttapi.New(cfg.TopicPrefix).VehicleDark(b.info.Dark[0]) + "; the car comes back by itself when Ford answers for it"
	}
	return c, true
}

// checkLive refreshes the token and lists the vehicles.
func checkLive(ctx context.Context, client *fordapi.Client) []mqttapi.Check {
	before := client.Budget().Used()
	tok := mqttapi.Check{Name: "live token refresh"}
	err := client.RefreshNow(ctx)
	spent := func() string { return fmt.Sprintf(" (%d Ford calls spent)", client.Budget().Used()-before) }
	switch {
	case err == nil:
		tok.Status, tok.Finding = mqttapi.Pass, "Ford accepted the refresh token and issued a new one"
	case errors.Is(err, fordapi.ErrReauthRequired):
		tok.Status, tok.Finding = mqttapi.Fail, err.Error()
		tok.Fix = "sign in again: the refresh token is dead, and no waiting will revive it"
	case errors.Is(err, fordapi.ErrRateLimited), errors.Is(err, fordapi.ErrBudgetExhausted):
		tok.Status, tok.Finding, tok.Fix = mqttapi.Warn, err.Error(), "wait until the time given, then run doctor --live again"
	default:
		tok.Status, tok.Finding = mqttapi.Warn, "Ford did not answer the refresh: "+err.Error()
		tok.Fix = "a fault on Ford's side or the network, not your sign-in; try again later"
	}
	tok.Finding += spent()
	if err != nil {
		return []mqttapi.Check{tok}
	}
	list := mqttapi.Check{Name: "vehicle list"}
	vs, err := client.Vehicles(ctx)
	switch {
	case err != nil:
		list.Status, list.Finding, list.Fix = mqttapi.Warn, err.Error(), "try again later"
	case len(vs) == 0:
		list.Status = mqttapi.Warn
		list.Finding = "the account has no vehicles in region " + client.Region().Key
		list.Fix = "an account's cars show only in its own region: set FORD_REGION to the country the account was made in"
	default:
		names := make([]string, len(vs))
		for i, v := range vs {
			names[i] = v.VIN + " (" + v.DisplayName() + ")"
		}
		list.Status, list.Finding = mqttapi.Pass, fmt.Sprintf("%d vehicle(s): %s", len(vs), strings.Join(names, ", "))
	}
	list.Finding += spent()
	return []mqttapi.Check{tok, list}
}

// checkFordConnect reports the FordConnect setup: the app's credentials
// (set, never shown), the redirect URL to register, the consented cars and
// the Query requests of the last 24 h.
func checkFordConnect(cfg config.Config, now time.Time) mqttapi.Check {
	c := mqttapi.Check{Name: "fordconnect"}
	client, err := fordconnect.New(fordconnect.Config{BaseURL: cfg.FordBaseURL, ClientID: cfg.FordConnect.ClientID,
		ClientSecret: cfg.FordConnect.ClientSecret, RedirectURL: cfg.FordConnect.RedirectURL, StateDir: cfg.StateDir, Now: func() time.Time { return now }})
	if err != nil {
		c.Status, c.Finding, c.Fix = mqttapi.Fail, err.Error(), "check STATE_DIR and the FORDCONNECT_ variables"
		return c
	}
	defer client.Budget().Close()
	st := client.Status()
	consent := "register " + cfg.FordConnect.RedirectURL + " with your app at developer.ford.com, then consent: the sign-in page, fordpass2mqtt login, or publish the address the browser landed on to " +
		mqttapi.New(cfg.TopicPrefix).CodeSet()
	consents := client.Consents()
	if len(consents) == 0 {
		c.Status, c.Finding, c.Fix = mqttapi.Fail, st.Reason, consent
		if cfg.Backend == config.BackendBoth {
			// Not a fault with both: FordPass serves every car; but no car
			// is kept flowing while FordPass is down.
			c.Status = mqttapi.Warn
			c.Finding = "no car is consented to FordConnect: while FordPass is down no car's state comes through; FordPass serves every car meanwhile"
		}
		return c
	}
	var good, refused []string
	for _, x := range consents {
		if x.Refused == "" {
			good = append(good, fordapi.ShortVIN(x.VIN))
			continue
		}
		r := fordapi.ShortVIN(x.VIN)
		if x.RetryAt != nil {
			r += " (Ford refused its renewal; tried again by itself at " + x.RetryAt.Local().Format("Jan 2 15:04 MST") + ")"
		}
		refused = append(refused, r)
	}
	c.Status = mqttapi.Pass
	c.Finding = fmt.Sprintf("app %.6s…, redirect %s; %d car(s) consented (%s); %d Query request(s) in 24 h (Ford allows about one a minute per car)",
		cfg.FordConnect.ClientID, cfg.FordConnect.RedirectURL, len(good), strings.Join(good, ", "), client.Budget().Used())
	if cfg.Backend == config.BackendBoth {
		if a, err := bridge.ReadAccount(cfg.StateDir); err == nil {
			var missing []string
			for _, v := range a.Vehicles {
				if !slices.ContainsFunc(consents, func(x fordconnect.Consent) bool { return x.VIN == v.VIN }) {
					missing = append(missing, fordapi.ShortVIN(v.VIN))
				}
			}
			if len(missing) > 0 {
				c.Finding += "; not consented, so offline while FordPass is down: " + strings.Join(missing, ", ")
				c.Fix = "consent each car you want kept flowing: " + consent
			}
		}
	}
	if len(refused) > 0 {
		c.Status = mqttapi.Fail
		c.Finding += "; refused: " + strings.Join(refused, "; ")
		c.Fix = "consent the refused car(s) again if Ford keeps refusing: " + consent
	}
	if st.Unsaved != "" {
		c.Status, c.Finding = mqttapi.Warn, c.Finding+"; the tokens in use are not saved: "+st.Unsaved
		c.Fix = "make STATE_DIR writable"
	}
	return c
}
