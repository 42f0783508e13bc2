package fordsim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// For the load harness (cmd/fordpass2mqtt-bench): a burst of updates that
// change nothing, and a token a program of its own can open a socket with.

// StreamToken mints an Autonomic token of account (1 with one account) that
// opens the telemetry socket, as one from a sign-in does.
func (s *Sim) StreamToken(account int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signIns++
	t := token("simauto-")
	s.auto[t] = s.now().Add(24 * time.Hour)
	s.owner[t] = signIn{account: max(account, 1), n: s.signIns}
	return t
}

// Burst sends n updates that change nothing to every open socket of the
// car: its odometer metric as it is, each time. Unlike a change, which a
// stuck client may miss, each frame waits (up to 5 s) for room in the
// socket's queue, so every frame is delivered.
func (s *Sim) Burst(vin string, n int) error {
	s.mu.Lock()
	v, ok := s.vehicles[strings.ToUpper(vin)]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("no simulated vehicle %s", vin)
	}
	m, _ := v.doc["metrics"].(map[string]any)
	frame, _ := json.Marshal(map[string]any{"_data": map[string]any{"metrics": map[string]any{"odometer": m["odometer"]}}})
	subs := make([]chan []byte, 0, len(v.subs))
	for ch := range v.subs {
		subs = append(subs, ch)
	}
	s.mu.Unlock()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for range n {
		for _, ch := range subs {
			t.Reset(5 * time.Second)
			select {
			case ch <- frame:
			case <-t.C:
				return fmt.Errorf("a socket of %s took no frame for 5 s", vin)
			}
		}
	}
	return nil
}
