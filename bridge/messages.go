package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// The message centre: an account's messages, read from Ford every
// Options.MessagesEvery (one call in the telemetry share) and kept in
// STATE_DIR (messages.json) so a restart reads them again only when they
// are that old. Each car shows the messages about it and those for every
// car (P/VIN/messages, and their count, messages_unread).

// Its topics under the car.
const (
	messagesTopic = "messages"
	messagesField = "messages_unread"
)

// messagesFile keeps the account's messages and when they were read.
const messagesFile = "messages.json"

// maxCarMessages bounds the messages a car's topic shows, newest first.
const maxCarMessages = 10

type messageCache struct {
	ReadAt   time.Time         `json:"read_at"`
	Messages []fordapi.Message `json:"messages"`
}

// messagesLoop reads the account's message centre now and then (not with
// FordConnect, which has none).
func (f *fleet) messagesLoop(ctx context.Context) {
	if f.cfg.Backend == config.BackendFordConnect {
		return
	}
	next := time.Time{}
	f.mu.Lock()
	if f.messagesRead {
		next = f.messagesAt.Add(f.opts.MessagesEvery)
	}
	f.mu.Unlock()
	for {
		if sleep(ctx, next.Sub(f.now())) != nil {
			return
		}
		if err := f.auth.gate.wait(ctx, f.now); err != nil {
			return
		}
		// The vehicle list and the cars' first telemetry go first, and a
		// read never takes a telemetry call the budget's pace has not
		// freed yet: on a tight budget the messages wait, not the cars.
		if !f.carsRead() {
			next = f.now().Add(time.Second)
			continue
		}
		if at := f.ford.Budget().NextAllowed(fordapi.ClassTelemetry); at.After(f.now()) {
			next = at
			continue
		}
		var list []fordapi.Message
		err := f.ford.FordPass(func(c *fordapi.Client) error {
			var err error
			list, err = c.Messages(ctx)
			return err
		})
		var be *fordapi.BudgetError
		next = f.now().Add(f.opts.MessagesEvery)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			f.setMessages(list)
			f.saveMessages(list)
		case errors.Is(err, fordapi.ErrReauthRequired):
			f.auth.report(err, &backoff{}) // the gate holds the next read until a sign-in
			next = f.now()
		case errors.As(err, &be):
			next = be.RetryAt
		default:
			// Not the sign-in's fault, nor Ford's connection's: the
			// messages shown are kept, and read again next time.
			f.log.Warn("cannot read the message centre; the messages shown are kept", zap.Error(err), zap.Time("next_try", next))
		}
	}
}

// loadMessageCache takes the messages kept in STATE_DIR, before the cars
// start: a restart shows them (and their entities) at once, and reads
// Ford again only when they are MessagesEvery old.
func (f *fleet) loadMessageCache() {
	if f.cfg.Backend == config.BackendFordConnect {
		return // no message centre: a cache from a FordPass backend before is not shown
	}
	c, err := readMessageCache(f.cfg.StateDir)
	if err != nil || c.ReadAt.After(f.now()) {
		return
	}
	f.mu.Lock()
	f.messages, f.messagesRead, f.messagesAt = c.Messages, true, c.ReadAt
	f.mu.Unlock()
}

// carsRead says whether the account's list was answered and each of its
// cars has its first telemetry.
func (f *fleet) carsRead() bool {
	f.mu.Lock()
	answered := !f.account.FetchedAt.IsZero()
	f.mu.Unlock()
	if !answered {
		return false
	}
	for _, v := range f.cars() {
		if v.lastUpdate().IsZero() {
			return false
		}
	}
	return true
}

// setMessages keeps the account's messages and shows each car its own.
func (f *fleet) setMessages(list []fordapi.Message) {
	f.mu.Lock()
	f.messages, f.messagesRead, f.messagesAt = list, true, f.now()
	f.mu.Unlock()
	for _, v := range f.cars() {
		v.setMessages(list)
	}
}

func (f *fleet) saveMessages(list []fordapi.Message) {
	data, _ := json.Marshal(messageCache{ReadAt: f.now().UTC(), Messages: list})
	if err := fordapi.WriteFileAtomic(filepath.Join(f.cfg.StateDir, messagesFile), data); err != nil {
		f.log.Warn("cannot keep the messages in STATE_DIR; a restart reads them from Ford again", zap.Error(err))
	}
}

func readMessageCache(dir string) (messageCache, error) {
	var c messageCache
	data, err := os.ReadFile(filepath.Join(dir, messagesFile))
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(data, &c)
}

// deleteMessages deletes the car's messages from Ford's message centre
// (latest: only the newest), as ha-fordpass's buttons do; Ford deletes a
// message for every car, so every car shows the list without it.
func (f *fleet) deleteMessages(ctx context.Context, vin string, latest bool) error {
	f.mu.Lock()
	var ids []string
	for _, m := range f.messages {
		if m.For(vin) {
			ids = append(ids, m.ID)
		}
	}
	read := f.messagesRead
	f.mu.Unlock()
	switch {
	case !read:
		return &nothingToDo{"the message centre has not been read yet"}
	case len(ids) == 0:
		return &nothingToDo{"the car has no messages"}
	case latest:
		ids = ids[:1]
	}
	if err := f.ford.FordPass(func(c *fordapi.Client) error { return c.DeleteMessages(ctx, ids) }); err != nil {
		return err
	}
	f.mu.Lock()
	kept := make([]fordapi.Message, 0, len(f.messages))
	for _, m := range f.messages {
		if !slices.Contains(ids, m.ID) {
			kept = append(kept, m)
		}
	}
	f.mu.Unlock()
	f.setMessages(kept)
	f.saveMessages(kept)
	return nil
}

// setMessages shows the car the messages about it (and those for every
// car), newest first as Ford lists them: P/VIN/messages and
// messages_unread, and the count in P/VIN/state.
func (v *vehicle) setMessages(all []fordapi.Message) {
	mine := make([]fordapi.Message, 0, 4)
	n := 0
	for _, m := range all {
		if m.For(v.vin) {
			n++
			if len(mine) < maxCarMessages {
				mine = append(mine, m)
			}
		}
	}
	data, _ := json.Marshal(mine)
	h := v.host
	first := !v.hasMessages.Swap(true)
	v.pubMu.Lock()
	changed := string(data) != v.msgJSON || n != v.msgCount
	v.msgJSON, v.msgCount = string(data), n
	if changed {
		h.publishRetained(h.fieldTopic(v.vin, messagesTopic), v.msgJSON)
		h.publishRetained(h.fieldTopic(v.vin, messagesField), strconv.Itoa(n))
		if v.sent != nil {
			h.publishRetained(h.fieldTopic(v.vin, "state"), string(v.stateLocked()))
		}
	}
	v.pubMu.Unlock()
	if first && v.set.discovery {
		h.vehicleChanged(v) // the messages' entity joins the device
	}
}
