package fordapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// The message centre, on the foundational host with the FordPass token
// (ha-fordpass fordpass_bridge.py, messages and delete_messages;
// FORDPASS-API.md §2.3).
const (
	PathMessages       = "/api/messagecenter/v3/messages"
	PathDeleteMessages = "/api/messagecenter/v3/user/messages"
)

// Message is one message of the account's message centre. ha-fordpass reads
// these keys (fordpass_handler.py, get_messages_attrs and
// messages_delete_all): messageId, relevantVin ("" for every car of the
// account), createdDate, messageType, messageSubject and messageBody.
type Message struct {
	ID      string `json:"id"`
	VIN     string `json:"vin,omitempty"` // "": every car of the account
	Created string `json:"created"`
	Type    string `json:"type"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// For reports whether the message is about the car vin.
func (m Message) For(vin string) bool { return m.VIN == "" || m.VIN == vin }

// maxMessages bounds the messages kept of one answer; maxMessageBody a
// message's body.
const (
	maxMessages    = 50
	maxMessageBody = 2000
)

// Messages reads the account's message centre: one call, in the telemetry
// share of the budget unless ctx says otherwise.
func (c *Client) Messages(ctx context.Context) ([]Message, error) {
	resp, err := c.authedCall(ctx, c.catLayer(), request{endpoint: "messages", method: http.MethodGet, url: c.hosts.foundational + PathMessages})
	if err != nil {
		return nil, fmt.Errorf("reading the message centre: %w", err)
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("reading the message centre: %w", fordError("messages", resp))
	}
	var doc struct {
		Result struct {
			Messages []struct {
				ID      json.Number `json:"messageId"`
				VIN     string      `json:"relevantVin"`
				Created string      `json:"createdDate"`
				Type    string      `json:"messageType"`
				Subject string      `json:"messageSubject"`
				Body    string      `json:"messageBody"`
			} `json:"messages"`
		} `json:"result"`
	}
	if err := json.Unmarshal(resp.body, &doc); err != nil {
		return nil, fmt.Errorf("reading the message centre: Ford's answer is not the message list: %w", err)
	}
	out := make([]Message, 0, min(len(doc.Result.Messages), maxMessages))
	for _, m := range doc.Result.Messages {
		if len(out) == maxMessages {
			break
		}
		if _, err := strconv.ParseInt(m.ID.String(), 10, 64); err != nil {
			continue // not a message that can be deleted: ha-fordpass sends ids as numbers
		}
		out = append(out, Message{ID: m.ID.String(), VIN: Clip(m.VIN, 17), Created: Clip(m.Created, 40), Type: Clip(m.Type, 60),
			Subject: Clip(m.Subject, 200), Body: Clip(m.Body, maxMessageBody)})
	}
	return out, nil
}

// DeleteMessages deletes messages of the message centre by id, as
// ha-fordpass does ({"messageIds":[…]} as numbers), in the command share
// of the budget.
func (c *Client) DeleteMessages(ctx context.Context, ids []string) error {
	nums := make([]int64, 0, len(ids))
	for _, id := range ids {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return fmt.Errorf("deleting messages: %q is not a message id", Clip(id, 30))
		}
		nums = append(nums, n)
	}
	body, _ := json.Marshal(map[string]any{"messageIds": nums})
	resp, err := c.authedCall(ForCommand(ctx), c.catLayer(), request{endpoint: "messages_delete", method: http.MethodDelete,
		url: c.hosts.foundational + PathDeleteMessages, body: body})
	if err != nil {
		return fmt.Errorf("deleting messages: %w", err)
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("deleting messages: %w", fordError("messages_delete", resp))
	}
	return nil
}
