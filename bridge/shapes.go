package bridge

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

const shapesFile = "devices.json"

// shape is what a car's Home Assistant device is made of: the fields it
// reports and whether it has a location and a report time. It is kept in
// STATE_DIR, so that after a restart the car's device config is published
// whole from what the car reported before, not stripped to its buttons
// until its first telemetry arrives.
type shape struct {
	Fields    []string `json:"fields"`
	Location  bool     `json:"location,omitempty"`
	UpdatedAt bool     `json:"updated_at,omitempty"`
	// Climate is the car's remote climate profile as last read or written
	// (P/VIN/climate), so its climate entities have values at once after a
	// restart; kept apart from the shape (set by climate).
	Climate string `json:"climate,omitempty"`
}

func shapeOf(tel *fordapi.Telemetry) shape {
	s := shape{Fields: make([]string, len(tel.Fields)), Location: tel.Location != nil, UpdatedAt: !tel.UpdatedAt.IsZero()}
	for i, f := range tel.Fields { // in name order
		s.Fields[i] = f.Name
	}
	return s
}

func (s shape) equal(o shape) bool { // the device's shape: Climate aside
	return s.Location == o.Location && s.UpdatedAt == o.UpdatedAt && slices.Equal(s.Fields, o.Fields)
}

// shapes are the cars' shapes. A change is saved within shapesSaveDelay
// (and at shutdown, flush): a fleet's start changes every car's shape at
// once, and the file holds them all.
type shapes struct {
	mu      sync.Mutex
	dir     string
	log     *zap.Logger
	m       map[string]shape
	pending *time.Timer // a save is due
	saving  sync.Mutex  // held while the file is written
	// recent are the last distinct field lists kept: a car whose list
	// equals one of them shares it, so a fleet of a few models holds a
	// few lists, not one per car (0.7 MB for the load harness's 1,000).
	recent [][]string
}

// maxRecentShapes bounds recent: a fleet has a few models, and a car
// whose list is not among them keeps its own.
const maxRecentShapes = 8

// sharedLocked returns a list equal to f that another car already holds,
// if a recent one is, else f (remembered).
func (s *shapes) sharedLocked(f []string) []string {
	for _, r := range s.recent {
		if slices.Equal(r, f) {
			return r
		}
	}
	if len(s.recent) == maxRecentShapes {
		copy(s.recent, s.recent[1:])
		s.recent = s.recent[:maxRecentShapes-1]
	}
	s.recent = append(s.recent, f)
	return f
}

const shapesSaveDelay = 2 * time.Second

func loadShapes(dir string, log *zap.Logger) *shapes {
	s := &shapes{dir: dir, log: log, m: map[string]shape{}}
	data, err := os.ReadFile(filepath.Join(dir, shapesFile))
	if err == nil && json.Unmarshal(data, &s.m) != nil {
		log.Warn("ignoring a damaged device file; each car's device is published from its first telemetry", zap.String("file", shapesFile))
		s.m = map[string]shape{}
	}
	for vin, sh := range s.m {
		if sh.Fields != nil {
			sh.Fields = s.sharedLocked(sh.Fields)
			s.m[vin] = sh
		}
	}
	return s
}

func (s *shapes) get(vin string) (shape, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, ok := s.m[vin]
	return sh, ok && sh.Fields != nil
}

// set records a car's shape, on disk too when it changed.
func (s *shapes) set(vin string, sh shape) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[vin]
	if ok && old.equal(sh) {
		return
	}
	sh.Climate = old.Climate
	sh.Fields = s.sharedLocked(sh.Fields)
	s.m[vin] = sh
	s.saveSoonLocked()
}

// climate is the car's climate profile as last kept ("" when none).
func (s *shapes) climate(vin string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[vin].Climate
}

// setClimate keeps the car's climate profile, on disk too when it changed.
func (s *shapes) setClimate(vin, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.m[vin]
	if sh.Climate == state {
		return
	}
	sh.Climate = state // with no shape yet (Fields nil), get says none
	s.m[vin] = sh
	s.saveSoonLocked()
}

// forget drops the shape of a car that is no longer bridged.
func (s *shapes) forget(vin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[vin]; ok {
		delete(s.m, vin)
		s.saveSoonLocked()
	}
}

func (s *shapes) saveSoonLocked() {
	if s.pending == nil {
		s.pending = time.AfterFunc(shapesSaveDelay, s.flush)
	}
}

// flush saves the shapes now if a change is waiting.
func (s *shapes) flush() {
	s.saving.Lock() // a save under way finishes first
	defer s.saving.Unlock()
	s.mu.Lock()
	if s.pending == nil {
		s.mu.Unlock()
		return
	}
	s.pending.Stop()
	s.pending = nil
	data, _ := json.Marshal(s.m)
	s.mu.Unlock()
	if err := fordapi.WriteFileAtomic(filepath.Join(s.dir, shapesFile), data); err != nil {
		s.log.Warn("cannot save the cars' device shapes; a restart publishes each device from its first telemetry", zap.Error(err))
	}
}
