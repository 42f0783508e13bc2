// Package floodlog keeps a flood of the same event from flooding the log.
package floodlog

import (
	"sync"
	"time"
)

// Log keeps a flood of the same event from flooding the log: the first
// of a kind in an interval is logged at once, the rest are counted and
// logged as one line when the interval ends. At most maxFloodKinds kinds
// are told apart in an interval; further kinds share one count.
type Log struct {
	mu       sync.Mutex
	interval time.Duration
	kinds    map[string]*int // kind → events after the first, this interval
}

const maxFloodKinds = 16

// Other is the kind more receives for the events of every kind beyond the
// first maxFloodKinds of an interval.
const Other = "\x00other"

// New is a Log whose counts are told every interval.
func New(interval time.Duration) *Log {
	return &Log{interval: interval, kinds: map[string]*int{}}
}

// Note records an event of a kind. The first of the kind in an interval
// runs first (or, once maxFloodKinds kinds are seen, the first of the
// others runs overflow); the count of the rest goes to more when the
// interval ends (not called when there were none).
func (f *Log) Note(kind string, first, overflow func(), more func(kind string, n int)) {
	f.mu.Lock()
	if _, seen := f.kinds[kind]; !seen && len(f.kinds) >= maxFloodKinds {
		kind, first = Other, overflow
	}
	if n, seen := f.kinds[kind]; seen {
		*n++
		f.mu.Unlock()
		return
	}
	n := new(int)
	f.kinds[kind] = n
	f.mu.Unlock()
	first()
	time.AfterFunc(f.interval, func() {
		f.mu.Lock()
		delete(f.kinds, kind)
		count := *n
		f.mu.Unlock()
		if count > 0 {
			more(kind, count)
		}
	})
}
