package bridge

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
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

// checkDrift is doctor's finding on what Ford sent that this version does
// not understand.
func checkDrift(stateDir string) Check {
	c := Check{Name: "protocol drift", Status: Pass, Finding: "every metric Ford sent was understood"}
	data, err := os.ReadFile(filepath.Join(stateDir, driftFile))
	if err != nil {
		if !os.IsNotExist(err) {
			c.Finding = "cannot read " + driftFile + ": " + err.Error()
		}
		return c
	}
	var d Drift
	if json.Unmarshal(data, &d) != nil {
		c.Finding = driftFile + " is unreadable; it is rewritten at the next unknown metric"
		return c
	}
	var parts []string
	names := make([]string, 0, len(d.Unknown))
	for n := range d.Unknown {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s (%s)", n, d.Unknown[n]))
	}
	if len(parts) == 0 && len(d.Unreadable) == 0 {
		return c
	}
	c.Status = Warn
	c.Finding = ""
	if len(parts) > 0 {
		c.Finding = fmt.Sprintf("Ford sent %d metric(s) this version does not know: %s", len(parts), strings.Join(parts, ", "))
	}
	if len(d.Unreadable) > 0 {
		if c.Finding != "" {
			c.Finding += "; "
		}
		c.Finding += "known metric(s) in a shape this version cannot read, left out: " + strings.Join(d.Unreadable, ", ")
	}
	c.Fix = "nothing breaks: the rest is published. Paste this line into a bug report so a new version can publish them (it holds names and types, never values)"
	return c
}
