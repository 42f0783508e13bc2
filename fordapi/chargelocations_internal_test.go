package fordapi

import (
	"context"
	"errors"
	"testing"
)

// TestAnIncompleteLocationIsNotSent: an entry Ford listed without one of
// the keys a change sends back (the location's address, id, latitude,
// longitude, name and type; the profile's chargeMode and schedules), or
// with an id that is neither a string nor a number, or broken JSON, is
// refused with ErrLocationIncomplete before any call (the zero Client
// would fail on one).
func TestAnIncompleteLocationIsNotSent(t *testing.T) {
	t.Parallel()
	const loc = `"address":"a","latitude":1,"longitude":2,"name":"Home","type":"SAVED"`
	const profile = `"chargeProfile":{"chargeMode":"VALUE_CHARGE","schedules":[]}`
	for name, entry := range map[string]string{
		"no id":        `{"vin":"V","location":{` + loc + `},` + profile + `}`,
		"object id":    `{"vin":"V","location":{"id":{"x":1},` + loc + `},` + profile + `}`,
		"no schedules": `{"vin":"V","location":{"id":"h",` + loc + `},"chargeProfile":{"chargeMode":"VALUE_CHARGE"}}`,
		"no position":  `{"vin":"V","location":{"id":"h","address":"a","name":"Home","type":"SAVED"},` + profile + `}`,
		"no profile":   `{"vin":"V","location":{"id":"h",` + loc + `}}`,
		"broken":       `{"vin":`,
	} {
		err := (&Client{}).SetChargeLocationTarget(context.Background(), "V", ChargeLocation{Name: "Home", Ford: []byte(entry)}, 80)
		if !errors.Is(err, ErrLocationIncomplete) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
