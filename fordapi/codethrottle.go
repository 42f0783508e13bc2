package fordapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// CodeThrottle guards a code exchange, FordPass's sign-in or a FordConnect
// consent, whatever door the code came from: the same code is never
// exchanged twice (codes are single use), and after a failed exchange the
// next one waits (5 s, doubling up to 30 s), so a flood of junk costs Ford
// a call or two and never locks the account. The codes tried are kept as
// hashes in a file for as long as a code can live, so one that comes again
// after a restart (retained on the broker, pasted twice) costs no call.
// It is safe for concurrent use.
type CodeThrottle struct {
	file string
	now  func() time.Time

	mu       sync.Mutex
	seen     map[[32]byte]time.Time
	failures int // failed exchanges in a row
	next     time.Time
}

const (
	maxSignInWait   = 30 * time.Second
	rememberedCodes = 256
	// codeLife is how long a code is remembered: Ford's codes expire
	// within minutes.
	codeLife = time.Hour
)

// NewCodeThrottle reads the codes tried from file (a missing or damaged
// file: none).
func NewCodeThrottle(file string, now func() time.Time) *CodeThrottle {
	t := &CodeThrottle{file: file, now: now, seen: map[[32]byte]time.Time{}}
	data, err := os.ReadFile(file)
	if err != nil {
		return t
	}
	var saved map[string]time.Time
	if json.Unmarshal(data, &saved) != nil {
		return t
	}
	for h, at := range saved {
		var sum [32]byte
		if b, err := hex.DecodeString(h); err == nil && len(b) == len(sum) && now().Sub(at) < codeLife {
			copy(sum[:], b)
			t.seen[sum] = at
		}
	}
	return t
}

// Admit says whether code may be exchanged now: an error matching
// ErrInvalidCode for a code tried before, a *SignInThrottleError while the
// wait after a failure runs. An admitted code is remembered at once; the
// caller reports the exchange's outcome with Done.
func (t *CodeThrottle) Admit(code string) error {
	sum := sha256.Sum256([]byte(code))
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if at, ok := t.seen[sum]; ok && now.Sub(at) < codeLife {
		return fmt.Errorf("%w: this code was already tried, and codes are single-use; sign in again for a new one", ErrInvalidCode)
	}
	if now.Before(t.next) {
		return &SignInThrottleError{RetryAt: t.next}
	}
	t.rememberLocked(sum, now)
	_ = t.saveLocked() // best effort: a restart may then try a code again
	return nil
}

// Done reports an admitted code's exchange. Every failure counts, not only
// a refused code: a code is single use, and an exchange that ended in a
// 5xx may have spent it.
func (t *CodeThrottle) Done(ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ok {
		t.failures = 0
		return
	}
	t.failures++
	t.next = t.now().Add(min(5*time.Second<<min(t.failures-1, 10), maxSignInWait))
}

// AllowedAt is when the next exchange may be made.
func (t *CodeThrottle) AllowedAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next
}

// rememberLocked records a code tried at now, forgetting codes past their
// life and the oldest beyond rememberedCodes.
func (t *CodeThrottle) rememberLocked(sum [32]byte, now time.Time) {
	for k, at := range t.seen {
		if now.Sub(at) >= codeLife {
			delete(t.seen, k)
		}
	}
	for len(t.seen) >= rememberedCodes {
		var oldest [32]byte
		first := true
		for k, at := range t.seen {
			if first || at.Before(t.seen[oldest]) {
				oldest, first = k, false
			}
		}
		delete(t.seen, oldest)
	}
	t.seen[sum] = now
}

// saveLocked writes the codes tried (hashes only).
func (t *CodeThrottle) saveLocked() error {
	out := make(map[string]time.Time, len(t.seen))
	for sum, at := range t.seen {
		out[hex.EncodeToString(sum[:])] = at.UTC()
	}
	data, _ := json.Marshal(out)
	return WriteFileAtomic(t.file, data)
}
