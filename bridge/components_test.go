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
