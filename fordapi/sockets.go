package fordapi

import (
	"time"

	"go.uber.org/zap"
)

// Ford may bind the telemetry socket to one car per token: ha-fordpass's
// README (2026.7.2, "Multi-Vehicle Support") says the app's websocket is
// "some sort of bound to a single vehicle at a time". Nobody has shown how
// Ford closes the older socket, so the client does not rely on a message:
// it watches its own sockets. A socket that closes within displaceWindow
// of another car's socket opening on the same client (one token) was
// displaced; displaceCount of them within displaceSpan mean Ford allows
// one socket per token now. The client remembers it (protocol.json, so the
// next start knows) and says so once; the bridge then streams one car at a
// time (OneSocket). After oneSocketRecheck the finding lapses: the bridge
// streams every car again, and finds out within minutes whether Ford
// still closes them.
const (
	displaceWindow   = 3 * time.Second
	displaceCount    = 3
	displaceSpan     = 10 * time.Minute
	oneSocketRecheck = 24 * time.Hour
)

// socketWatch is what the client saw of its sockets opening and closing.
type socketWatch struct {
	opened    []socketOpen // the openings of the last displaceWindow
	displaced []time.Time  // the displacements of the last displaceSpan
}

type socketOpen struct {
	vin string
	at  time.Time
}

// socketOpened records that a socket of the car opened.
func (c *Client) socketOpened(vin string) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &c.sockets
	for len(w.opened) > 0 && now.Sub(w.opened[0].at) > displaceWindow {
		w.opened = w.opened[1:]
	}
	w.opened = append(w.opened, socketOpen{vin, now})
}

// socketClosed records that Ford closed a socket of the car that had been
// open since openedAt (not the client itself: ctx, a stall, a token
// renewal), and says whether another car's socket displaced it.
func (c *Client) socketClosed(vin string, openedAt time.Time) bool {
	now := c.now()
	c.mu.Lock()
	w := &c.sockets
	displaced := false
	for _, o := range w.opened {
		if o.vin != vin && o.at.After(openedAt) && now.Sub(o.at) <= displaceWindow {
			displaced = true
		}
	}
	if !displaced {
		c.mu.Unlock()
		return false
	}
	for len(w.displaced) > 0 && now.Sub(w.displaced[0]) > displaceSpan {
		w.displaced = w.displaced[1:]
	}
	w.displaced = append(w.displaced, now)
	found := len(w.displaced) >= displaceCount && !c.oneSocketLocked(now)
	if found {
		w.displaced = nil
	}
	c.mu.Unlock()
	if found {
		since := now.UTC().Truncate(time.Second)
		c.learn(func(p *Protocol) { p.OneSocketSince = since })
		c.log.Warn("Ford closes a car's telemetry socket when another car's opens on the same sign-in: streaming one car at a time (the car last used), the others read on the poll interval; checked again in a day. "+
			"To stream every car, give each its own sign-in: FORD_ACCOUNTS with one car each (README, \"Several accounts\")",
			zap.Int("displaced", displaceCount), zap.Duration("within", displaceSpan))
	}
	return true
}

// OneSocket reports whether Ford allows one telemetry socket per token
// now, as the client last found (see socketWatch): the bridge then
// streams one car and reads the others on the poll interval.
func (c *Client) OneSocket() bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.oneSocketLocked(now)
}

func (c *Client) oneSocketLocked(now time.Time) bool { return c.proto.OneSocketAt(now) }

// OneSocketAt says whether the finding of one socket per token holds at
// now (it lapses oneSocketRecheck after it was made).
func (p Protocol) OneSocketAt(now time.Time) bool {
	return !p.OneSocketSince.IsZero() && now.Sub(p.OneSocketSince) < oneSocketRecheck
}
