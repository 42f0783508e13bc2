package bridge

import (
	"crypto/sha256"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/discovery"
)

// publisher owns the broker connection and what went out on it: the
// retained state (to republish after a reconnect), the discovery hashes and
// the connection history. Every publish goes through it.
type publisher struct {
	*core
	client    mqtt.Client
	connected atomic.Bool
	cache     retainedCache
	// disc holds a hash of each discovery config last published, and the
	// components each device has on the broker as far as the bridge knows
	// (from its own publishing, or a config retained from before).
	disc struct {
		sync.Mutex
		last     map[string][32]byte   // discovery topic → SHA-256 of the payload
		removal  map[string][32]byte   // discovery topic → SHA-256 of the last removal sent before it
		onBroker map[string]components // discovery topic → the device's components
		// leftover: components a config from before holds that the
		// device does not have as such (gone, or on another platform),
		// removed at the device's next publish.
		leftover map[string]map[string]string
	}
	// conns are the broker connections in the last hour.
	conns struct {
		sync.Mutex
		at []time.Time
	}
	broker      brokerState   // why the broker cannot be reached, if it cannot
	configSlots chan struct{} // device configs in flight (configsInFlight)
	// everConnected: the broker was reached once (paho's retry pace differs
	// before and after).
	everConnected atomic.Bool
	// held are the events reached while the broker was unreachable,
	// delivered in order at the next connect (publishEvent).
	held struct {
		sync.Mutex
		msgs    []heldEvent
		dropped int // dropped beyond maxHeld since the last delivery
	}
	echo echoCheck // publishes to P/+/state that have not come back yet
	// birthPending: a discovery republish for Home Assistant's birth is
	// scheduled; more births until it runs add nothing.
	birthPending atomic.Bool
	lastBirth    atomic.Int64 // unix nanoseconds of the last birth republish
}

// clearDemo removes what the demo retained on the broker (its state topics
// and its Home Assistant devices), so a demo on a real broker leaves
// nothing behind.
func (b *Bridge) clearDemo() {
	var last mqtt.Token
	states := 0
	b.retained(func(topic, _ string) {
		last = b.pub.client.Publish(topic, 1, true, []byte{})
		states++
	})
	b.pub.disc.Lock()
	configs := make([]string, 0, len(b.pub.disc.last))
	for topic := range b.pub.disc.last {
		configs = append(configs, topic)
	}
	b.pub.disc.Unlock()
	for _, topic := range configs {
		last = b.pub.client.Publish(topic, 1, true, []byte{})
	}
	if last != nil {
		_ = WaitToken(last, 3*time.Second)
	}
	b.log.Info("demo: cleared its retained topics and Home Assistant devices", zap.Int("topics", len(configs)+states))
}

func (b *Bridge) onConnect(c mqtt.Client) {
	b.pub.connected.Store(true)
	b.m.setConnected(true)
	b.pub.conns.Lock()
	now := b.now()
	b.pub.conns.at = append(b.pub.conns.at, now)
	for len(b.pub.conns.at) > 0 && now.Sub(b.pub.conns.at[0]) > time.Hour {
		b.pub.conns.at = b.pub.conns.at[1:]
	}
	n := len(b.pub.conns.at)
	b.pub.conns.Unlock()
	if n > 5 {
		b.log.Warn("connected to the broker again; another client may be using MQTT_CLIENT_ID", zap.Int("connections_last_hour", n))
	} else {
		b.log.Info("connected to the broker")
	}
	// P/+/state: the bridge's own publishes, to see them come back.
	subs := map[string]byte{b.t.AllCommands(): 1, b.t.Doctor(): 1, b.p + "/+/state": 1}
	for _, topic := range b.codeTopics() {
		subs[topic] = 1
	}
	if b.named() {
		subs[b.t.CodeSet()] = 1 // only to say where a code goes now
	}
	if b.cfg.HADiscovery {
		subs[b.cfg.HADiscoveryPrefix+"/status"] = 1
		// The device configs on the broker, to remove what a config from
		// before holds and the device no longer has.
		subs[b.cfg.HADiscoveryPrefix+"/device/+/config"] = 1
	}
	// online says the bridge takes commands: it goes out once the broker
	// has the subscriptions (paho runs this in a goroutine of its own).
	if err := WaitToken(c.SubscribeMultiple(subs, b.route), 10*time.Second); err != nil {
		b.log.Error("subscribing failed", zap.Error(err))
	}
	c.Publish(b.t.Availability(), 1, true, "online")
	// Everything retained goes out again: the broker may have lost it.
	b.retained(func(topic, payload string) {
		if b.pub.watched(topic) {
			b.pub.echoSent(topic, b.now())
		}
		c.Publish(topic, 1, true, payload)
	})
	b.publishInfo(true)
	if b.cfg.HADiscovery {
		b.publishDiscovery(true)
	}
	b.pub.deliverHeld(c)
}

func (b *Bridge) onConnectionLost(err error) {
	b.pub.connected.Store(false)
	b.m.setConnected(false)
	b.log.Warn("lost the broker; reconnecting", zap.Error(err))
}

// route dispatches an incoming message (paho runs it in its own goroutine).
func (b *Bridge) route(_ mqtt.Client, msg mqtt.Message) {
	topic := msg.Topic()
	switch {
	case b.pub.watched(topic):
		b.pub.echoed(topic)
	case b.codeAccount(topic) != nil:
		b.codeAccount(topic).auth.onCode(msg)
	case topic == b.t.CodeSet():
		// With FORD_ACCOUNTS a code names its account by its topic; one
		// here would sign in the wrong account, so it is dropped unused.
		if len(msg.Payload()) > 0 {
			b.pub.client.Publish(topic, 1, true, []byte{})
			b.log.Warn("a sign-in code on the topic of one account was ignored: with FORD_ACCOUNTS each account takes its code on its own topic",
				zap.Strings("topics", b.codeTopics()))
		}
	case topic == b.t.Doctor():
		var r Report
		switch {
		case len(msg.Payload()) == 0:
		case json.Unmarshal(msg.Payload(), &r) != nil || len(r.Checks) == 0:
			b.log.Debug("ignoring an unreadable report on the doctor topic")
		case !verifyReport(b.reportKey, r):
			b.log.Debug("ignoring a doctor report not signed by doctor on this installation (STATE_DIR's doctor.key)")
		default:
			b.doctor.Store(&r)
		}
	case b.cfg.HADiscovery && topic == b.cfg.HADiscoveryPrefix+"/status":
		if strings.TrimSpace(string(msg.Payload())) == "online" {
			// One republish per burst of births, however many arrive, and
			// at most one per cooldown (ten times the jitter) after that.
			if !b.pub.birthPending.CompareAndSwap(false, true) {
				return
			}
			delay := time.Duration(rand.Int64N(int64(b.opts.DiscoveryDelay)))
			if next := time.Unix(0, b.pub.lastBirth.Load()).Add(10 * b.opts.DiscoveryDelay); time.Until(next) > delay {
				delay = time.Until(next)
			}
			b.log.Debug("Home Assistant came online; republishing discovery", zap.Duration("in", delay))
			time.AfterFunc(delay, func() {
				b.pub.lastBirth.Store(time.Now().UnixNano())
				b.pub.birthPending.Store(false)
				b.publishDiscovery(true)
				b.retained(func(topic, payload string) { b.pub.client.Publish(topic, 1, true, payload) })
			})
		}
	default:
		if vin := b.t.CommandVIN(topic); vin != "" {
			b.onCommand(vin, msg)
			return
		}
		if b.cfg.HADiscovery {
			// A config from before arrives retained when the bridge
			// subscribes; one published now (its own, echoed back, even
			// late) arrives live and is not looked at.
			if vin, ok := discovery.OwnsConfig(b.discoverySettings(), topic); ok && msg.Retained() {
				b.onOwnConfig(topic, vin, msg.Payload())
			}
		}
	}
}

// publishState publishes a retained state value if it changed, and says
// whether it did.
func (p *publisher) publishState(topic, payload string) bool {
	return p.cache.set(topic, payload, func() { p.publishRetained(topic, payload) })
}

func (p *publisher) publishRetained(topic, payload string) {
	p.m.published.Inc()
	if p.client != nil && p.connected.Load() {
		if p.watched(topic) {
			p.echoSent(topic, p.now())
		}
		p.client.Publish(topic, 1, true, payload)
	}
}

// retained is every retained state topic with its payload: the bridge's own
// (cached) and each car's (from what it last published).
func (b *Bridge) retained(f func(topic, payload string)) {
	b.pub.cache.each(f)
	for _, v := range b.cars() {
		v.eachRetained(f)
		v.eachAvailability(f)
	}
}

// publishEvent publishes a non-retained message (a command's result). An
// event reached while the broker is unreachable, or whose publish the
// connection lost, is held and delivered in order after the next connect:
// a flow waiting for a command's id gets its result (at least once). The
// token is nil when the event was held.
func (p *publisher) publishEvent(topic string, v any) mqtt.Token {
	data, _ := json.Marshal(v)
	p.held.Lock()
	defer p.held.Unlock()
	if p.client == nil || !p.connected.Load() {
		p.holdLocked(topic, data)
		return nil
	}
	p.deliverHeldLocked(p.client) // older ones first
	tok := p.client.Publish(topic, 1, false, data)
	go func() {
		// Lost on the way (the connection dropped before the broker took
		// it): held for the next connect. paho gives up on a publish it
		// cannot send; a late duplicate is better than a lost result.
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			p.held.Lock()
			p.holdLocked(topic, data)
			p.held.Unlock()
		}
	}()
	return tok
}

// maxHeld bounds the events held while the broker is unreachable.
const maxHeld = 100

// holdLocked keeps an event for the next connect, dropping the oldest
// beyond maxHeld; p.held held.
func (p *publisher) holdLocked(topic string, data []byte) {
	if len(p.held.msgs) >= maxHeld {
		p.held.msgs = p.held.msgs[1:]
		p.held.dropped++
	}
	p.held.msgs = append(p.held.msgs, heldEvent{topic: topic, data: data})
}

// deliverHeld publishes the held events in order (after a connect).
func (p *publisher) deliverHeld(c mqtt.Client) {
	p.held.Lock()
	defer p.held.Unlock()
	p.deliverHeldLocked(c)
}

func (p *publisher) deliverHeldLocked(c mqtt.Client) {
	if n := p.held.dropped; n > 0 {
		p.log.Warn("the broker was unreachable for long: the oldest command results were dropped, the last ones are delivered",
			zap.Int("dropped", n), zap.Int("delivered", len(p.held.msgs)))
		p.held.dropped = 0
	}
	if len(p.held.msgs) > 0 {
		p.log.Info("delivering the command results reached while the broker was unreachable", zap.Int("results", len(p.held.msgs)))
	}
	for _, m := range p.held.msgs {
		c.Publish(m.topic, 1, false, m.data)
	}
	p.held.msgs = nil
}

// heldEvent is an event waiting for the broker.
type heldEvent struct {
	topic string
	data  []byte
}

func (b *Bridge) info() Info {
	b.pub.conns.Lock()
	reconnects := max(len(b.pub.conns.at)-1, 0)
	b.pub.conns.Unlock()
	info := Info{Version: b.opts.Version, StartedAt: b.start, VINs: []string{}, Instance: b.instance, Reconnects1h: reconnects,
		Demo: b.cfg.Demo, Dark: b.darkCars()}
	for _, a := range b.accounts {
		bud := a.ford.Budget()
		ai := AccountInfo{Name: a.name, VINs: a.fleet.bridgedVINs(), Calls24h: bud.Used(), CallBudget: bud.Limit()}
		info.VINs = append(info.VINs, ai.VINs...)
		info.Calls24h += ai.Calls24h
		info.CallBudget += ai.CallBudget
		if a.name != "" {
			info.Accounts = append(info.Accounts, ai)
		}
	}
	return info
}

func (b *Bridge) publishInfo(force bool) {
	data, _ := json.Marshal(b.info())
	topic := b.t.Info()
	if force {
		b.pub.cache.forget(topic)
	}
	b.pub.publishState(topic, string(data))
}

func (b *Bridge) discoverySettings() discovery.Settings {
	s := discovery.Settings{DiscoveryPrefix: b.cfg.HADiscoveryPrefix, TopicPrefix: b.p, Version: b.opts.Version,
		PublicURL: b.cfg.HTTPPublicURL, Demo: b.cfg.Demo}
	for _, a := range b.accounts {
		if a.name != "" {
			s.Accounts = append(s.Accounts, a.name)
		}
	}
	return s
}

// publishDiscovery publishes every device config whose payload changed
// (force: all of them), and an empty retained config for every vehicle no
// longer bridged. It only reads the cache: it never calls Ford.
func (b *Bridge) publishDiscovery(force bool) {
	if !b.cfg.HADiscovery || b.pub.client == nil || !b.pub.connected.Load() {
		return
	}
	// One config at a time, built when its turn comes: a fleet's configs
	// together weigh megabytes (about 23 KB a car).
	s := b.discoverySettings()
	t, p := discovery.Bridge(s)
	b.pub.publishConfig(t, p, force)
	for _, vin := range b.staleVINs() {
		b.pub.publishConfig(discovery.VehicleTopic(s, vin), []byte{}, force)
	}
	for _, v := range b.cars() {
		if info, ok := v.discoveryInfo(); ok {
			t, p := discovery.Vehicle(s, info)
			b.pub.publishConfig(t, p, force)
		}
	}
}

// publishVehicleDiscovery publishes one vehicle's config if it changed.
func (b *Bridge) publishVehicleDiscovery(v *vehicle) {
	if !b.cfg.HADiscovery || b.pub.client == nil || !b.pub.connected.Load() {
		return
	}
	// One at a time per car, each reading the car as it is then: two
	// changes at once (the messages' entity and a location's) could
	// otherwise send the older config last, and Home Assistant keep it.
	v.discMu.Lock()
	defer v.discMu.Unlock()
	if info, ok := v.discoveryInfo(); ok {
		t, p := discovery.Vehicle(b.discoverySettings(), info)
		b.pub.publishConfig(t, p, false)
	}
}

// configsInFlight bounds the device configs published and not yet
// acknowledged by the broker: a fleet's start (or Home Assistant's
// restart) would otherwise queue a thousand of them in the client at once.
const configsInFlight = 4

// publishConfig publishes a device config unless it is what was last sent
// (force: even then). A hash is kept, not the payload. A component the
// device had on the broker and no longer has goes out once as its platform
// alone (Home Assistant's way to remove it), then the config without it.
// It returns once the broker has the config (or after five seconds), with
// at most configsInFlight configs outstanding.
func (p *publisher) publishConfig(topic string, payload []byte, force bool) {
	sum := sha256.Sum256(payload)
	p.disc.Lock()
	if last, seen := p.disc.last[topic]; seen && last == sum && !force && p.disc.leftover[topic] == nil {
		// What was sent, and nothing from before to remove: the common
		// case of a fleet's republish, decided without reading the config.
		p.disc.Unlock()
		return
	}
	p.disc.Unlock()
	now := discovery.Platforms(payload)
	p.disc.Lock()
	gone := map[string]string{}
	if len(payload) > 0 {
		p.disc.onBroker[topic].each(func(k, platform string) {
			if now[k] != platform {
				gone[k] = platform
			}
		})
		for k, platform := range p.disc.leftover[topic] {
			if now[k] != platform {
				gone[k] = platform
			}
		}
	}
	delete(p.disc.leftover, topic)
	last, seen := p.disc.last[topic]
	p.disc.last[topic] = sum
	p.disc.onBroker[topic] = componentsOf(now)
	p.disc.Unlock()
	if seen && last == sum && !force && len(gone) == 0 {
		return
	}
	p.configSlots <- struct{}{}
	defer func() { <-p.configSlots }()
	if len(gone) > 0 {
		removal := discovery.WithRemovals(payload, gone)
		p.disc.Lock()
		p.disc.removal[topic] = sha256.Sum256(removal)
		p.disc.Unlock()
		p.client.Publish(topic, 1, true, removal).WaitTimeout(5 * time.Second)
	}
	p.client.Publish(topic, 1, true, payload).WaitTimeout(5 * time.Second)
}

// onOwnConfig takes a device config this bridge's settings publish, seen on
// the broker: one retained from before (an earlier run, another version)
// may hold components the device no longer has. They are remembered, and
// the device is published again, so they go out as removals.
func (b *Bridge) onOwnConfig(topic, vin string, payload []byte) {
	if len(payload) == 0 {
		return
	}
	sum := sha256.Sum256(payload)
	got := discovery.Platforms(payload)
	b.pub.disc.Lock()
	if b.pub.disc.last[topic] == sum || b.pub.disc.removal[topic] == sum {
		b.pub.disc.Unlock()
		return // what the bridge itself sent
	}
	mine := map[string]string{}
	b.pub.disc.onBroker[topic].each(func(k, platform string) { mine[k] = platform })
	stale := false // it holds components this bridge has not published
	for k, platform := range got {
		if platform == "" || mine[k] == platform {
			continue
		}
		// Removed at the next publish of the device (also when a key
		// the device still has changed platform).
		if b.pub.disc.leftover[topic] == nil {
			b.pub.disc.leftover[topic] = map[string]string{}
		}
		b.pub.disc.leftover[topic][k] = platform
		stale = true
	}
	b.pub.disc.Unlock()
	if !stale || !b.cfg.HADiscovery {
		return
	}
	b.log.Debug("a device config from before holds components the device no longer has; publishing their removal", zap.String("topic", topic))
	// Not on paho's delivery goroutine: publishing waits for the broker.
	go func() {
		if vin == "" {
			t, p := discovery.Bridge(b.discoverySettings())
			b.pub.publishConfig(t, p, true)
		} else if _, v := b.carAccount(vin); v != nil {
			b.publishVehicleDiscovery(v)
		}
	}()
}
