package fordapi

import (
	"errors"
	"fmt"
	"time"
)

// Errors a caller can act on. Anything not matching one of them is transient:
// retry later with backoff, and never ask the user to sign in again because of
// it.
var (
	// ErrReauthRequired means the user must sign in again in a browser: there
	// is no token, the token file is unreadable, or Ford said the refresh
	// token is dead. Nothing is retried until a new code arrives.
	ErrReauthRequired = errors.New("re-authorization required")
	// ErrRateLimited matches *RateLimitError: Ford answered 429.
	ErrRateLimited = errors.New("rate limited by Ford")
	// ErrBudgetExhausted matches *BudgetError: the call was refused locally
	// because it would exceed the daily call budget.
	ErrBudgetExhausted = errors.New("call budget spent (refused locally)")
	// ErrVehicleNotAuthorized means Ford refuses data for this VIN on this
	// account (403 FORBIDDEN "NOT AUTHORIZED TO PERFORM"): a user action in
	// the FordPass app is needed; the token is fine.
	ErrVehicleNotAuthorized = errors.New("vehicle not authorized for this account")
	// ErrInvalidCode means a pasted sign-in code or redirect URL was rejected.
	ErrInvalidCode = errors.New("sign-in code rejected")
	// ErrOutcomeUnknown means a command may or may not have reached the car:
	// the connection dropped after the request was sent.
	ErrOutcomeUnknown = errors.New("outcome unknown")
)

// ReauthError says why re-authorization is required.
type ReauthError struct{ Reason string }

func (e *ReauthError) Error() string        { return "re-authorization required: " + e.Reason }
func (e *ReauthError) Is(target error) bool { return target == ErrReauthRequired }

// RateLimitError is Ford's 429, with the time it said to come back.
type RateLimitError struct {
	Endpoint string
	RetryAt  time.Time
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%s: rate limited by Ford until %s", e.Endpoint, e.RetryAt.UTC().Format(time.RFC3339))
}
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// BudgetError is a call refused locally to stay within the call budget: no
// call reached Ford, and Ford has not limited anything.
type BudgetError struct {
	Class       Class
	Used, Limit int // calls of the class in 24 h, and its share
	RetryAt     time.Time
	// Paced is true when the class's daily share is not spent but the hourly
	// pace that spreads it over the day is: a normal wait, not a fault.
	Paced bool
}

func (e *BudgetError) Error() string {
	what := fmt.Sprintf("the %s share of the daily Ford call budget is spent (%d of %d calls in 24 h)", e.Class, e.Used, e.Limit)
	if e.Paced {
		what = fmt.Sprintf("this hour's pace of %s calls is spent (the day's %s share is %d)", e.Class, e.Class, e.Limit)
	}
	return fmt.Sprintf("refused locally to keep within FORD_DAILY_CALL_BUDGET: %s; next %s call allowed at %s",
		what, e.Class, e.RetryAt.UTC().Format(time.RFC3339))
}
func (e *BudgetError) Is(target error) bool { return target == ErrBudgetExhausted }

// SignInThrottleError is a sign-in refused locally, without a Ford call,
// because the previous code was refused moments ago.
type SignInThrottleError struct{ RetryAt time.Time }

func (e *SignInThrottleError) Error() string {
	return fmt.Sprintf("too many sign-in attempts: the next code is tried at %s (Ford locks accounts after repeated failed sign-ins)",
		e.RetryAt.UTC().Format(time.RFC3339))
}

// StatusError is an unexpected HTTP answer from Ford. It is transient unless
// it also matches one of the sentinel errors above.
type StatusError struct {
	Endpoint string
	Status   int
	Message  string // Ford's message or a short excerpt of the body
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: HTTP %d", e.Endpoint, e.Status)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Endpoint, e.Status, e.Message)
}

// CommandError is a command the car or the cloud reported as failed.
type CommandError struct {
	Command, State, Detail string
}

func (e *CommandError) Error() string {
	s := fmt.Sprintf("%s command ended in %s", e.Command, e.State)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// ErrStreamUnauthorized: Ford closed a socket because its token expired.
// Transient: reopening the socket renews the token, once.
var ErrStreamUnauthorized = errors.New("the socket's token expired")

// ErrStreamDisplaced: Ford closed the socket as another car's opened on
// the same token (sockets.go). Transient.
var ErrStreamDisplaced = errors.New("another car's socket displaced it")

// IsTransient reports whether err is a fault that may heal by itself: not a
// dead token, not a rate limit or budget refusal, not a refused VIN or code.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range []error{ErrReauthRequired, ErrRateLimited, ErrBudgetExhausted, ErrVehicleNotAuthorized, ErrInvalidCode} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}
