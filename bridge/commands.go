package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// Command results published on P/VIN/command/result.
const (
	ResultAccepted = "accepted"
	ResultSuccess  = "success"
	ResultFailed   = "failed"
	ResultTimeout  = "timeout"
	ResultRejected = "rejected"
)

// fordCommand maps the MQTT command names to Ford's command types.
var fordCommand = map[string]string{
	"lock": fordapi.CmdLock, "unlock": fordapi.CmdUnlock, "start": fordapi.CmdRemoteStart,
	"stop": fordapi.CmdCancelRemoteStart, "refresh": fordapi.CmdStatusRefresh, "horn": fordapi.CmdPanicCue,
}

// maxCommandPayload bounds a command message.
const maxCommandPayload = 4 << 10

// Result is one message on P/VIN/command/result.
type Result struct {
	ID      string    `json:"id"`
	Command string    `json:"command"`
	Status  string    `json:"status"`
	Error   string    `json:"error"` // empty unless failed, timeout or rejected
	At      time.Time `json:"at"`
}

// CommandRequest is a parsed command message.
type CommandRequest struct {
	Command string
	ID      string
}

var commandSeq atomic.Uint64

// ParseCommand reads a command payload: a bare word (any case) or JSON
// {"command": "lock", "id": "…"} ("transaction" is a synonym of "id").
// The returned request carries the id even when the command is bad, so the
// rejection can still be matched by the sender.
func ParseCommand(payload []byte) (CommandRequest, error) {
	if len(payload) > maxCommandPayload {
		return CommandRequest{}, fmt.Errorf("payload is %d bytes; a command is at most %d", len(payload), maxCommandPayload)
	}
	if !utf8.Valid(payload) {
		return CommandRequest{}, errors.New("payload is not UTF-8 text")
	}
	s := strings.TrimSpace(string(payload))
	if s == "" {
		return CommandRequest{}, errors.New("empty payload; send a command such as lock")
	}
	var req CommandRequest
	switch {
	case strings.HasPrefix(s, `"`): // a JSON string such as "lock"
		var word string
		if err := json.Unmarshal([]byte(s), &word); err != nil {
			return req, fmt.Errorf("malformed JSON string: %v", err)
		}
		s = word
	case strings.HasPrefix(s, "{") || strings.HasPrefix(s, "["):
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &raw); err != nil {
			return req, fmt.Errorf("malformed JSON: %v", err)
		}
		for _, key := range []string{"id", "transaction"} {
			v, ok := raw[key]
			if !ok || req.ID != "" {
				continue
			}
			var str string
			var num json.Number
			switch {
			case json.Unmarshal(v, &str) == nil:
				req.ID = str
			case json.Unmarshal(v, &num) == nil:
				req.ID = num.String()
			default:
				return req, fmt.Errorf("%q must be a string", key)
			}
		}
		if len(req.ID) > 200 {
			req.ID = req.ID[:200]
			return req, errors.New("id is longer than 200 characters")
		}
		cmd, ok := raw["command"]
		if !ok {
			return req, errors.New(`JSON without "command"; send {"command":"lock","id":"…"}`)
		}
		if err := json.Unmarshal(cmd, &s); err != nil {
			return req, errors.New(`"command" must be a string such as "lock"`)
		}
	}
	req.Command = strings.ToLower(strings.TrimSpace(s))
	if _, ok := fordCommand[req.Command]; !ok {
		shown := req.Command
		if len(shown) > 40 {
			shown = shown[:40] + "…"
		}
		return req, fmt.Errorf("unknown command %q; known: lock, unlock, start, stop, refresh, horn", shown)
	}
	return req, nil
}

// onCommand handles a message on P/VIN/command: it is checked at once
// (rejected with a reason, or accepted) and run in the car's queue.
func (b *Bridge) onCommand(vin string, msg mqtt.Message) {
	if len(msg.Payload()) == 0 {
		// An empty message is how a retained one is deleted (the bridge
		// itself does it below); it is not a command.
		return
	}
	// A command published with the retain flag while the bridge listens is
	// delivered without the flag (MQTT 3.1.1), so it would replay at the next
	// connect: clear the topic after every command.
	b.client.Publish(msg.Topic(), 1, true, []byte{})
	req, err := ParseCommand(msg.Payload())
	if req.ID == "" {
		req.ID = "cmd-" + strconv.FormatUint(commandSeq.Add(1), 10) + "-" + strconv.FormatInt(b.now().UnixMilli(), 36)
	}
	reject := func(reason string) {
		b.log.Warn("command rejected", zap.String("vin", fordapi.ShortVIN(vin)), zap.String("command", req.Command),
			zap.String("id", req.ID), zap.String("reason", reason))
		b.m.command(req.Command, ResultRejected)
		b.result(vin, req, ResultRejected, reason)
	}
	switch {
	case err != nil:
		reject(err.Error())
		return
	case msg.Retained():
		reject("retained command ignored: it was stored by the broker before the bridge connected, so running it now would be running it late; publish commands without the retain flag")
		return
	case !b.accepting.Load():
		reject("the bridge is shutting down")
		return
	case !b.cfg.Allowed(req.Command):
		reject(fmt.Sprintf("command %q is not allowed (COMMANDS_ALLOWED=%s)", req.Command, strings.Join(b.cfg.CommandsAllowed, ",")))
		return
	}
	v := b.vehicle(vin)
	if v == nil {
		reject("unknown vehicle " + fordapi.ShortVIN(vin) + "; see " + b.topic("bridge", "info") + " for the bridged VINs")
		return
	}
	info := b.gate.get()
	switch {
	case info.State == StateReauthRequired:
		reject("not signed in to FordPass: " + info.Reason)
		return
	case info.State == StateRateLimited && info.RetryAt != nil && b.now().Before(*info.RetryAt):
		reject("rate limited by Ford until " + info.RetryAt.Format(time.RFC3339))
		return
	}
	if at := b.ford.Budget().NextAllowed(true); at.After(b.now()) {
		reject("the daily Ford call budget is spent until " + at.UTC().Format(time.RFC3339))
		return
	}
	if req.Command == "refresh" {
		v.mu.Lock()
		last := v.lastRefresh
		ok := last.IsZero() || b.now().Sub(last) >= b.opts.RefreshEvery
		if ok {
			v.lastRefresh = b.now()
		}
		v.mu.Unlock()
		if !ok {
			reject(fmt.Sprintf("refresh wakes the car's modem and drains its 12 V battery; at most one every %s (next at %s)",
				b.opts.RefreshEvery, last.Add(b.opts.RefreshEvery).UTC().Format(time.RFC3339)))
			return
		}
	}
	b.commands.Add(1)
	b.result(vin, req, ResultAccepted, "")
	go func() {
		defer b.commands.Done()
		b.runCommand(v, req)
	}()
}

// runCommand runs one accepted command in the car's queue.
func (b *Bridge) runCommand(v *vehicle, req CommandRequest) {
	v.cmdMu.Lock()
	defer v.cmdMu.Unlock()
	log := b.log.With(zap.String("vin", fordapi.ShortVIN(v.vin)), zap.String("command", req.Command), zap.String("id", req.ID))
	ctx, cancel := context.WithTimeout(b.cmdCtx, b.opts.CommandTimeout)
	defer cancel()
	typ := fordCommand[req.Command]
	switch req.Command {
	case "lock":
		v.setLockShow("locking")
	case "unlock":
		v.setLockShow("unlocking")
	}
	updates, unwatch := v.watch()
	defer unwatch()
	var props map[string]any
	if typ == fordapi.CmdPanicCue {
		props = map[string]any{"duration": 3}
	}
	start := b.now()
	id, err := b.ford.SendCommand(ctx, v.vin, typ, props)
	if err == nil && typ != fordapi.CmdPanicCue { // Ford reports no outcome for the horn
		_, err = b.ford.WaitCommand(ctx, v.vin, typ, id, updates)
	}
	status := ResultSuccess
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		status = ResultTimeout
		err = fmt.Errorf("no outcome from Ford within %s; the car may still act on it", b.now().Sub(start).Round(time.Second))
	default:
		status = ResultFailed
		if !errors.As(err, new(*fordapi.CommandError)) {
			b.report(err, &backoff{min: b.opts.BackoffMin, max: b.opts.BackoffMax})
		}
	}
	switch {
	case status == ResultSuccess:
		v.setLockShow("")
		v.applyOutcome(req.Command)
		log.Info("command succeeded", zap.Duration("took", b.now().Sub(start)))
	case req.Command == "lock" || req.Command == "unlock":
		v.setLockShow("jammed")
	}
	if status != ResultSuccess {
		log.Warn("command "+status, zap.Error(err))
	}
	b.m.command(req.Command, status)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	b.result(v.vin, req, status, msg)
}

func (b *Bridge) result(vin string, req CommandRequest, status, errMsg string) {
	b.publishEvent(b.topic(vin, "command", "result"), Result{ID: req.ID, Command: req.Command, Status: status,
		Error: errMsg, At: b.now().UTC().Truncate(time.Millisecond)})
}
