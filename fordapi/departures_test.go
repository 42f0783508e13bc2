package fordapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// TestDepartureTimesAndSchedules: departure_times follows ha-fordpass's
// get_departure_times_state (off when the feature says OFF, else on when
// any schedule is ON), and the schedules become the departure_schedule
// details: at most 50 shown, while an ON schedule past them still counts.
func TestDepartureTimesAndSchedules(t *testing.T) {
	t.Parallel()
	sched := func(status, day string) string {
		return fmt.Sprintf(`{"scheduleId":1,"scheduleStatus":%q,"schedule":{"timeZone":"LOCAL_TIME","weeklySchedule":{"dayOfWeek":%q,"timeOfDay":"07:30"}}}`, status, day)
	}
	many := make([]string, 60)
	for i := range many {
		many[i] = sched("OFF", "monday")
	}
	many[59] = sched("ON", "sunday")
	for _, c := range []struct {
		name, setting, want string
		shown               int
	}{
		{"on", `{"departureLocations":[{"locationId":3,"departureSchedules":[` + sched("OFF", "MONDAY") + `,` + sched("ON", "FRIDAY") + `]}]}`, "on", 2},
		{"feature off", `{"departureScheduleFeatureStatus":"OFF","departureLocations":[{"locationId":3,"departureSchedules":[` + sched("ON", "MONDAY") + `]}]}`, "off", 1},
		{"all off", `{"departureLocations":[{"locationId":3,"departureSchedules":[` + sched("OFF", "MONDAY") + `]}]}`, "off", 1},
		{"no schedules", `{"departureLocations":[]}`, "off", 0},
		{"60, the ON one last", `{"departureLocations":[{"locationId":"home","departureSchedules":[` + strings.Join(many, ",") + `]}]}`, "on", 50},
		{"broken shapes", `{"departureLocations":[7,{"departureSchedules":"x"},{"departureSchedules":[3]}]}`, "off", 1},
	} {
		doc := `{"updateTime":"2026-12-06T10:00:00Z","metrics":{"configurations":{"xevDepartureSchedulesSetting":{"value":` + c.setting + `}}}}`
		_, tel, err := fordapi.ParseTelemetry([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if v, _ := tel.Field(fordapi.FieldDepartureTimes); v.String() != c.want {
			t.Errorf("%s: departure_times %q, want %q", c.name, v.String(), c.want)
		}
		var d struct {
			Schedules []map[string]any `json:"schedules"`
		}
		if js := tel.Details["departure_schedule"]; js != "" {
			if err := json.Unmarshal([]byte(js), &d); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		if len(d.Schedules) != c.shown {
			t.Errorf("%s: %d schedules shown, want %d", c.name, len(d.Schedules), c.shown)
		}
	}
	_, tel, _ := fordapi.ParseTelemetry([]byte(`{"updateTime":"2026-12-06T10:00:00Z","metrics":{"configurations":{}}}`))
	if _, ok := tel.Field(fordapi.FieldDepartureTimes); ok || tel.Details != nil {
		t.Errorf("a record without the setting shows departure times: %v", tel.Details)
	}
}
