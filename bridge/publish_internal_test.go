package bridge

import (
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
	"go.uber.org/zap"
)

// TestHeldResultsAreBounded: results reached while the broker is
// unreachable are held in order up to the last 100; older ones are
// dropped and counted.
func TestHeldResultsAreBounded(t *testing.T) {
	p := &publisher{core: &core{log: zap.NewNop()}}
	for i := range 150 {
		if tok := p.publishEvent("r", i); tok != nil {
			t.Fatal("published while disconnected")
		}
	}
	if len(p.held.msgs) != maxHeld || p.held.dropped != 50 || string(p.held.msgs[0].data) != "50" || string(p.held.msgs[99].data) != "149" {
		t.Fatalf("held %d (first %s), dropped %d", len(p.held.msgs), p.held.msgs[0].data, p.held.dropped)
	}
}

// orderBroker records every publish in the order the client was handed it.
type orderBroker struct {
	mqtt.Client // only Publish is used
	mu          sync.Mutex
	last        map[string]string
}

func (o *orderBroker) Publish(topic string, _ byte, _ bool, payload any) mqtt.Token {
	o.mu.Lock()
	o.last[topic] = payload.(string)
	o.mu.Unlock()
	return nil
}

// TestRepublishNeverOvertakesANewerValue: the republish of everything
// retained after a (re)connect runs while the auth state changes. What the
// broker keeps for each topic is the newest value, never the older one the
// republish had read before the change (a loaded run once left
// P/auth/detail saying "ok" under P/auth/state "rate_limited").
func TestRepublishNeverOvertakesANewerValue(t *testing.T) {
	rec := &orderBroker{last: map[string]string{}}
	c := &core{log: zap.NewNop(), m: NewMetrics(), p: "fp", t: mqttapi.New("fp"), now: time.Now}
	p := &publisher{core: c, client: rec, cache: retainedCache{m: map[string]string{}}}
	p.connected.Store(true)
	topics := []string{"fp/auth/state", "fp/auth/detail", "fp/auth/login_url"}
	const rounds = 2000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range rounds {
			for _, topic := range topics {
				p.publishState(topic, strconv.Itoa(i))
			}
		}
	}()
	republishes := 0
republish:
	for ; ; republishes++ {
		select {
		case <-done:
			break republish
		default:
		}
		p.cache.each(func(topic, payload string) {
			runtime.Gosched() // as a republish of many topics would: the writer runs between two
			rec.Publish(topic, 1, true, payload)
		})
	}
	want := strconv.Itoa(rounds - 1)
	for _, topic := range topics {
		if got := rec.last[topic]; got != want {
			t.Errorf("%s: the broker keeps %q, the bridge last published %q (%d republishes ran alongside)", topic, got, want, republishes)
		}
	}
}
