package fordapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// SendCommand asks Ford to run a command (CmdLock, …) and returns its id.
// The call counts against the command share of the budget. A command of a
// version (the charging commands, ChargeVersion) goes to the newer
// command path with its type as Ford takes it there (WireType); version
// is "" for the others.
func (c *Client) SendCommand(ctx context.Context, vin, cmdType, version string, properties map[string]any) (string, error) {
	ctx = ForCommand(ctx)
	fields := map[string]any{"tags": map[string]any{}, "type": cmdType, "wakeUp": true}
	path := PathCommands(vin)
	if version != "" {
		fields["type"], fields["version"], path = WireType(cmdType, version), version, PathCommandsBeta(vin)
	}
	if properties != nil || version == "" {
		if properties == nil {
			properties = map[string]any{}
		}
		fields["properties"] = properties
	}
	body, _ := json.Marshal(fields)
	resp, err := c.authedCall(ctx, c.autonomicLayer(), request{endpoint: "command", method: http.MethodPost,
		url: c.hosts.autonomicAPI + path, body: body})
	if err != nil {
		if mayHaveArrived(err) {
			return "", fmt.Errorf("%w: the connection to Ford failed while sending %s (%v); the car may still act on it", ErrOutcomeUnknown, cmdType, err)
		}
		return "", fmt.Errorf("sending %s: %w", cmdType, err)
	}
	if resp.status < 200 || resp.status > 205 {
		return "", fmt.Errorf("sending %s: %w", cmdType, fordError("command", resp))
	}
	var r struct {
		ID            string `json:"id"`
		CommandID     string `json:"commandId"`
		CorrelationID string `json:"correlationId"`
	}
	_ = json.Unmarshal(resp.body, &r)
	id := cmp.Or(r.ID, cmp.Or(r.CommandID, r.CorrelationID))
	if id == "" {
		return "", fmt.Errorf("sending %s: %w", cmdType, &StatusError{Endpoint: "command", Status: resp.status, Message: "answer without a command id"})
	}
	return id, nil
}

// mayHaveArrived reports whether a failed call may still have reached Ford:
// a network fault other than one that happens before anything is sent (a
// refused connection, an unknown host). Answers, budget refusals, dead
// tokens and cancellations are decided.
func mayHaveArrived(err error) bool {
	var se *StatusError
	var dns *net.DNSError
	switch {
	case !IsTransient(err), errors.As(err, &se), errors.As(err, &dns),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return false
	}
	return true
}

// pollDelays is the wait before each status poll after a command: 2 s, then
// growing gaps, as the FordPass app's clients do.
var pollDelays = []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 20 * time.Second, 30 * time.Second, 45 * time.Second, 60 * time.Second}

// WaitCommand waits for a command's outcome. While updates from the
// car's telemetry stream are open, the outcome comes from the command states
// they carry, and Ford is not asked; when updates is nil, or closes because
// the stream ended, the car's record is polled with growing gaps, and each
// record read is handed to polled (which may be nil), so that what was
// fetched reaches the car's topics. It returns the final state on success,
// a *CommandError on failure, and ctx's error at its deadline.
func (c *Client) WaitCommand(ctx context.Context, vin, cmdType, id string, updates <-chan *Telemetry, polled func(*Telemetry)) (CommandState, error) {
	ctx = ForCommand(ctx)
	check := func(t *Telemetry) (CommandState, bool, error) {
		if t == nil {
			return CommandState{}, false, nil
		}
		cs, ok := t.Command(cmdType)
		if !ok || cs.ID != id {
			return CommandState{}, false, nil
		}
		switch cs.Outcome() {
		case "success":
			return cs, true, nil
		case "failed":
			return cs, true, &CommandError{Command: cmdType, State: strings.ToLower(cs.ToState), Detail: cs.Detail}
		}
		return cs, false, nil
	}
	for updates != nil {
		select {
		case <-ctx.Done():
			return CommandState{}, ctx.Err()
		case t, ok := <-updates:
			if !ok {
				updates = nil // the stream ended: poll from here
				break
			}
			if cs, done, err := check(t); done {
				return cs, err
			}
		}
	}
	for i := 0; ; i++ {
		timer := time.NewTimer(pollDelays[min(i, len(pollDelays)-1)])
		select {
		case <-ctx.Done():
			timer.Stop()
			return CommandState{}, ctx.Err()
		case <-timer.C:
		}
		t, err := c.Telemetry(ctx, vin)
		if err != nil {
			if ctx.Err() != nil {
				return CommandState{}, ctx.Err()
			}
			if !IsTransient(err) {
				return CommandState{}, fmt.Errorf("%w: Ford accepted the command, but its status check was refused: %w", ErrOutcomeUnknown, err)
			}
			c.log.Debug("command status poll failed; retrying", zap.String("command", cmdType), zap.Error(err))
			continue
		}
		if polled != nil {
			polled(t)
		}
		if cs, done, err := check(t); done {
			return cs, err
		}
	}
}
