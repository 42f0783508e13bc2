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

// Budget counts every HTTP call made to Ford in a rolling 24 h window and
// refuses, locally, a call that would break the account's daily budget. Ford
// locks accounts that call much more than about 250 times a day, so this is a
// hard ceiling, not advice.
//
// A share of the budget (the reserve) is kept for commands: calls that are not
// commands may use the rest, spread over the day at most Hourly() per rolling
// hour, so a stream or a poll loop cannot spend the day's budget in the
// morning. The window is saved in the state directory and survives restarts.
type Budget struct {
	mu    sync.Mutex
	limit int
	path  string // empty: not persisted
	now   func() time.Time
	calls []time.Time // sorted, within the last 24 h
	// The last 429 from Ford, and the time it said to come back.
	last429, limitedUntil time.Time

	lastSave time.Time   // wall time of the last write
	flushing *time.Timer // a write scheduled to coalesce a burst
}

// saveEvery bounds how often the window is written: the first call after a
// quiet second is written at once (so a crash loop still counts its calls),
// the rest of a burst is written together a second later.
const saveEvery = time.Second

type budgetFile struct {
	Calls        []int64 `json:"calls"`
	Last429      int64   `json:"last_429,omitempty"`
	LimitedUntil int64   `json:"limited_until,omitempty"`
}

const budgetWindow = 24 * time.Hour

// NewBudget loads the window saved at path (if any). limit must be positive.
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
		// A damaged counter must not stop the bridge.
		return b, fmt.Errorf("call budget file %s is damaged (%v); starting a new count", path, err)
	}
	for _, ms := range saved.Calls {
		b.calls = append(b.calls, time.UnixMilli(ms))
	}
	if saved.Last429 > 0 {
		b.last429, b.limitedUntil = time.UnixMilli(saved.Last429), time.UnixMilli(saved.LimitedUntil)
	}
	sort.Slice(b.calls, func(i, j int) bool { return b.calls[i].Before(b.calls[j]) })
	b.prune(now())
	return b, nil
}

// Limit is the daily ceiling.
func (b *Budget) Limit() int { return b.limit }

// Reserve is the share kept for commands.
func (b *Budget) Reserve() int { return max(2, b.limit/5) }

// Hourly is how many non-command calls any rolling hour may hold.
func (b *Budget) Hourly() int { return max(1, (b.limit-b.Reserve())/24) }

// Share is how many calls a day are left for everything but commands.
func (b *Budget) Share() int { return b.limit - b.Reserve() }

// PollEvery is the shortest poll interval that fits the share for a number
// of cars on the account: a round costs a telemetry call per car and a
// token exchange.
func (b *Budget) PollEvery(vehicles int) time.Duration {
	return time.Duration(float64(24*time.Hour) * float64(vehicles+1) / float64(max(b.Share(), 1)))
}

// Used is the number of calls in the last 24 h.
func (b *Budget) Used() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune(b.now())
	return len(b.calls)
}

func (b *Budget) prune(now time.Time) {
	cut := now.Add(-budgetWindow)
	i := sort.Search(len(b.calls), func(i int) bool { return b.calls[i].After(cut) })
	if i > 0 {
		b.calls = append(b.calls[:0], b.calls[i:]...)
	}
}

// check reports whether a call may be made now, without taking it.
func (b *Budget) check(now time.Time, command bool) *BudgetError {
	b.prune(now)
	n := len(b.calls)
	if n >= b.limit {
		return &BudgetError{Used: n, Limit: b.limit, RetryAt: b.calls[n-b.limit].Add(budgetWindow)}
	}
	if command {
		return nil
	}
	share := b.Share()
	if n >= share {
		return &BudgetError{Used: n, Limit: b.limit, RetryAt: b.calls[n-share].Add(budgetWindow)}
	}
	hourly := b.Hourly()
	cut := now.Add(-time.Hour)
	i := sort.Search(n, func(i int) bool { return b.calls[i].After(cut) })
	if n-i >= hourly {
		return &BudgetError{Used: n, Limit: b.limit, RetryAt: b.calls[n-hourly].Add(time.Hour), Paced: true}
	}
	return nil
}

// NextAllowed is when a call of the given kind could next be made (now if it
// could be made now).
func (b *Budget) NextAllowed(command bool) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if e := b.check(now, command); e != nil {
		return e.RetryAt
	}
	return now
}

// Take records one call, or refuses it with a *BudgetError.
func (b *Budget) Take(command bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if e := b.check(now, command); e != nil {
		return e
	}
	b.calls = append(b.calls, now)
	return b.save()
}

// save writes the window now, or schedules it within saveEvery; b.mu held.
func (b *Budget) save() error {
	if b.path == "" {
		return nil
	}
	if since := time.Since(b.lastSave); since < saveEvery {
		if b.flushing == nil {
			b.flushing = time.AfterFunc(saveEvery-since, func() {
				b.mu.Lock()
				defer b.mu.Unlock()
				b.flushing = nil
				_ = b.write()
			})
		}
		return nil
	}
	return b.write()
}

// Flush writes a scheduled save now (at shutdown).
func (b *Budget) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
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
	f := budgetFile{Calls: make([]int64, len(b.calls))}
	for i, t := range b.calls {
		f.Calls[i] = t.UnixMilli()
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

// InLast counts the calls made in the last d.
func (b *Budget) InLast(d time.Duration) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	cut := b.now().Add(-d)
	return len(b.calls) - sort.Search(len(b.calls), func(i int) bool { return b.calls[i].After(cut) })
}
