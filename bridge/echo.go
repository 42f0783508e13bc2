package bridge

import (
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The broker may take the bridge's publishes and drop them: an ACL that
// denies the client a topic makes mosquitto acknowledge a QoS 1 publish
// under MQTT 3.1.1 and deliver it to no one, so the publisher cannot tell.
// The bridge subscribes to its own P/+/state topics (each car's state JSON
// on every change, and P/auth/state) and checks that what it publishes
// there comes back; when a publish has not come back within
// Options.EchoGrace while connected, it says so once (log, /healthz, doctor).

// echoCheck follows the bridge's publishes to P/+/state and their echoes.
type echoCheck struct {
	mu   sync.Mutex
	sent map[string]time.Time // topic → the last publish not yet echoed
	lost []string             // the topics reported lost, sorted ("" while none)
}

// watched says whether topic is one whose echo is checked: P/x/state.
func (p *publisher) watched(topic string) bool {
	rest, ok := strings.CutPrefix(topic, p.p+"/")
	if !ok {
		return false
	}
	x, ok := strings.CutSuffix(rest, "/state")
	return ok && x != "" && !strings.Contains(x, "/")
}

// echoSent records a publish to a watched topic.
func (p *publisher) echoSent(topic string, now time.Time) {
	p.echo.mu.Lock()
	if p.echo.sent == nil {
		p.echo.sent = map[string]time.Time{}
	}
	if _, waiting := p.echo.sent[topic]; !waiting {
		p.echo.sent[topic] = now // the oldest publish still unanswered counts
	}
	p.echo.mu.Unlock()
}

// echoed records that a watched topic came back from the broker.
func (p *publisher) echoed(topic string) {
	p.echo.mu.Lock()
	delete(p.echo.sent, topic)
	p.echo.mu.Unlock()
}

// checkEchoes reports (once per change) the topics whose publishes have
// not come back within echoGrace while connected, and returns what
// /healthz and doctor say of it ("" when nothing is lost).
func (p *publisher) checkEchoes(now time.Time) string {
	if !p.connected.Load() {
		p.echo.mu.Lock()
		clear(p.echo.sent) // republished and checked anew after the connect
		p.echo.mu.Unlock()
		return p.lostSaying()
	}
	p.echo.mu.Lock()
	var lost []string
	for topic, at := range p.echo.sent {
		if now.Sub(at) >= p.opts.EchoGrace {
			lost = append(lost, topic)
		}
	}
	slices.Sort(lost)
	was := p.echo.lost
	p.echo.lost = lost
	p.echo.mu.Unlock()
	switch {
	case len(lost) > 0 && len(was) == 0:
		p.log.Error("the broker takes the bridge's publishes but they never come back to it: most likely its ACL does not let this client write (or read) its topics, and Home Assistant sees none of them",
			zap.Strings("topics", clipList(lost, 5)), zap.Int("topics_lost", len(lost)), zap.String("client_id", p.cfg.MQTTClientID))
	case len(lost) == 0 && len(was) > 0:
		p.log.Info("the bridge's publishes reach the broker's subscribers again")
	}
	return p.lostSaying()
}

// lostSaying is what /healthz and doctor say of lost publishes.
func (p *publisher) lostSaying() string {
	p.echo.mu.Lock()
	defer p.echo.mu.Unlock()
	if len(p.echo.lost) == 0 {
		return ""
	}
	return "the broker drops the bridge's publishes to " + strings.Join(clipList(p.echo.lost, 3), ", ") +
		" (they never come back to the bridge's own subscription): check the broker's ACL for client " + p.cfg.MQTTClientID +
		" — it must write and read " + p.p + "/#"
}

func clipList(l []string, n int) []string {
	if len(l) <= n {
		return l
	}
	return append(slices.Clone(l[:n]), "…")
}
