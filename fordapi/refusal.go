package fordapi

import "time"

// Refusal is a renewal Ford refused as if the sign-in were dead
// (invalid_grant, FordPass's 460) while the refresh token is kept: during
// Ford's own outages every renewal is refused that way for a while, and the
// sign-ins were good once Ford recovered (ha-fordconnect-query #37, "RESOLVED
// NOW by Ford"). The state says reauth_required at once, so the user knows,
// and the kept token is tried again at widening intervals until one
// renewal succeeds, a new sign-in replaces it, or a week has passed.
type Refusal struct {
	Since time.Time `json:"since"` // the first refusal
	Tries int       `json:"tries"` // renewals tried again since
	Next  time.Time `json:"next"`  // the next try (zero: given up)
}

// DefaultHealSchedule is the wait before each try again: 10 minutes, an
// hour, 6 hours, then daily (the last entry repeats) until HealFor.
var DefaultHealSchedule = []time.Duration{10 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour}

// HealFor is how long a refused sign-in is tried again.
const HealFor = 7 * 24 * time.Hour

// Refused records one more refusal at now: the first starts the schedule,
// each later one moves to its next step. It returns nil once HealFor has
// passed since the first: the sign-in is dead for good.
func (r *Refusal) Refused(now time.Time, schedule []time.Duration) *Refusal {
	if r == nil {
		return &Refusal{Since: now, Next: now.Add(healStep(schedule, 0))}
	}
	n := *r
	n.Tries++
	wait := healStep(schedule, n.Tries)
	if now.Add(wait).Sub(n.Since) > HealFor {
		return nil
	}
	n.Next = now.Add(wait)
	return &n
}

// Again schedules the same step once more from now: a try that ended with
// no verdict (Ford down, the budget) says nothing of the sign-in.
func (r *Refusal) Again(now time.Time, schedule []time.Duration) {
	if r != nil {
		r.Next = now.Add(healStep(schedule, r.Tries))
	}
}

// Due says whether the kept token may be tried again at now.
func (r *Refusal) Due(now time.Time) bool {
	return r != nil && !r.Next.IsZero() && !now.Before(r.Next)
}

// healStep is the wait before try i (the schedule's last entry repeats).
func healStep(schedule []time.Duration, i int) time.Duration {
	if len(schedule) == 0 {
		schedule = DefaultHealSchedule
	}
	return schedule[min(i, len(schedule)-1)]
}
