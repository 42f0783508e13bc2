package fordapi

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"go.uber.org/zap"
)

// Ford changed its login in 2025 and again in August 2026, and current
// clients disagree on two details. The client tries the usual way first,
// falls back to the other once when Ford refuses, and remembers (in
// STATE_DIR/protocol.json) which one worked, so the fallback costs one call
// once, not one call every time.
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
}

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
	c.log.Info("Ford's protocol changed; the client follows", zap.String("autonomic_subject", p.subject()), zap.String("vehicle_list", p.list()))
}
