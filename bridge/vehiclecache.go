package bridge

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

const vehicleCacheFile = "vehicles.json"

// Ford's answers have left the vehicles out for hours at a time (ha-fordpass
// #255, August 2026; #271), so no answer of Ford's removes a car by itself:
// an empty list keeps every car and is asked again within the hour
// (Options.EmptyListRetry), and a car missing from a list that names others
// is kept for MissingGrace.
const MissingGrace = 7 * 24 * time.Hour

// Account is what the bridge knows of the account's cars, kept in
// STATE_DIR/vehicles.json: a restart takes the cars from it, and asks Ford
// for the list only when it is older than the list's lifetime.
type Account struct {
	FetchedAt time.Time         `json:"fetched_at,omitzero"` // Ford's last list that named vehicles
	Vehicles  []fordapi.Vehicle `json:"vehicles"`            // unfiltered, missing ones included
	// MissingSince: the cars that Ford's lists have left out, since when.
	MissingSince map[string]time.Time `json:"missing_since,omitempty"`
	// EmptyAt and EmptyAnswers: Ford's last list with no vehicles, and how
	// many such answers came since the last list that named vehicles.
	EmptyAt      time.Time `json:"empty_at,omitzero"`
	EmptyAnswers int       `json:"empty_answers,omitempty"`
}

// ReadAccount reads the vehicle cache; a missing file is an empty account.
// The older format, a bare list, is read as a list of unknown age.
func ReadAccount(dir string) (Account, error) {
	var a Account
	data, err := os.ReadFile(filepath.Join(dir, vehicleCacheFile))
	if errors.Is(err, os.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return a, err
	}
	if json.Unmarshal(data, &a) == nil {
		return a, nil
	}
	var list []fordapi.Vehicle
	if err := json.Unmarshal(data, &list); err != nil {
		return Account{}, errors.New("the vehicle cache is damaged")
	}
	return Account{Vehicles: list}, nil
}

// Write saves the account in dir (atomically).
func (a Account) Write(dir string) error {
	data, _ := json.Marshal(a)
	return fordapi.WriteFileAtomic(filepath.Join(dir, vehicleCacheFile), data)
}

func (a Account) vins() []string {
	out := make([]string, len(a.Vehicles))
	for i, v := range a.Vehicles {
		out[i] = v.VIN
	}
	return out
}

// answered folds Ford's list into the account at now. An empty list
// changes nothing but the count of empty answers. A car missing from a
// list that names others is kept until it has been missing for
// missingGrace; removed lists the cars dropped now.
func (a Account) answered(list []fordapi.Vehicle, now time.Time) (next Account, removed []string) {
	if len(list) == 0 {
		a.EmptyAt, a.EmptyAnswers = now, a.EmptyAnswers+1
		return a, nil
	}
	next = Account{FetchedAt: now, Vehicles: append([]fordapi.Vehicle(nil), list...)}
	listed := map[string]bool{}
	for _, v := range list {
		listed[v.VIN] = true
	}
	for _, v := range a.Vehicles {
		if listed[v.VIN] {
			continue
		}
		since, ok := a.MissingSince[v.VIN]
		if !ok {
			since = now
		}
		if now.Sub(since) >= MissingGrace {
			removed = append(removed, v.VIN)
			continue
		}
		if next.MissingSince == nil {
			next.MissingSince = map[string]time.Time{}
		}
		next.MissingSince[v.VIN] = since
		next.Vehicles = append(next.Vehicles, v)
	}
	return next, removed
}
