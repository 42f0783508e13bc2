package fordapi

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestANewListFamilyIsARow: a list-shaped family Ford sends and the
// bridge does not read yet (seat belts, seatBeltStatus, each entry naming
// its seat by vehicleOccupantRole) is read by the one family reader from a
// List alone: members named from Ford's words, values from the row's
// Value, an entry without a member or a value left out, and a metric that
// is not a list marked unreadable.
func TestANewListFamilyIsARow(t *testing.T) {
	spec := FieldSpec{Name: "seatbelt_", Family: true, Kind: KindOnOff, On: "buckled", Off: "unbuckled",
		List: &List{Part: "vehicleOccupantRole", Value: func(f *FieldSpec, v any) (Value, bool) {
			s, ok := v.(string)
			if s == "BUCKLED" {
				return Word(f.On), ok
			}
			return Word(f.Off), ok
		}}}
	read := spec.List.reader(&spec, "seatBeltStatus")
	var raw any
	_ = json.Unmarshal([]byte(`[{"vehicleOccupantRole":"DRIVER","value":"BUCKLED"},{"vehicleOccupantRole":"FRONT_PASSENGER","value":"UNBUCKLED"},
		{"vehicleOccupantRole":"REAR_LEFT"},{"value":"BUCKLED"},"junk"]`), &raw)
	var w fieldWriter
	read(&w, raw)
	want := []Field{{Name: "seatbelt_driver", Value: Word("buckled")}, {Name: "seatbelt_front_passenger", Value: Word("unbuckled")}}
	if !slices.Equal(w.out, want) || w.skipped {
		t.Fatalf("read %+v (skipped %v), want %+v", w.out, w.skipped, want)
	}
	w = fieldWriter{}
	read(&w, map[string]any{"value": "BUCKLED"})
	if !w.skipped || len(w.out) != 0 {
		t.Fatalf("an object where a list belongs: %+v, skipped %v", w.out, w.skipped)
	}
}
