// The measuring MQTT client and the floors it compares with.

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// subscriber is the measuring MQTT client.
type subscriber struct {
	c     mqtt.Client
	mu    sync.Mutex
	last  map[string]string
	n     int
	echo1 chan time.Time
	resp1 chan time.Time
	// arrived records, from the client callback, when each command id's
	// result of each status came in ("id/status" → time).
	arrived map[string]time.Time
}

func newSubscriber(url, filter string) (*subscriber, error) {
	s := &subscriber{last: map[string]string{}, echo1: make(chan time.Time, 1), resp1: make(chan time.Time, 1), arrived: map[string]time.Time{}}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("bench-%d", time.Now().UnixNano())).SetCleanSession(true)
	s.c = mqtt.NewClient(o)
	if t := s.c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("bench subscriber: %v", t.Error())
	}
	t := s.c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		now := time.Now()
		if strings.HasSuffix(m.Topic(), "/bench/echo") {
			s.echo1 <- now
			return
		}
		if strings.HasSuffix(m.Topic(), "/bench/res") {
			s.resp1 <- now
			return
		}
		if strings.HasSuffix(m.Topic(), "/command/result") {
			var res struct{ ID, Status string }
			if json.Unmarshal(m.Payload(), &res) == nil {
				s.mu.Lock()
				s.arrived[res.ID+"/"+res.Status] = now
				s.mu.Unlock()
			}
		}
		s.mu.Lock()
		s.last[m.Topic()] = string(m.Payload())
		s.n++
		s.mu.Unlock()
	})
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("bench subscribe: %v", t.Error())
	}
	return s, nil
}

func (s *subscriber) close() { s.c.Disconnect(100) }

func (s *subscriber) clearRetained(prefix string) {
	time.Sleep(300 * time.Millisecond)
	s.mu.Lock()
	topics := make([]string, 0, len(s.last))
	for t := range s.last {
		topics = append(topics, t)
	}
	s.last = map[string]string{}
	s.mu.Unlock()
	for _, t := range topics {
		s.c.Publish(t, 1, true, []byte{}).WaitTimeout(time.Second)
	}
	time.Sleep(300 * time.Millisecond)
	s.mu.Lock()
	s.last = map[string]string{}
	s.mu.Unlock()
}

func (s *subscriber) publish(topic, payload string) {
	s.c.Publish(topic, 1, false, payload).WaitTimeout(5 * time.Second)
}

func (s *subscriber) has(topic string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.last[topic]
	return ok && v != ""
}

func (s *subscriber) value(topic string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[topic]
}

func (s *subscriber) count(suffix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for t, v := range s.last {
		if strings.HasSuffix(t, suffix) && v != "" {
			n++
		}
	}
	return n
}

func (s *subscriber) resetCount()  { s.mu.Lock(); s.n = 0; s.mu.Unlock() }
func (s *subscriber) counted() int { s.mu.Lock(); defer s.mu.Unlock(); return s.n }

func (s *subscriber) waitFor(ok func() bool, d time.Duration) bool { return waitUntil(ok, d) }

// echo is the median round trip of a message through the broker back to
// the same client: the floor any command path through MQTT pays twice.
func (s *subscriber) echo(topic string, n int) (time.Duration, error) {
	return medianRoundTrip(s.c, topic, s.echo1, n, 0)
}

// floor is the median round trip of a request through the broker to a
// minimal responder (a paho client that answers at once) and back: what a
// command's "accepted" cannot beat, as it makes the same two hops. It is
// measured twice. hot: the responder in this process, requests back to
// back, so neither side ever sleeps. paced: the responder in its own
// process and a 2 ms pause before each request, as the commands have (the
// harness polls for a command's success every 2 ms), so the responder's
// threads are parked when a request arrives, as the bridge's are; that is
// the floor "accepted" is compared with.
func (s *subscriber) floor(url, prefix string, n int) (hot, paced time.Duration, err error) {
	r, err := startResponder(url, prefix)
	if err != nil {
		return 0, 0, err
	}
	hot, err = medianRoundTrip(s.c, prefix+"/bench/req", s.resp1, n, 0)
	r.Disconnect(100)
	if err != nil {
		return 0, 0, err
	}

	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), responderEnv+"="+url+" "+prefix)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("responder process: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ready := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(out, ready); err != nil {
		return 0, 0, fmt.Errorf("responder process did not start: %w", err)
	}
	paced, err = medianRoundTrip(s.c, prefix+"/bench/req", s.resp1, n, 2*time.Millisecond)
	return hot, paced, err
}

// medianRoundTrip publishes n requests on topic, pausing before each, and
// returns the median time until the reply's arrival is reported on replies.
func medianRoundTrip(c mqtt.Client, topic string, replies <-chan time.Time, n int, pause time.Duration) (time.Duration, error) {
	var rtts []time.Duration
	for i := 0; i < n; i++ {
		time.Sleep(pause)
		t0 := time.Now()
		c.Publish(topic, 1, false, "req")
		select {
		case at := <-replies:
			rtts = append(rtts, at.Sub(t0))
		case <-time.After(5 * time.Second):
			return 0, fmt.Errorf("no reply on %s within 5 s", topic)
		}
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], nil
}

// startResponder connects a minimal responder: it answers every request on
// PREFIX/bench/req on PREFIX/bench/res at once.
func startResponder(url, prefix string) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("bench-responder-%d-%d", os.Getpid(), time.Now().UnixNano())).SetCleanSession(true)
	r := mqtt.NewClient(o)
	if t := r.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("responder: %v", t.Error())
	}
	if t := r.Subscribe(prefix+"/bench/req", 1, func(c mqtt.Client, m mqtt.Message) {
		c.Publish(prefix+"/bench/res", 1, false, m.Payload())
	}); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		r.Disconnect(100)
		return nil, fmt.Errorf("responder subscribe: %v", t.Error())
	}
	return r, nil
}

// respond is the responder process: a responder that says "ready" once
// subscribed and runs until the harness kills it.
func respond(spec string) int {
	url, prefix, ok := strings.Cut(spec, " ")
	if !ok {
		fmt.Fprintln(os.Stderr, responderEnv+" must be \"brokerURL topicPrefix\"")
		return 2
	}
	if _, err := startResponder(url, prefix); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	select {}
}

func (s *subscriber) arrival(key string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.arrived[key]
	return t, ok
}

func waitUntil(ok func() bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}
