package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/both"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordconnect"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// maxCommandPayload bounds a command message.
const maxCommandPayload = 4 << 10

// CommandRequest is a parsed command message.
type CommandRequest struct {
	Command string
	ID      string
	// props are the properties Ford gets, made by the command's row from
	// the message's other keys (the horn's duration).
	props map[string]any
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
	var options map[string]json.RawMessage // the keys besides command and id
	switch {
	case strings.HasPrefix(s, `"`): // a JSON string such as "lock"
		var word string
		if err := json.Unmarshal([]byte(s), &word); err != nil {
			return req, fmt.Errorf("malformed JSON string: %v", err)
		}
		s = word
	case strings.HasPrefix(s, "["):
		return req, errors.New(`a JSON array is not a command; send a word such as lock, or {"command":"lock","id":"…"}`)
	case strings.HasPrefix(s, "{"):
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &raw); err != nil {
			return req, fmt.Errorf("malformed JSON: %v", err)
		}
		dup := duplicateKey([]byte(s))
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
		switch {
		case dup == "id" || dup == "transaction":
			req.ID = "" // which of the two is meant cannot be told
			fallthrough
		case dup != "" && !strings.ContainsAny(dup, ".["):
			return req, fmt.Errorf("the key %q appears twice; a command names one command and one id", dup)
		case dup != "":
			return req, fmt.Errorf("the key %q appears twice; which value is meant cannot be told, so nothing is sent", dup)
		}
		for k, v := range raw {
			if k != "command" && k != "id" && k != "transaction" {
				if options == nil {
					options = map[string]json.RawMessage{}
				}
				options[k] = v
			}
		}
		cmd, ok := raw["command"]
		if !ok {
			return req, errors.New(`JSON without "command"; send {"command":"lock","id":"…"}`)
		}
		var word string
		if err := json.Unmarshal(cmd, &word); err != nil || bytes.Equal(bytes.TrimSpace(cmd), []byte("null")) {
			return req, fmt.Errorf(`"command" is %s; it must be a string such as "lock"`, jsonKind(cmd))
		}
		s = word
	}
	req.Command = strings.ToLower(strings.TrimSpace(s))
	spec := commandNamed(req.Command)
	if spec == nil {
		shown := req.Command
		if len(shown) > 40 {
			shown = shown[:40] + "…"
		}
		return req, fmt.Errorf("unknown command %q; known: %s", shown, strings.Join(commandNames, ", "))
	}
	var err error
	req.props, err = spec.properties(options)
	return req, err
}

// duplicateKey returns the first key that appears twice in one object of
// a JSON document, at any depth, as a path ("id", "climate.temperature");
// "" if none. encoding/json would silently keep the last one.
func duplicateKey(data []byte) string {
	dup, _ := duplicateIn(json.NewDecoder(bytes.NewReader(data)), "")
	return dup
}

// duplicateIn reads one value from dec and returns the path of its first
// duplicate key.
func duplicateIn(dec *json.Decoder, path string) (string, error) {
	t, err := dec.Token()
	if err != nil {
		return "", err
	}
	switch t {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", err
			}
			key, _ := kt.(string)
			at := key
			if path != "" {
				at = path + "." + key
			}
			if seen[key] {
				return at, nil
			}
			seen[key] = true
			if dup, err := duplicateIn(dec, at); dup != "" || err != nil {
				return dup, err
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if dup, err := duplicateIn(dec, fmt.Sprintf("%s[%d]", path, i)); dup != "" || err != nil {
				return dup, err
			}
		}
	default:
		return "", nil
	}
	_, err = dec.Token() // the closing delimiter
	return "", err
}

// jsonKind names the JSON type of a value for an error message.
func jsonKind(raw json.RawMessage) string {
	b := bytes.TrimSpace(raw)
	switch {
	case len(b) == 0:
		return "empty"
	case string(b) == "null":
		return "null"
	case b[0] == '{':
		return "an object"
	case b[0] == '[':
		return "a list"
	case b[0] == '"':
		return "a string"
	case string(b) == "true" || string(b) == "false":
		return "a boolean"
	}
	return "a number"
}

// onCommand handles a message on P/VIN/command: it is checked at once
// (rejected with a reason, or accepted) and run in the car's queue.
func (b *Bridge) onCommand(vin string, msg mqtt.Message) {
	if len(msg.Payload()) == 0 {
		// An empty message is how a retained one is deleted (the bridge
		// itself does it below); it is not a command.
		return
	}
	acct, v := b.carAccount(vin)
	if v != nil || mqttapi.IsVIN(vin) {
		// A command published with the retain flag while the bridge listens
		// is delivered without the flag (MQTT 3.1.1), so it would replay at
		// the next connect: clear the topic after every command, once its
		// answer is out. Only topics the bridge owns (a VIN in upper case;
		// the vehicle list may not be loaded yet) are cleared, never odd ones.
		defer b.pub.client.Publish(msg.Topic(), 1, true, []byte{})
	}
	req, err := ParseCommand(msg.Payload())
	if req.ID == "" {
		req.ID = "cmd-" + strconv.FormatUint(commandSeq.Add(1), 10) + "-" + strconv.FormatInt(b.now().UnixMilli(), 36)
	}
	reject := func(reason string) {
		// Every rejection gets its result; the log gets the first of each
		// reason and topic in an interval, and a count of the rest.
		b.rejectLog.Note(msg.Topic()+"\x00"+reason, func() {
			b.log.Warn("command rejected (more like it in the next minute are counted, not logged)", zap.String("vin", fordapi.ShortVIN(vin)),
				zap.String("command", req.Command), zap.String("id", req.ID), zap.String("reason", reason))
		}, func() {
			b.log.Warn("commands rejected for more reasons and topics; they are counted, not logged, until the minute is over")
		}, func(kind string, n int) {
			if topic, reason, ok := strings.Cut(kind, "\x00"); ok {
				b.log.Warn("more commands rejected for the same reason", zap.Int("count", n), zap.String("topic", fordapi.Clip(topic, 120)), zap.String("reason", reason))
			} else {
				b.log.Warn("more commands rejected for other reasons and topics", zap.Int("count", n))
			}
		})
		b.m.command(req.Command, ResultRejected)
		b.result(vin, req, ResultRejected, reason, 0)
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
	case b.cfg.Backend == config.BackendFordConnect:
		reject(fordconnect.ErrCommands.Error())
		return
	case acct != nil && commandsBlocked(acct.ford) != "":
		reject(commandsBlocked(acct.ford))
		return
	case !b.cfg.Allowed(req.Command):
		reject(fmt.Sprintf("command %q is not allowed (COMMANDS_ALLOWED=%s)", req.Command, strings.Join(b.cfg.CommandsAllowed, ",")))
		return
	}
	if v == nil {
		if _, car := b.carAccount(strings.ToUpper(vin)); car != nil && strings.ToUpper(vin) != vin {
			up := strings.ToUpper(vin)
			reject("VINs are upper case in topics: publish to " + b.t.Command(up))
			return
		}
		reject("unknown vehicle " + fordapi.ShortVIN(vin) + "; see " + b.t.Info() + " for the bridged VINs")
		return
	}
	info := acct.auth.gate.get()
	switch {
	case info.State == StateReauthRequired && acct.name != "":
		reject("account " + acct.name + " is not signed in to FordPass: " + info.Reason)
		return
	case info.State == StateReauthRequired:
		reject("not signed in to FordPass: " + info.Reason)
		return
	case info.State == StateRateLimited && info.RetryAt != nil && b.now().Before(*info.RetryAt):
		reject("waiting until " + info.RetryAt.Format(time.RFC3339) + ": " + info.Reason)
		return
	}
	if at := acct.ford.Budget().NextAllowed(fordapi.ClassCommand); at.After(b.now()) {
		reject(fmt.Sprintf("the command share of the daily Ford call budget is spent (refused locally, Ford was not called); the next command is allowed at %s",
			at.UTC().Format(time.RFC3339)))
		return
	}
	spec := commandNamed(req.Command)
	if !spec.runsOn(v.info()) || spec.reports != "" && !spec.offered(v.fieldNames()) {
		reject(fmt.Sprintf("%s: %s (Ford was not called)", req.Command, spec.cannot))
		return
	}
	if spec.needs != nil {
		if lack := spec.needs(v.info(), req.props); lack != "" {
			reject(fmt.Sprintf("%s: %s (Ford was not called)", req.Command, lack))
			return
		}
	}
	if spec.throttled {
		if next, ok := v.allowRefresh(b.now()); !ok {
			reject(fmt.Sprintf("%s wakes the car's modem and drains its 12 V battery; at most one every %s (next at %s)",
				req.Command, v.set.refreshEvery, next.UTC().Format(time.RFC3339)))
			return
		}
	}
	job := &queuedCommand{req: req, accepted: b.now()}
	b.commands.Add(1) // before the drainer can finish it and call Done
	var ack mqtt.Token
	accepted := func() { ack = b.result(vin, req, ResultAccepted, "", 0) }
	drain := func() {
		// The car's first Ford call starts once "accepted" is at the
		// broker: on a small machine the call's work would otherwise
		// delay the answer the user waits for (a broker round trip, at
		// most acceptedHead).
		go func() {
			if ack != nil {
				ack.WaitTimeout(acceptedHead)
			}
			v.drainCommands()
		}()
	}
	if n, ok := v.queue.push(job, accepted, drain); !ok {
		b.commands.Done()
		reject(fmt.Sprintf("busy: %d commands pending for this car (one running, %d waiting); wait for their results", n, maxWaiting))
		return
	}
	acct.fleet.used(vin) // with one socket per token, the car a command went to streams its outcome
}

// allowRefresh is the car's refresh throttle: it takes a refresh when the
// last one is at least refreshEvery ago, else says when the next may come.
func (v *vehicle) allowRefresh(now time.Time) (next time.Time, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.lastRefresh.IsZero() && now.Sub(v.lastRefresh) < v.set.refreshEvery {
		return v.lastRefresh.Add(v.set.refreshEvery), false
	}
	v.lastRefresh = now
	return now, true
}

// acceptedHead is the longest a command's first Ford call waits for the
// broker to take its "accepted".
const acceptedHead = 50 * time.Millisecond

// maxWaiting is how many commands may wait behind the running one, per car.
const maxWaiting = 3

// queuedCommand is an accepted command waiting for its turn.
type queuedCommand struct {
	req      CommandRequest
	accepted time.Time
}

// commandQueue is a car's FIFO of accepted commands: at most one running
// and maxWaiting waiting. Commands are queued in the order the broker
// delivered them (paho delivers in order), so they reach Ford in the order
// they were sent.
type commandQueue struct {
	mu        sync.Mutex
	waiting   []*queuedCommand
	executing bool // a command is running and has not reported its result
	draining  bool // a drainer goroutine owns the queue
}

// push appends job unless the queue is full, says so (accepted) before the
// drainer can take it, so "accepted" always comes before the command's
// result, and starts a drainer (start) when none runs. It returns how many
// commands were pending.
func (q *commandQueue) push(job *queuedCommand, accepted, start func()) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	pending := len(q.waiting)
	if q.executing {
		pending++
	}
	if pending > maxWaiting {
		return pending, false
	}
	q.waiting = append(q.waiting, job)
	accepted()
	if !q.draining {
		q.draining = true
		start()
	}
	return pending, true
}

// pop takes the oldest command; when none is left the drainer ends.
func (q *commandQueue) pop() *queuedCommand {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		q.draining = false
		return nil
	}
	q.executing = true
	job := q.waiting[0]
	q.waiting[0] = nil
	q.waiting = q.waiting[1:]
	return job
}

// done marks the running command finished, before its result is
// published: a sender that publishes again on seeing the result finds the
// room it expects.
func (q *commandQueue) done() {
	q.mu.Lock()
	q.executing = false
	q.mu.Unlock()
}

// drainCommands runs a car's queued commands one after the other, oldest
// first. A command whose deadline passed while it waited is never sent.
func (v *vehicle) drainCommands() {
	h := v.host
	for job := v.queue.pop(); job != nil; job = v.queue.pop() {
		waited := h.clock().Sub(job.accepted)
		deadline := job.accepted.Add(v.set.commandTimeout)
		switch {
		case h.commandContext().Err() != nil || !h.acceptingCommands():
			v.finish(job.req, ResultTimeout, "not sent to the car: the bridge is shutting down", waited)
		case deadline.Sub(h.clock()) < v.set.commandTimeout/10:
			// Past its deadline, or so close to it that its outcome could
			// not be waited for: it is not sent at all.
			v.finish(job.req, ResultTimeout, fmt.Sprintf("not sent to the car: it waited %s behind other commands, past its %s deadline",
				waited.Round(time.Millisecond), v.set.commandTimeout), waited)
		default:
			v.runCommand(job.req, deadline, waited)
		}
		h.commandDone()
	}
}

// finish reports a command that ended without running.
func (v *vehicle) finish(req CommandRequest, status, msg string, waited time.Duration) {
	h := v.host
	h.logger().Warn("command "+status, zap.String("vin", fordapi.ShortVIN(v.vin)), zap.String("command", req.Command),
		zap.String("id", req.ID), zap.String("reason", msg))
	h.countCommand(req.Command, status)
	v.queue.done()
	h.commandResult(v.vin, req, status, msg, waited)
}

// runCommand runs one accepted command; its deadline counts from when it
// was accepted, so waiting in the queue counts too.
func (v *vehicle) runCommand(req CommandRequest, deadline time.Time, waited time.Duration) {
	h := v.host
	log := h.logger().With(zap.String("vin", fordapi.ShortVIN(v.vin)), zap.String("command", req.Command), zap.String("id", req.ID))
	ctx, cancel := context.WithTimeout(h.commandContext(), deadline.Sub(h.clock()))
	defer cancel()
	spec := commandNamed(req.Command)
	if spec.showing != "" {
		v.setLockShow(spec.showing)
	}
	updates, unwatch := v.watch()
	defer unwatch()
	start := h.clock()
	id, sent, err := v.send(ctx, spec, req.props)
	if sent && !spec.noOutcome && spec.direct == nil {
		// A record polled for the outcome is the car's latest: published
		// as any telemetry, before the effect shown at once.
		_, err = h.fordAPI().WaitCommand(ctx, v.vin, spec.fordType(req.props), id, updates, v.publish)
	}
	status := ResultSuccess
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		status = ResultTimeout
		if sent {
			err = fmt.Errorf("outcome unknown: Ford accepted the command but reported no outcome within %s; the car may still act on it", h.clock().Sub(start).Round(time.Second))
		} else {
			err = fmt.Errorf("outcome unknown: no answer from Ford within %s; the car may still act on it", h.clock().Sub(start).Round(time.Second))
		}
	case errors.Is(err, fordapi.ErrOutcomeUnknown) || (sent && !errors.As(err, new(*fordapi.CommandError))):
		// Ford accepted the command (or may have), and only what came after
		// failed: the car may well have done it, so it is not "failed".
		status = ResultTimeout
		if !errors.Is(err, fordapi.ErrOutcomeUnknown) {
			err = fmt.Errorf("%w: Ford accepted the command, but its status could not be checked: %w", fordapi.ErrOutcomeUnknown, err)
		}
		if errors.Is(err, fordapi.ErrReauthRequired) || errors.Is(err, fordapi.ErrRateLimited) {
			h.report(err, &backoff{min: v.set.backoffMin, max: v.set.backoffMax})
		}
	default:
		status = ResultFailed
		if !errors.As(err, new(*fordapi.CommandError)) && !errors.As(err, new(*fordapi.ClimateError)) && !errors.Is(err, fordapi.ErrBudgetExhausted) &&
			!errors.As(err, new(*nothingToDo)) {
			h.report(err, &backoff{min: v.set.backoffMin, max: v.set.backoffMax})
		}
	}
	switch {
	case status == ResultSuccess:
		v.setLockShow("")
		v.applyOutcome(spec.effect, req.props)
		log.Info("command succeeded", zap.Duration("took", h.clock().Sub(start)), zap.Duration("waited", waited))
	case spec.showing != "":
		v.setLockShow("jammed")
	}
	if status != ResultSuccess {
		log.Warn("command "+status, zap.Error(err), zap.Duration("waited", waited))
	}
	h.countCommand(req.Command, status)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	v.queue.done()
	h.commandResult(v.vin, req, status, msg, waited)
}

// nothingToDo is a command the car's state leaves nothing to send for (no
// messages to delete): it fails saying so, and says nothing of Ford.
type nothingToDo struct{ reason string }

func (e *nothingToDo) Error() string { return e.reason }

// commandsBlocked says why no command can be sent now ("" if one can):
// with two backends, FordPass needing a sign-in.
func commandsBlocked(f fordapi.Backend) string {
	if d, ok := f.(*both.Backend); ok {
		return d.CommandsBlocked()
	}
	return ""
}

// send sends a command to Ford, after the calls its row prepares, and
// says whether Ford took it (id is "" for a direct one).
func (v *vehicle) send(ctx context.Context, spec *commandSpec, props map[string]any) (id string, sent bool, err error) {
	if spec.direct != nil {
		err = spec.direct(ctx, v, props)
		return "", err == nil, err
	}
	if spec.prepare != nil {
		if props, err = spec.prepare(ctx, v, props); err != nil {
			return "", false, err
		}
	}
	ford := spec.fordType(props)
	if spec.fordFor != nil {
		props = map[string]any{} // the choice was the bridge's; Ford's command takes none (ha-fordpass sends {})
	}
	id, err = v.host.fordAPI().SendCommand(ctx, v.vin, ford, spec.version, props)
	return id, err == nil, err
}

func (b *Bridge) result(vin string, req CommandRequest, status, errMsg string, waited time.Duration) mqtt.Token {
	return b.pub.publishEvent(b.t.Result(vin), Result{ID: req.ID, Command: req.Command, Status: status,
		Error: errMsg, At: b.now().UTC().Truncate(time.Millisecond), WaitedMS: waited.Milliseconds()})
}
