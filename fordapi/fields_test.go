package fordapi_test

import (
	"os"
	"strings"
	"testing"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// TestEveryFieldHasItsSpec: every field the parser gives for the
// project's real-shaped records is declared in Fields (so Home Assistant
// knows what it is), with a number's digits being the decimals it has.
func TestEveryFieldHasItsSpec(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"testdata/truck_record.json", "testdata/telemetry_ev.json", "testdata/bev_record.json"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		_, tel, err := fordapi.ParseTelemetry(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range tel.Fields {
			spec, _, ok := fordapi.SpecOf(f.Name)
			if !ok {
				t.Errorf("%s: field %s has no spec in fordapi.Fields", name, f.Name)
				continue
			}
			if f.Value.IsNumber() != (spec.Kind == fordapi.KindNumber) {
				t.Errorf("%s: %s = %v, but its spec's kind is %d", name, f.Name, f.Value, spec.Kind)
			}
			if f.Value.IsNumber() {
				s := f.Value.String()
				if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i-1 > spec.Digits {
					t.Errorf("%s: %s = %s has more than its %d digits", name, f.Name, s, spec.Digits)
				}
			}
		}
	}
}

// TestReadmeFieldTableFollowsTheSpec: the README's field table names every
// field of the spec (a family by its prefix), with a number's unit, and
// no field the spec lacks.
func TestReadmeFieldTableFollowsTheSpec(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "| field | unit / values |")
	if start < 0 {
		t.Fatal("the README has no field table")
	}
	table := readme[start:]
	table = table[:strings.Index(table, "\n\n")]
	rows := map[string]string{}
	for _, line := range strings.Split(table, "\n")[2:] {
		cells := strings.Split(line, "|")
		for _, name := range strings.Split(cells[1], ",") {
			name = strings.Trim(strings.TrimSpace(name), "`")
			if i := strings.Index(name, "<"); i >= 0 {
				name = name[:i]
			}
			rows[name] = line
		}
	}
	for _, spec := range fordapi.Fields {
		row, ok := rows[spec.Name]
		if !ok {
			t.Errorf("the README's field table lacks %s", spec.Name)
			continue
		}
		if spec.Kind == fordapi.KindNumber && !strings.Contains(strings.Split(row, "|")[2], spec.Unit) {
			t.Errorf("the README gives %s without its unit %s: %s", spec.Name, spec.Unit, row)
		}
	}
	for name := range rows {
		if _, _, ok := fordapi.SpecOf(name + map[bool]string{true: "x", false: ""}[strings.HasSuffix(name, "_")]); !ok && name != "updated_at" {
			t.Errorf("the README's field table names %s, which fordapi.Fields lacks", name)
		}
	}
}
