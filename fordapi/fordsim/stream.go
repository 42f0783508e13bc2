package fordsim

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// push sends a _data delta to the vehicle's websockets; s.mu held.
func (s *Sim) push(v *vehicle, delta map[string]any) {
	frame, _ := json.Marshal(map[string]any{"_data": delta})
	for ch := range v.subs {
		select {
		case ch <- frame:
		default: // a stuck client misses frames, as with Ford
		}
	}
}

var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}

func (s *Sim) stream(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	v := s.lookup(w, r)
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Unlock()
	if v == nil {
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	ch := make(chan []byte, 64)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	v.subs[ch] = struct{}{}
	displaced := make(chan struct{})
	who := s.owner[tok]
	if s.onePerToken {
		// Assumed: the socket is bound to one car per sign-in (its
		// tokens, however often refreshed); another sign-in's sockets,
		// of the same account or another, are not touched.
		for other, o := range s.sockets {
			if o == who {
				close(other)
				delete(s.sockets, other)
				s.stats.SocketsDisplaced++
			}
		}
	}
	if s.sockets == nil {
		s.sockets = map[chan struct{}]signIn{}
	}
	s.sockets[displaced] = who
	// The whole record goes first, as the app expects: a client builds
	// the car's state from the socket alone. Deltas from now on queue
	// behind it in ch.
	var first []byte
	if !s.deltasOnly {
		first, _ = json.Marshal(map[string]any{"_data": v.doc})
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(v.subs, ch)
		delete(s.sockets, displaced)
		s.mu.Unlock()
	}()

	incoming := make(chan []byte)
	go func() {
		defer close(incoming)
		conn.SetReadLimit(64 << 10)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			incoming <- data
		}
	}()
	send := func(v any) bool {
		data, _ := json.Marshal(v)
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return conn.WriteMessage(websocket.TextMessage, data) == nil
	}
	mode := func() string {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.now().Before(s.streamTo) {
			return s.streamMode
		}
		return ""
	}
	if mode() == "close" {
		return
	}
	if first != nil && mode() == "" {
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if conn.WriteMessage(websocket.TextMessage, first) != nil {
			return
		}
	}
	beat := time.NewTicker(s.opts.Heartbeat)
	defer beat.Stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		select {
		case <-displaced:
			// Assumed: Ford closes the older socket plainly, saying
			// nothing of why (no source shows how it closes it).
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return
		case frame, ok := <-ch:
			if !ok {
				return
			}
			switch mode() {
			case "stall":
				continue
			case "garbage":
				frame = []byte(`{"_data": not json`)
			case "close":
				return
			}
			_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if conn.WriteMessage(websocket.TextMessage, frame) != nil {
				return
			}
		case <-beat.C:
			switch mode() {
			case "stall":
				continue
			case "close":
				return
			case "garbage":
				_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if conn.WriteMessage(websocket.TextMessage, []byte("\x00garbage")) != nil {
					return
				}
				continue
			}
			if !send(map[string]any{"_data": map[string]any{"updateTime": s.now().UTC().Format(time.RFC3339)}}) {
				return
			}
		case <-check.C:
			s.mu.Lock()
			exp, ok := s.auto[tok]
			down := s.now().Before(s.outageTo) || s.now().Before(s.rateTo)
			s.mu.Unlock()
			if down {
				return // an outage drops the socket
			}
			if !ok || s.now().After(exp) {
				send(map[string]any{"_error": map[string]any{"code": 401, "message": "provided token was expired"}})
				return
			}
		case data, ok := <-incoming:
			if !ok {
				return
			}
			var msg struct {
				AccessToken string `json:"accessToken"`
			}
			if json.Unmarshal(data, &msg) != nil || msg.AccessToken == "" {
				continue
			}
			s.mu.Lock()
			exp, valid := s.auto[msg.AccessToken]
			valid = valid && s.now().Before(exp)
			if valid {
				s.stats.StreamTokens++
			}
			s.mu.Unlock()
			if !valid {
				send(map[string]any{"_error": map[string]any{"code": 401, "message": "provided token was expired"}})
				return
			}
			tok = msg.AccessToken
			if !send(map[string]any{"_httpStatus": 202}) {
				return
			}
		}
	}
}
