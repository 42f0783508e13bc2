package bridge

import (
	"maps"
	"testing"
)

func TestComponentsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []map[string]string{nil, {"lock": "lock"}, {"odometer": "sensor", "door_driver": "binary_sensor", "horn_button": "button"}} {
		got := map[string]string{}
		componentsOf(m).each(func(k, p string) { got[k] = p })
		if len(m) == 0 && len(got) == 0 {
			continue
		}
		if !maps.Equal(got, m) {
			t.Errorf("%v came back as %v", m, got)
		}
	}
}

// Two devices with the same components hold one copy of them.
func TestComponentsShared(t *testing.T) {
	t.Parallel()
	a := componentsOf(map[string]string{"odometer": "sensor", "lock": "lock"})
	b := componentsOf(map[string]string{"lock": "lock", "odometer": "sensor"})
	if a != b {
		t.Error("two devices with the same components hold a copy each")
	}
	if a == componentsOf(map[string]string{"odometer": "sensor"}) {
		t.Error("devices with different components share them")
	}
}
