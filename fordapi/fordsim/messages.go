package fordsim

import (
	"net/http"
	"slices"
	"strconv"
)

// simMessage is one message of the message centre: relevantVin "" is for
// every car of its account (ha-fordpass reads these keys).
type simMessage struct {
	id                               int64
	account                          int
	vin, typ, subject, body, created string
}

// messageList answers the message centre of the token's account, newest
// first, under result.messages as Ford does (ha-fordpass fordpass_bridge.py,
// messages). Ids go out as strings, as ha-fordpass's int() expects them.
func (s *Sim) messageList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fordHostAuth(w, r) {
		return
	}
	account := s.owner[r.Header.Get("auth-token")].account
	list := []any{}
	for _, m := range slices.Backward(s.messages) {
		if m.account == account {
			list = append(list, map[string]any{"messageId": strconv.FormatInt(m.id, 10), "relevantVin": m.vin, "createdDate": m.created,
				"messageType": m.typ, "messageSubject": m.subject, "messageBody": m.body})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": 200, "result": map[string]any{"messages": list}})
}

// deleteMessages takes {"messageIds":[…]} (numbers) and deletes those of
// the token's account; an id of another account or none is left alone.
func (s *Sim) deleteMessages(w http.ResponseWriter, r *http.Request) {
	var body struct {
		IDs []int64 `json:"messageIds"`
	}
	if !decodeBody(r, &body) || len(body.IDs) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": 400, "message": "messageIds must be a list of numbers"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fordHostAuth(w, r) {
		return
	}
	account := s.owner[r.Header.Get("auth-token")].account
	n := len(s.messages)
	s.messages = slices.DeleteFunc(s.messages, func(m simMessage) bool { return m.account == account && slices.Contains(body.IDs, m.id) })
	writeJSON(w, http.StatusOK, map[string]any{"status": 200, "result": map[string]any{"deleted": n - len(s.messages)}})
}
