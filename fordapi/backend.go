package fordapi

import "context"

// Backend is what the bridge asks of Ford, whichever service answers: the
// FordPass client (Client), FordConnect Query (fordconnect.Client) and the
// two together (both.Backend) each are one.
//
// Calls to Ford's hosts beyond these (the climate profile, zone lighting)
// are the FordPass client's own methods, reached through FordPass: a
// command that needs a new one adds a Client method and its row, never a
// method here.
type Backend interface {
	LoginURL() (string, error)
	SignIn(ctx context.Context, pasted string) error
	Status() AuthStatus
	SaveToken() error
	Vehicles(ctx context.Context) ([]Vehicle, error)
	Telemetry(ctx context.Context, vin string) (*Telemetry, error)
	Stream(ctx context.Context, vin string, opts StreamOptions, onUpdate func(*Telemetry)) error
	// SendCommand asks Ford to run a command and returns its id; version
	// is "" for the commands of Ford's first command path.
	SendCommand(ctx context.Context, vin, cmdType, version string, props map[string]any) (string, error)
	WaitCommand(ctx context.Context, vin, cmdType, id string, updates <-chan *Telemetry, polled func(*Telemetry)) (CommandState, error)
	// FordPass calls f with the FordPass client, for a call to Ford's
	// other hosts, and returns its error; a backend without FordPass
	// returns why it has none.
	FordPass(f func(*Client) error) error
	Budget() *Budget
}

// FordPass calls f with the client itself.
func (c *Client) FordPass(f func(*Client) error) error { return f(c) }

var _ Backend = (*Client)(nil)

// A backend may also be one of these; the bridge asks by a type assertion.
type (
	// RefusalRetrier keeps a sign-in Ford refused and tries it again by
	// itself on a schedule (Refusal); healed: the sign-in holds again.
	RefusalRetrier interface {
		RetryRefused(ctx context.Context) (tried, healed bool)
	}
	// TokenFileChecker compares its token file with the token in use and
	// mends it, saying what it found ("" when nothing).
	TokenFileChecker interface{ CheckTokenFile() string }
	// SocketBinder says whether Ford allows one telemetry socket per
	// token now (Client.OneSocket).
	SocketBinder interface{ OneSocket() bool }
	// BudgetHolder holds more than its Budget (both: FordConnect's
	// count of Query requests): the bridge closes them all at shutdown,
	// so none is written behind its back or lost.
	BudgetHolder interface{ Budgets() []*Budget }
)
