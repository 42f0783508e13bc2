package bridge

import (
	"testing"
	"time"
)

// TestBackoffOverAnHourOfOutage: with the defaults (5 s doubling to 15 min,
// full jitter over the upper half), an hour without Ford costs about a
// dozen attempts, and the gaps never collapse into a tight loop.
func TestBackoffOverAnHourOfOutage(t *testing.T) {
	t.Parallel()
	for run := 0; run < 200; run++ {
		bo := &backoff{min: 5 * time.Second, max: 15 * time.Minute}
		elapsed, attempts := time.Duration(0), 0
		for elapsed < time.Hour {
			d := bo.next()
			if d < 2500*time.Millisecond || d > 15*time.Minute {
				t.Fatalf("wait %s outside [2.5s, 15m]", d)
			}
			elapsed += d
			attempts++
		}
		if attempts < 8 || attempts > 16 {
			t.Fatalf("run %d: %d attempts in an hour of outage", run, attempts)
		}
	}
	bo := &backoff{min: 5 * time.Second, max: 15 * time.Minute}
	var seq []time.Duration
	for range 10 {
		seq = append(seq, bo.next().Round(time.Second))
	}
	t.Logf("one jittered schedule: %v", seq)
}
