package bridge

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"go.uber.org/zap"
)

// TestAccountKeepsCarsFordLeavesOut: an empty list changes nothing; a car
// missing from a list that names others stays for seven days, and comes
// back clean when Ford lists it again.
func TestAccountKeepsCarsFordLeavesOut(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 8, 20, 9, 0, 0, 0, time.UTC)
	truck, ev := fordapi.Vehicle{VIN: "1FTEW1EP000000001"}, fordapi.Vehicle{VIN: "3FMTK3SU000000002"}
	a, removed := Account{}.answered([]fordapi.Vehicle{truck, ev}, t0)
	if len(a.Vehicles) != 2 || removed != nil || !a.FetchedAt.Equal(t0) {
		t.Fatalf("first list: %+v %v", a, removed)
	}
	for i := 1; i <= 3; i++ { // Ford answers "no vehicles" for hours
		a, removed = a.answered(nil, t0.Add(time.Duration(i)*time.Hour))
		if len(a.Vehicles) != 2 || removed != nil || a.EmptyAnswers != i || !a.FetchedAt.Equal(t0) {
			t.Fatalf("empty answer %d: %+v %v", i, a, removed)
		}
	}
	a, _ = a.answered([]fordapi.Vehicle{truck}, t0.Add(4*time.Hour))
	if a.EmptyAnswers != 0 || len(a.Vehicles) != 2 || !a.MissingSince[ev.VIN].Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("the EV left out once: %+v", a)
	}
	a, removed = a.answered([]fordapi.Vehicle{truck}, t0.Add(4*time.Hour+MissingGrace-time.Minute))
	if len(a.Vehicles) != 2 || removed != nil {
		t.Fatalf("removed before seven days: %+v %v", a, removed)
	}
	back, _ := a.answered([]fordapi.Vehicle{truck, ev}, t0.Add(5*time.Hour))
	if len(back.MissingSince) != 0 || len(back.Vehicles) != 2 {
		t.Fatalf("listed again, still missing: %+v", back)
	}
	a, removed = a.answered([]fordapi.Vehicle{truck}, t0.Add(4*time.Hour+MissingGrace))
	if len(a.Vehicles) != 1 || !slices.Equal(removed, []string{ev.VIN}) || len(a.MissingSince) != 0 {
		t.Fatalf("after seven days: %+v %v", a, removed)
	}
}

// TestAccountCacheFormats: the cache round-trips, the older bare list is
// read as a list of unknown age, and a damaged file is an error.
func TestAccountCacheFormats(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if a, err := ReadAccount(dir); err != nil || len(a.Vehicles) != 0 {
		t.Fatalf("no cache: %+v %v", a, err)
	}
	want := Account{FetchedAt: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), Vehicles: []fordapi.Vehicle{{VIN: "1FTEW1EP000000001", Nickname: "Truck"}},
		MissingSince: map[string]time.Time{"1FTEW1EP000000001": time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)}}
	if err := want.Write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAccount(dir)
	if err != nil || !got.FetchedAt.Equal(want.FetchedAt) || got.Vehicles[0].Nickname != "Truck" || !got.MissingSince["1FTEW1EP000000001"].Equal(want.MissingSince["1FTEW1EP000000001"]) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	path := filepath.Join(dir, vehicleCacheFile)
	if err := os.WriteFile(path, []byte(`[{"vin":"1FTEW1EP000000001"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadAccount(dir); err != nil || len(got.Vehicles) != 1 || !got.FetchedAt.IsZero() {
		t.Fatalf("older format: %+v %v", got, err)
	}
	if err := os.WriteFile(path, []byte(`{"vehicles": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAccount(dir); err == nil {
		t.Fatal("a damaged cache was read")
	}
}

// TestDamagedDevicesFileIsIgnored: a damaged devices.json is read as no
// shapes (each device is then published from its first telemetry), and
// the next change writes it whole again.
func TestDamagedDevicesFileIsIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, shapesFile), []byte(`{"1FTEW1EP000000001": {"fields": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := loadShapes(dir, zap.NewNop())
	if _, ok := s.get("1FTEW1EP000000001"); ok {
		t.Fatal("a shape was read from a damaged file")
	}
	s.set("1FTEW1EP000000001", shape{Fields: []string{"lock", "odometer"}})
	s.flush()
	again := loadShapes(dir, zap.NewNop())
	if sh, ok := again.get("1FTEW1EP000000001"); !ok || len(sh.Fields) != 2 {
		t.Fatalf("after the next save: %+v %v", sh, ok)
	}
}

// Cars of one model share their list of fields, in memory and once read
// back from the file; a car of another model keeps its own, and a change
// of one car's list leaves the others' as they were.
func TestShapesShareAModelsFields(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := loadShapes(dir, zap.NewNop())
	ev := func() []string { return []string{"battery_level", "lock", "odometer"} }
	s.set("VIN1", shape{Fields: ev()})
	s.set("VIN2", shape{Fields: ev()})
	s.set("VIN3", shape{Fields: []string{"fuel_level", "lock", "odometer"}})
	same := func(s *shapes, a, b string) bool {
		x, _ := s.get(a)
		y, _ := s.get(b)
		return &x.Fields[0] == &y.Fields[0]
	}
	if !same(s, "VIN1", "VIN2") || same(s, "VIN1", "VIN3") {
		t.Error("two cars of a model hold a list each, or cars of two models share one")
	}
	s.set("VIN2", shape{Fields: []string{"battery_level", "lock"}})
	if sh, _ := s.get("VIN1"); len(sh.Fields) != 3 {
		t.Errorf("a change of one car's fields changed another's: %v", sh.Fields)
	}
	s.set("VIN2", shape{Fields: ev()})
	s.flush()
	again := loadShapes(dir, zap.NewNop())
	if !same(again, "VIN1", "VIN2") {
		t.Error("cars of a model read back from the file hold a list each")
	}
}
