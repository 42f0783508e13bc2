package bridge

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// driftFile records what Ford sent that this version does not understand,
// so that doctor (another process) can report it.
const driftFile = "drift.json"

// Drift is what the parser met and did not know: metric names it has never
// heard of, and known metrics in a shape it cannot read. Only names and JSON
// types are kept, never a value.
type Drift struct {
	// Unknown maps a metric name to the JSON type of its value.
	Unknown map[string]string `json:"unknown,omitempty"`
	// Unreadable lists known metrics that came in another shape.
	Unreadable []string  `json:"unreadable,omitempty"`
	Since      time.Time `json:"since"`
}

// driftLog is what was already reported since the start, so each name is
// logged once, counted once and saved once.
type driftLog struct {
	mu sync.Mutex
	d  Drift
}

// noteDrift reports the drift in one telemetry update; it logs and saves
// only what is new. A name is new once: a metric that changes its type
// keeps the first one, so a flapping metric cannot rewrite the file on
// every update.
func (b *Bridge) noteDrift(vin string, tel *fordapi.Telemetry) {
	if len(tel.Unknown) == 0 && len(tel.Skipped) == 0 {
		return
	}
	l := &b.drift
	l.mu.Lock()
	defer l.mu.Unlock()
	changed := false
	for name, typ := range tel.Unknown {
		if _, seen := l.d.Unknown[name]; seen {
			continue
		}
		changed = true
		if l.d.Unknown == nil {
			l.d.Unknown = map[string]string{}
		}
		l.d.Unknown[name] = typ
		b.m.driftSeen("unknown")
		b.log.Debug("Ford sent a metric this version does not know", zap.String("vin", fordapi.ShortVIN(vin)),
			zap.String("metric", name), zap.String("json_type", typ))
	}
	for _, name := range tel.Skipped {
		i, seen := slices.BinarySearch(l.d.Unreadable, name)
		if seen {
			continue
		}
		changed = true
		l.d.Unreadable = slices.Insert(l.d.Unreadable, i, name)
		b.m.driftSeen("unreadable")
		b.log.Debug("Ford sent a known metric in a shape this version cannot read; it is left out",
			zap.String("vin", fordapi.ShortVIN(vin)), zap.String("metric", name))
	}
	if !changed {
		return
	}
	if l.d.Since.IsZero() {
		l.d.Since = b.now().UTC().Truncate(time.Second)
	}
	data, _ := json.Marshal(l.d)
	if err := fordapi.WriteFileAtomic(filepath.Join(b.cfg.StateDir, driftFile), data); err != nil {
		b.log.Debug("cannot save the protocol drift record", zap.Error(err))
	}
}

// ReadDrift reads the protocol drift record in dir (doctor's view of it):
// a zero Drift when there is none.
func ReadDrift(dir string) (Drift, error) {
	var d Drift
	data, err := os.ReadFile(filepath.Join(dir, driftFile))
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	if json.Unmarshal(data, &d) != nil {
		return Drift{}, errors.New(driftFile + " is unreadable; it is rewritten at the next unknown metric")
	}
	return d, nil
}
