package bridge_test

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// evccSource is one of evcc's plugin configs in deploy/evcc/evcc.yaml.
type evccSource struct {
	Source, Topic, Payload, Jq string
}

// TestEvccExampleReadsAndDrivesTheEV: every topic deploy/evcc/evcc.yaml
// reads exists on the simulator's EV while it charges, in the format evcc
// parses it (numbers, A/B/C, RFC 3339, the position's JSON), and its
// setters, rendered as evcc renders them, start and pause the charge and
// wake the car through the bridge.
func TestEvccExampleReadsAndDrivesTheEV(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../deploy/evcc/evcc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Vehicles []map[string]yaml.Node `yaml:"vehicles"`
	}
	if err := yaml.Unmarshal(data, &conf); err != nil || len(conf.Vehicles) != 1 {
		t.Fatalf("evcc.yaml: %v (%d vehicles)", err, len(conf.Vehicles))
	}
	ev := fordsim.VIN(2)
	e := newEnv(t, envOptions{signedIn: true, stream: true, sim: fordsim.Options{Vehicles: 2},
		allowed: []string{"lock", "charge_start", "charge_pause", "refresh"}})
	sources := map[string]evccSource{}
	for key, node := range conf.Vehicles[0] {
		var src evccSource
		if key == "position" {
			var pos map[string]evccSource
			if err := node.Decode(&pos); err != nil {
				t.Fatal(err)
			}
			sources["latitude"], sources["longitude"] = pos["latitude"], pos["longitude"]
			continue
		}
		if node.Decode(&src) == nil && src.Source == "mqtt" {
			sources[key] = src
		}
	}
	topic := func(src evccSource) string {
		if !strings.HasPrefix(src.Topic, "fordpass/"+ev+"/") {
			t.Fatalf("%s is not a topic of the example's car", src.Topic)
		}
		return e.p + strings.TrimPrefix(src.Topic, "fordpass")
	}
	e.waitStream(ev)
	e.patch(ev, `{"metrics":{"xevPlugChargerStatus":{"value":"CONNECTED"},"xevBatteryChargeDisplayStatus":{"value":"IN_PROGRESS"},`+
		`"xevBatteryTimeToFullCharge":{"value":45,"updateTime":"`+time.Now().UTC().Format(time.RFC3339)+`"}}}`)
	number := func(s string) bool { _, err := strconv.ParseFloat(s, 64); return err == nil }
	formats := map[string]func(string) bool{
		"soc": number, "range": number, "odometer": number, "limitsoc": number,
		"status":     func(s string) bool { return s == "C" }, // charging
		"finishtime": func(s string) bool { _, err := time.Parse(time.RFC3339, s); return err == nil },
		"latitude":   number, "longitude": number,
	}
	for key, ok := range formats {
		src, given := sources[key]
		if !given {
			t.Errorf("the example reads no %s", key)
			continue
		}
		got := e.w.WaitFor(topic(src), 10*time.Second, func(string) bool { return true })
		if src.Jq != "" { // the position: a key of the location's JSON
			var obj map[string]any
			if err := json.Unmarshal([]byte(got), &obj); err != nil {
				t.Fatalf("%s: %q is not JSON", key, got)
			}
			got = strconv.FormatFloat(obj[strings.TrimPrefix(src.Jq, ".")].(float64), 'f', -1, 64)
		}
		e.w.WaitFor(topic(src), 10*time.Second, func(s string) bool { return src.Jq != "" || ok(s) })
		if src.Jq != "" && !ok(got) {
			t.Errorf("%s: %q", key, got)
		}
	}
	render := func(src evccSource, param string, v any) string {
		var b strings.Builder
		if err := template.Must(template.New("").Parse(src.Payload)).Execute(&b, map[string]any{param: v}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for _, step := range []struct {
		key, param string
		value      any
		ford       string
	}{
		{"chargeenable", "chargeenable", false, "pauseGlobalCharge"},
		{"chargeenable", "chargeenable", true, "startGlobalCharge"},
		{"wakeup", "wakeup", true, "statusRefresh"},
	} {
		src := sources[step.key]
		before := len(e.sim.Stats().Commands)
		results := len(e.w.History(e.topic(ev, "command", "result")))
		cmd := render(src, step.param, step.value)
		e.w.Publish(topic(src), cmd, false)
		res := e.w.WaitEvent(e.topic(ev, "command", "result"), 10*time.Second, func(s string) bool {
			return len(e.w.History(e.topic(ev, "command", "result"))) > results+1 && strings.Contains(s, `"command":"`+cmd+`","status":"success"`)
		})
		cmds := e.sim.Stats().Commands
		if len(cmds) != before+1 || cmds[len(cmds)-1].Type != step.ford {
			t.Fatalf("%s=%v: %s; Ford got %v", step.key, step.value, res, cmds[before:])
		}
	}
	if slices.ContainsFunc(e.w.History(e.topic(ev, "command", "result")), func(s string) bool { return strings.Contains(s, `"rejected"`) }) {
		t.Fatal("a command of the example was rejected")
	}
}
