package fordapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

// Class is what a call to Ford is for. Each class has its own share of the
// day and of the hour, so that no kind of call can starve another: a
// looping automation spends the command share and nothing else, a flood of
// pasted codes spends the sign-in share, and telemetry never eats the room
// kept for a sign-in or a command.
type Class int

const (
	// ClassTelemetry: REST telemetry, vehicle lists and FordPass (CAT)
	// token refreshes.
	ClassTelemetry Class = iota
	// ClassCommand: a command and the status checks that follow it.
	ClassCommand
	// ClassSignIn: exchanging a pasted code, then the FordPass token and the
	// first snapshot after a sign-in (the vehicle list and one telemetry
	// record per car). See ClassSnapshot.
	ClassSignIn
	// ClassSnapshot is counted in the sign-in share, but may use all of it:
	// code exchanges (ClassSignIn) leave the last part of the share to the
	// FordPass token and the first snapshot after a good code, so bad
	// pastes cannot starve the good one that follows them.
	ClassSnapshot
	// ClassToken: exchanges of the FordPass token for an Autonomic token,
	// which the stream renews about every 4 minutes all day. They have an
	// allowance of their own, outside the daily ceiling (see the README's
	// "call budget" for the evidence behind this model).
	ClassToken
)

var classNames = [...]string{"telemetry", "command", "sign-in", "snapshot", "token"}

func (k Class) String() string {
	if k < 0 || int(k) >= len(classNames) {
		return "unknown"
	}
	return classNames[k]
}

// bucket is where a class's calls are counted: the snapshot shares the
// sign-in bucket.
func (k Class) bucket() Class {
	if k == ClassSnapshot {
		return ClassSignIn
	}
	return k
}

const numBuckets = int(ClassToken) + 1

// Token exchanges: an Autonomic token lives about 5 minutes and is renewed
// 45 s before it ends, so a continuous stream needs about 14 an hour (one
// token serves every car of the account). The allowance leaves room for a
// stream reopening and for commands.
const (
	TokenHourly = 20
	TokenDaily  = 400
)

// Budget counts every HTTP call made to Ford in a rolling 24 h window, per
// class, and refuses locally a call that would break its class's share.
// Ford locks accounts that call much more than about 250 times a day, so
// the ceiling (telemetry + commands + sign-ins) is hard, not advice.
//
// Each class has a share of the day and a pace (calls in any rolling hour),
// so a stream or a poll loop cannot spend the day's budget in the morning.
// The window is saved in the state directory and survives restarts.
type Budget struct {
	mu    sync.Mutex
	limit int
	path  string // empty: not persisted
	now   func() time.Time
	calls [numBuckets][]time.Time // sorted, within the last 24 h
	// The last 429 from Ford, and the time it said to come back.
	last429, limitedUntil time.Time
	damaged               bool // the saved window was unreadable: the pace was assumed spent

	lastSave time.Time   // wall time of the last write
	flushing *time.Timer // a write scheduled to coalesce a burst
	closed   bool        // after Close every save is written at once
}

// saveEvery bounds how often the window is written: the first call after a
// quiet second is written at once (so a crash loop still counts its calls),
// the rest of a burst is written together a second later.
const saveEvery = time.Second

type budgetFile struct {
	Calls        []int64            `json:"calls,omitempty"` // before classes: every call, read as telemetry
	Classes      map[string][]int64 `json:"classes,omitempty"`
	Last429      int64              `json:"last_429,omitempty"`
	LimitedUntil int64              `json:"limited_until,omitempty"`
}

const budgetWindow = 24 * time.Hour

// NewBudget loads the window saved at path (if any). limit must be positive.
// A damaged file is not a reason to stop, but it must not hand out a fresh
// day either: the budget then assumes each class's hourly pace is spent and
// returns the budget with an error saying so.
func NewBudget(path string, limit int, now func() time.Time) (*Budget, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("call budget must be positive, got %d", limit)
	}
	if now == nil {
		now = time.Now
	}
	b := &Budget{limit: limit, path: path, now: now}
	if path == "" {
		return b, nil
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return b, nil
	case err != nil:
		return nil, fmt.Errorf("reading call budget: %w", err)
	}
	var saved budgetFile
	if err := json.Unmarshal(data, &saved); err != nil {
		t := now()
		b.damaged = true
		for _, k := range []Class{ClassTelemetry, ClassCommand, ClassSignIn, ClassToken} {
			for range b.Hourly(k) {
				b.calls[k] = append(b.calls[k], t)
			}
		}
		return b, fmt.Errorf("call budget file %s is damaged (%v); assuming this hour's share of every kind of call is spent", path, err)
	}
	for _, ms := range saved.Calls {
		b.calls[ClassTelemetry] = append(b.calls[ClassTelemetry], time.UnixMilli(ms))
	}
	for name, list := range saved.Classes {
		k := ClassTelemetry // an unknown class is counted, not dropped
		for i, n := range classNames {
			if n == name {
				k = Class(i).bucket()
			}
		}
		for _, ms := range list {
			b.calls[k] = append(b.calls[k], time.UnixMilli(ms))
		}
	}
	if saved.Last429 > 0 {
		b.last429, b.limitedUntil = time.UnixMilli(saved.Last429), time.UnixMilli(saved.LimitedUntil)
	}
	for k := range b.calls {
		sort.Slice(b.calls[k], func(i, j int) bool { return b.calls[k][i].Before(b.calls[k][j]) })
	}
	b.prune(now())
	return b, nil
}

// Limit is the daily ceiling over telemetry, commands and sign-ins.
func (b *Budget) Limit() int { return b.limit }

// Share is how many calls of a class any 24 h may hold. The shares of
// telemetry, commands and sign-ins add up to Limit.
func (b *Budget) Share(k Class) int {
	switch k.bucket() {
	case ClassSignIn:
		return max(6, b.limit/10)
	case ClassCommand:
		return max(2, b.limit/5)
	case ClassToken:
		return TokenDaily
	}
	return max(1, b.limit-b.Share(ClassSignIn)-b.Share(ClassCommand))
}

// Hourly is how many calls of a class any rolling hour may hold.
func (b *Budget) Hourly(k Class) int {
	switch k.bucket() {
	case ClassSignIn:
		return b.Share(k) // sign-ins are paced by the sign-in throttle
	case ClassCommand:
		return max(2, b.Share(k)/3)
	case ClassToken:
		return TokenHourly
	}
	return max(1, b.Share(k)/24)
}

// codeShare is how much of the sign-in share code exchanges may use; the
// rest is kept for the token and the snapshot after a good code.
func (b *Budget) codeShare() int { return b.Share(ClassSignIn) * 2 / 3 }

// PollEvery is the shortest poll interval that fits the telemetry share for
// a number of cars on the account: a round costs a telemetry call per car,
// and 24 calls a day are left for FordPass token refreshes and the vehicle
// list.
func (b *Budget) PollEvery(vehicles int) time.Duration {
	room := max(b.Share(ClassTelemetry)-24, 1)
	return time.Duration(float64(24*time.Hour) * float64(max(vehicles, 1)) / float64(room))
}

// Used is the number of calls in the last 24 h that count against Limit.
func (b *Budget) Used() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune(b.now())
	return len(b.calls[ClassTelemetry]) + len(b.calls[ClassCommand]) + len(b.calls[ClassSignIn])
}

// UsedBy is the number of calls of a class in the last 24 h.
func (b *Budget) UsedBy(k Class) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune(b.now())
	return len(b.calls[k.bucket()])
}

// Damaged reports whether the saved window was unreadable at start.
func (b *Budget) Damaged() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.damaged
}

func (b *Budget) prune(now time.Time) {
	cut := now.Add(-budgetWindow)
	for k, list := range b.calls {
		i := sort.Search(len(list), func(i int) bool { return list[i].After(cut) })
		if i > 0 {
			b.calls[k] = append(list[:0], list[i:]...)
		}
	}
}

// check reports whether a call of class k may be made now, without taking it.
func (b *Budget) check(now time.Time, k Class) *BudgetError { return b.checkPaced(now, k, true) }

// checkPaced is check; paced false leaves the hourly pace out (the daily
// share still holds).
func (b *Budget) checkPaced(now time.Time, k Class, paced bool) *BudgetError {
	b.prune(now)
	list := b.calls[k.bucket()]
	n := len(list)
	share := b.Share(k)
	if k == ClassSignIn {
		share = b.codeShare()
	}
	if n >= share {
		return &BudgetError{Class: k, Used: n, Limit: share, RetryAt: list[n-share].Add(budgetWindow)}
	}
	if !paced {
		return nil
	}
	hourly := b.Hourly(k)
	cut := now.Add(-time.Hour)
	i := sort.Search(n, func(i int) bool { return list[i].After(cut) })
	if n-i >= hourly {
		return &BudgetError{Class: k, Used: n, Limit: share, RetryAt: list[n-hourly].Add(time.Hour), Paced: true}
	}
	return nil
}

// NextAllowed is when a call of class k could next be made (now if it could
// be made now).
func (b *Budget) NextAllowed(k Class) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if e := b.check(now, k); e != nil {
		return e.RetryAt
	}
	return now
}

// Paused says whether a call of class k would be refused now.
func (b *Budget) Paused(k Class) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.check(b.now(), k) != nil
}

// Take records one call of class k, or refuses it with a *BudgetError.
func (b *Budget) Take(k Class) error { return b.take(k, true) }

// TakeRetry is Take for a dark car's retry (ForRetry): the daily share
// holds, the hourly pace does not, so a car comes back within minutes of
// Ford answering again whatever the outage's length.
func (b *Budget) TakeRetry(k Class) error { return b.take(k, false) }

func (b *Budget) take(k Class, paced bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if e := b.checkPaced(now, k, paced); e != nil {
		return e
	}
	b.calls[k.bucket()] = append(b.calls[k.bucket()], now)
	return b.save()
}

// save writes the window now, or schedules it within saveEvery; b.mu held.
func (b *Budget) save() error {
	if b.path == "" {
		return nil
	}
	if since := time.Since(b.lastSave); since < saveEvery && !b.closed {
		if b.flushing == nil {
			var timer *time.Timer
			timer = time.AfterFunc(saveEvery-since, func() {
				b.mu.Lock()
				defer b.mu.Unlock()
				if b.flushing != timer {
					return // Close wrote it while this waited for the lock
				}
				b.flushing = nil
				_ = b.write()
			})
			b.flushing = timer
		}
		return nil
	}
	return b.write()
}

// Close writes a scheduled save now and writes every later one at once, so
// that nothing is written behind the caller's back once it returns (at
// shutdown, and before a test removes the state directory).
func (b *Budget) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.flushing == nil {
		return nil
	}
	b.flushing.Stop()
	b.flushing = nil
	return b.write()
}

// write writes the window; b.mu held.
func (b *Budget) write() error {
	b.lastSave = time.Now()
	f := budgetFile{Classes: map[string][]int64{}}
	for k, list := range b.calls {
		if len(list) == 0 {
			continue
		}
		ms := make([]int64, len(list))
		for i, t := range list {
			ms[i] = t.UnixMilli()
		}
		f.Classes[classNames[k]] = ms
	}
	if !b.last429.IsZero() {
		f.Last429, f.LimitedUntil = b.last429.UnixMilli(), b.limitedUntil.UnixMilli()
	}
	data, _ := json.Marshal(f)
	if err := WriteFileAtomic(b.path, data); err != nil {
		// The call is still counted in memory; failing the call would only
		// hide the car. The error is reported to the caller's log.
		return fmt.Errorf("saving call budget: %w", err)
	}
	return nil
}

// NoteRateLimit records a 429 from Ford and the time it gave to come back.
func (b *Budget) NoteRateLimit(until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last429, b.limitedUntil = b.now(), until
	_ = b.save()
}

// LastRateLimit is the last 429 and its retry time (zero: none recorded).
func (b *Budget) LastRateLimit() (at, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last429, b.limitedUntil
}

// InLast counts the calls that count against Limit made in the last d.
func (b *Budget) InLast(d time.Duration) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	cut := b.now().Add(-d)
	n := 0
	for _, k := range []Class{ClassTelemetry, ClassCommand, ClassSignIn} {
		list := b.calls[k]
		n += len(list) - sort.Search(len(list), func(i int) bool { return list[i].After(cut) })
	}
	return n
}
