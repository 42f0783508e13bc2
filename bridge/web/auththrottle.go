package web

import (
	"sync"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/floodlog"
)

// authThrottle slows down whoever guesses the sign-in page's basic-auth
// password: per client address, the first freeAuthFailures wrong answers
// are refused as usual; after that the address is refused with 429 for a
// time that doubles with each further wrong answer, up to maxAuthBlock. A
// right answer, or authForget without a wrong one, forgets the address.
type authThrottle struct {
	mu  sync.Mutex
	now func() time.Time
	log *floodlog.Log
	m   map[string]*authFails
}

type authFails struct {
	n     int       // wrong answers in a row
	last  time.Time // the last one
	until time.Time // refused until then
}

const (
	freeAuthFailures = 5
	maxAuthBlock     = 5 * time.Minute
	authForget       = 15 * time.Minute
	// maxAuthAddrs bounds the addresses told apart; beyond it, new
	// addresses share one entry (a flood from many addresses is slowed as
	// one).
	maxAuthAddrs = 4096
	manyAddrs    = "*"
)

func newAuthThrottle(now func() time.Time, log *floodlog.Log) *authThrottle {
	return &authThrottle{now: now, log: log, m: map[string]*authFails{}}
}

// entry is addr's record, made if missing; t.mu held.
func (t *authThrottle) entry(addr string, now time.Time) *authFails {
	if f, ok := t.m[addr]; ok {
		if now.Sub(f.last) >= authForget && !now.Before(f.until) {
			*f = authFails{}
		}
		return f
	}
	if len(t.m) >= maxAuthAddrs {
		for a, f := range t.m {
			if now.Sub(f.last) >= authForget && !now.Before(f.until) {
				delete(t.m, a)
			}
		}
		if len(t.m) >= maxAuthAddrs {
			addr = manyAddrs
			if f, ok := t.m[addr]; ok {
				return f
			}
		}
	}
	f := &authFails{}
	t.m[addr] = f
	return f
}

// refusedUntil says until when addr is refused without its credentials
// being looked at (zero: it is not).
func (t *authThrottle) refusedUntil(addr string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f, ok := t.m[addr]
	if !ok && len(t.m) >= maxAuthAddrs {
		f, ok = t.m[manyAddrs]
	}
	if !ok || !now.Before(f.until) {
		return time.Time{}
	}
	return f.until
}

// failed records a wrong answer from addr and says until when the address
// is refused from now on (zero: not yet).
func (t *authThrottle) failed(addr string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f := t.entry(addr, now)
	f.n++
	f.last = now
	if f.n <= freeAuthFailures {
		return time.Time{}
	}
	block := min(time.Second<<min(f.n-freeAuthFailures-1, 20), maxAuthBlock)
	f.until = now.Add(block)
	return f.until
}

// succeeded forgets addr's wrong answers.
func (t *authThrottle) succeeded(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, addr)
}
