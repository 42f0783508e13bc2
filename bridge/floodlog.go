package bridge

import (
	"sync"
	"time"
)

// floodLog keeps a flood of the same event from flooding the log: the first
// of a kind in an interval is logged at once, the rest are counted and
// logged as one line when the interval ends. At most maxFloodKinds kinds
// are told apart in an interval; further kinds share one count.
type floodLog struct {
	mu       sync.Mutex
	interval time.Duration
	kinds    map[string]*int // kind → events after the first, this interval
}

const (
	maxFloodKinds = 16
	otherKinds    = "\x00other"
)

func newFloodLog(interval time.Duration) *floodLog {
	return &floodLog{interval: interval, kinds: map[string]*int{}}
}

// note records an event of a kind. The first of the kind in an interval
// runs first (or, once maxFloodKinds kinds are seen, the first of the
// others runs overflow); the count of the rest goes to more when the
// interval ends (not called when there were none).
func (f *floodLog) note(kind string, first, overflow func(), more func(kind string, n int)) {
	f.mu.Lock()
	if _, seen := f.kinds[kind]; !seen && len(f.kinds) >= maxFloodKinds {
		kind, first = otherKinds, overflow
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
