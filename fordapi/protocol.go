package fordapi

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// Current clients disagree on two details of Ford's protocol, and Ford is
// retiring its REST telemetry endpoint (the FordPass app reads the
// websocket only). The client tries the usual way first, falls back to the
// other once when Ford refuses, and remembers (in STATE_DIR/protocol.json)
// what worked, so the fallback costs one call once, not one call every
// time.
const protocolFileName = "protocol.json"

// Protocol choices.
const (
	// SubjectAccess and SubjectRefresh are the FordPass token sent as the
	// subject of the Autonomic token exchange: the access token (the
	// FordPass app, ha-fordpass) or the refresh token (newer clients).
	SubjectAccess  = "access_token"
	SubjectRefresh = "refresh_token"
	// ListDashboard and ListGarage are the vehicle list endpoints: the
	// expdashboard POST, or the newer app's user-garage GET.
	ListDashboard = "expdashboard"
	ListGarage    = "garage"
)

// Protocol is what the client learned about Ford's current protocol.
type Protocol struct {
	AutonomicSubject string `json:"autonomic_subject,omitempty"` // SubjectAccess (default) or SubjectRefresh
	VehicleList      string `json:"vehicle_list,omitempty"`      // ListDashboard (default) or ListGarage
	// RESTTelemetryGone is when Ford last answered REST telemetry with
	// 404 or 410 (zero: it answers). Until restRetryAfter has passed, the
	// client reads the car's record from the websocket without asking.
	RESTTelemetryGone time.Time `json:"rest_telemetry_gone,omitzero"`
	// OneSocketSince is when the client last saw Ford close a car's
	// socket because another car's opened on the same token (zero: it
	// has not). For oneSocketRecheck after that the bridge streams one car
	// at a time (OneSocket).
	OneSocketSince time.Time `json:"one_socket_since,omitzero"`
}

// restRetryAfter is how long REST telemetry is left alone after Ford
// answered that it no longer serves it: one call a day at most.
const restRetryAfter = 24 * time.Hour

func (p Protocol) subject() string {
	if p.AutonomicSubject == SubjectRefresh {
		return SubjectRefresh
	}
	return SubjectAccess
}

func (p Protocol) list() string {
	if p.VehicleList == ListGarage {
		return ListGarage
	}
	return ListDashboard
}

func loadProtocol(dir string) Protocol {
	var p Protocol
	data, err := os.ReadFile(filepath.Join(dir, protocolFileName))
	if err == nil {
		_ = json.Unmarshal(data, &p) // a damaged file means the defaults
	}
	return p
}

// Protocol is what the client uses now.
func (c *Client) Protocol() Protocol {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proto
}

// learn records a protocol choice that worked, on disk too.
func (c *Client) learn(change func(*Protocol)) {
	c.mu.Lock()
	before := c.proto
	change(&c.proto)
	p := c.proto
	c.mu.Unlock()
	if p == before {
		return
	}
	data, _ := json.Marshal(p)
	if err := WriteFileAtomic(filepath.Join(c.store.dir, protocolFileName), data); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.Warn("cannot save what was learned of Ford's protocol; the fallback will be tried again after a restart", zap.Error(err))
	}
	c.log.Info("Ford's protocol changed; the client follows", zap.String("autonomic_subject", p.subject()), zap.String("vehicle_list", p.list()),
		zap.Bool("rest_telemetry", p.RESTTelemetryGone.IsZero()), zap.Bool("one_socket_per_token", !p.OneSocketSince.IsZero()))
}

// restGone reports whether REST telemetry is left alone for now.
func (c *Client) restGone() bool {
	c.mu.Lock()
	gone := c.proto.RESTTelemetryGone
	c.mu.Unlock()
	return !gone.IsZero() && c.now().Sub(gone) < restRetryAfter
}

// restAnswered records whether REST telemetry answered (ok) or answered
// that Ford no longer serves it; the first "gone", and its return, are
// logged at warn and info.
func (c *Client) restAnswered(ok bool, status int) {
	c.mu.Lock()
	wasGone := !c.proto.RESTTelemetryGone.IsZero()
	c.mu.Unlock()
	switch {
	case ok && wasGone:
		c.log.Info("Ford serves REST telemetry again")
		c.learn(func(p *Protocol) { p.RESTTelemetryGone = time.Time{} })
	case !ok:
		if !wasGone {
			c.log.Warn("Ford no longer serves REST telemetry; the cars' state comes from the websocket, and REST is tried again once a day",
				zap.Int("status", status))
		}
		now := c.now().UTC().Truncate(time.Second)
		c.learn(func(p *Protocol) { p.RESTTelemetryGone = now })
	}
}
