package bridge

import (
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// slowBroker acknowledges publishes only when the test lets it, and counts
// how many were outstanding at most.
type slowBroker struct {
	mqtt.Client // only Publish is used
	mu          sync.Mutex
	outstanding []chan struct{}
	most, total int
}

type heldToken struct{ done chan struct{} }

func (t heldToken) Wait() bool { <-t.done; return true }
func (t heldToken) WaitTimeout(d time.Duration) bool {
	select {
	case <-t.done:
		return true
	case <-time.After(d):
		return false
	}
}
func (t heldToken) Done() <-chan struct{} { return t.done }
func (t heldToken) Error() error          { return nil }

func (s *slowBroker) Publish(string, byte, bool, any) mqtt.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	done := make(chan struct{})
	s.outstanding = append(s.outstanding, done)
	s.total++
	s.most = max(s.most, len(s.outstanding))
	return heldToken{done}
}

// ackOne acknowledges the oldest outstanding publish, if any.
func (s *slowBroker) ackOne() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.outstanding) > 0 {
		close(s.outstanding[0])
		s.outstanding = s.outstanding[1:]
	}
}

// A fleet's device configs (a thousand cars at start, or all of them when
// Home Assistant restarts) must not pile up in the client: 40 cars asking
// at once have at most configsInFlight configs outstanding, and all are
// sent.
func TestDeviceConfigsInFlightAreBounded(t *testing.T) {
	t.Parallel()
	b := &slowBroker{}
	p := &publisher{client: b, configSlots: make(chan struct{}, configsInFlight)}
	p.disc.last, p.disc.removal = map[string][32]byte{}, map[string][32]byte{}
	p.disc.onBroker, p.disc.leftover = map[string]components{}, map[string]map[string]string{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.publishConfig(fmt.Sprintf("homeassistant/device/car%d/config", i), []byte(`{"dev":{}}`), false)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.total != 40 || b.most > configsInFlight {
				t.Fatalf("%d configs sent, at most %d outstanding; want 40 and at most %d", b.total, b.most, configsInFlight)
			}
			return
		case <-time.After(time.Millisecond):
			b.ackOne()
		}
	}
}
