// Package deploy holds the deployment files (Dockerfile, compose, mosquitto,
// Home Assistant, Node-RED, systemd) and the tests that check them without a
// Docker engine.
package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
)

func read(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Restart     string            `yaml:"restart"`
		Profiles    []string          `yaml:"profiles"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck map[string]any `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestComposeFile(t *testing.T) {
	t.Parallel()
	var c compose
	if err := yaml.Unmarshal(read(t, "../docker-compose.yml"), &c); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	mq, ok := c.Services["mosquitto"]
	if !ok || mq.Healthcheck == nil || mq.Restart == "" {
		t.Fatalf("mosquitto service needs a health check and a restart policy: %+v", mq)
	}
	for _, v := range []string{"mosquitto.conf", "acl", "passwd"} {
		if !slices.ContainsFunc(mq.Volumes, func(s string) bool { return strings.Contains(s, "/mosquitto/config/"+v) }) {
			t.Errorf("mosquitto does not mount its %s", v)
		}
	}
	known := config.EnvVars()
	for _, name := range []string{"fordpass2mqtt", "demo"} {
		s, ok := c.Services[name]
		if !ok {
			t.Fatalf("service %s missing", name)
		}
		if s.Restart == "" || s.DependsOn["mosquitto"].Condition != "service_healthy" {
			t.Errorf("%s: restart %q, depends_on %+v", name, s.Restart, s.DependsOn)
		}
		for k := range s.Environment {
			if k != "TZ" && !slices.Contains(known, k) {
				t.Errorf("%s sets %s, which the bridge does not read", name, k)
			}
		}
		if s.Environment["MQTT_USERNAME"] == "" || s.Environment["MQTT_PASSWORD"] == "" {
			t.Errorf("%s connects without broker credentials", name)
		}
	}
	bridgeSvc := c.Services["fordpass2mqtt"]
	if !slices.ContainsFunc(bridgeSvc.Volumes, func(s string) bool { return strings.HasSuffix(s, ":/data") }) {
		t.Error("the bridge's /data volume is missing: tokens would not survive a restart")
	}
	if _, ok := c.Volumes["fordpass-data"]; !ok {
		t.Error("named volume fordpass-data missing")
	}
	if bridgeSvc.Environment["STATE_DIR"] != "/data" {
		t.Error("STATE_DIR must be /data")
	}
	demo := c.Services["demo"]
	if !slices.Contains(demo.Profiles, "demo") || !slices.Equal(demo.Command, []string{"demo"}) {
		t.Errorf("demo service: profiles %v, command %v", demo.Profiles, demo.Command)
	}
	// The production image has no demo: the demo service builds its own target,
	// which the Dockerfile must have.
	if b, _ := demo.Build.(map[string]any); b["target"] != "demo" || !strings.Contains(string(read(t, "../Dockerfile")), " AS demo") {
		t.Errorf("demo service build %v: it must build the Dockerfile's demo target", demo.Build)
	}
	if demo.Environment["MQTT_TOPIC_PREFIX"] == "" || demo.Environment["MQTT_TOPIC_PREFIX"] == "fordpass" ||
		demo.Environment["MQTT_CLIENT_ID"] == "" {
		t.Error("the demo must not share the real bridge's topic prefix or client id")
	}
}

// TestDockerfileBuildLine runs the exact go build of the Dockerfile and
// checks the result is a small static binary.
func TestDockerfileBuildLine(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary twice")
	}
	df := string(read(t, "../Dockerfile"))
	m := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 .*go build .*)$`).FindStringSubmatch(df)
	if m == nil {
		t.Fatal("no CGO_ENABLED=0 go build line in the Dockerfile")
	}
	for _, want := range []string{"-trimpath", "-X main.version=", "./cmd/fordpass2mqtt", "FROM gcr.io/distroless/static", "USER 65532", "HEALTHCHECK", `VOLUME ["/data"]`, "STATE_DIR=/data"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	out := t.TempDir()
	// The native architecture here; .ci/run builds the other one (arm64, the
	// Raspberry Pi) as a separate step, so the suite does not pay for a
	// second cold compile of every package.
	for _, arch := range []string{runtime.GOARCH} {
		line := strings.NewReplacer("$TARGETOS", "linux", "$TARGETARCH", arch, "${VERSION}", "9.9.9-test",
			"/out/fordpass2mqtt", filepath.Join(out, arch)).Replace(m[1])
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = ".."
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, b)
		}
		st, err := os.Stat(filepath.Join(out, arch))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("linux/%s binary: %.1f MB", arch, float64(st.Size())/1e6)
		if st.Size() > 20<<20 {
			t.Errorf("linux/%s binary is %d bytes, over the 20 MB target", arch, st.Size())
		}
		info, err := exec.Command("go", "version", "-m", filepath.Join(out, arch)).CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(info), "CGO_ENABLED=0") || !strings.Contains(string(info), "-trimpath=true") {
			t.Errorf("linux/%s build settings: %s", arch, info)
		}
		// The image users run carries only the bridge.
		if strings.Contains(string(info), "mochi-mqtt") || !strings.Contains(string(info), "-tags=nodemo") {
			t.Errorf("linux/%s: the production binary carries the demo's embedded broker: %s", arch, info)
		}
	}
	if runtime.GOARCH == "amd64" && runtime.GOOS == "linux" {
		v, err := exec.Command(filepath.Join(out, "amd64"), "version").CombinedOutput()
		if err != nil || !strings.Contains(string(v), "9.9.9-test") {
			t.Fatalf("version stamp: %s %v", v, err)
		}
		demo := exec.Command(filepath.Join(out, "amd64"), "demo")
		msg, _ := demo.CombinedOutput()
		if demo.ProcessState.ExitCode() != 2 || !strings.Contains(string(msg), "has no demo") {
			t.Errorf("demo in the production binary: exit %d, %s", demo.ProcessState.ExitCode(), msg)
		}
	}
}

type flowNode struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Type    string     `json:"type"`
	Topic   string     `json:"topic"`
	Func    string     `json:"func"`
	Broker  string     `json:"broker"`
	Payload string     `json:"payload"`
	Wires   [][]string `json:"wires"`
	Rules   []struct {
		V string `json:"v"`
	} `json:"rules"`
}

// TestNodeREDFlow checks that the flow publishes commands with an id to
// P/VIN/command, matches results by id, and alerts on reauth_required.
func TestNodeREDFlow(t *testing.T) {
	t.Parallel()
	var nodes []flowNode
	if err := json.Unmarshal(read(t, "nodered/flows.json"), &nodes); err != nil {
		t.Fatalf("flows.json: %v", err)
	}
	byID := map[string]flowNode{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	var cmdFunc, outNode, resultsIn, authIn bool
	for _, n := range nodes {
		switch {
		case n.Type == "function" && strings.Contains(n.Func, "/command'") && strings.Contains(n.Func, "id: id"):
			cmdFunc = true
			for _, w := range n.Wires[0] {
				if byID[w].Type == "mqtt out" {
					outNode = true
				}
			}
		case n.Type == "mqtt in" && n.Topic == "fordpass/+/command/result":
			resultsIn = true
			next := byID[n.Wires[0][0]]
			if !strings.Contains(next.Func, "r.id") || !strings.Contains(next.Func, "'accepted'") {
				t.Error("results are not matched by id, or accepted is taken as final")
			}
		case n.Type == "mqtt in" && n.Topic == "fordpass/auth/state":
			next := byID[n.Wires[0][0]]
			authIn = next.Type == "switch" && len(next.Rules) == 1 && next.Rules[0].V == "reauth_required"
		}
		if strings.HasPrefix(n.Type, "mqtt ") && byID[n.Broker].Type != "mqtt-broker" {
			t.Errorf("node %s has no broker", n.ID)
		}
	}
	if !cmdFunc || !outNode || !resultsIn || !authIn {
		t.Fatalf("flow: command function %v, mqtt out %v, results in %v, auth alert %v", cmdFunc, outNode, resultsIn, authIn)
	}
	// A charging example: an object command goes through the same
	// function, which keeps its keys.
	charge := false
	for _, n := range nodes {
		if n.Type == "inject" && strings.Contains(n.Payload, `"command":"charge_target"`) && len(n.Wires) == 1 &&
			strings.Contains(byID[n.Wires[0][0]].Func, "typeof msg.payload === 'object'") {
			charge = true
		}
	}
	if !charge {
		t.Error("the flow has no charging example wired to the command function")
	}
	// Every example the flow sends is a command the bridge takes.
	for _, n := range nodes {
		if n.Type != "inject" {
			continue
		}
		if _, err := bridge.ParseCommand([]byte(n.Payload)); err != nil {
			t.Errorf("the flow's %q sends %s: %v", n.Name, n.Payload, err)
		}
	}
}

func TestHomeAssistantExamplesParse(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"homeassistant/automation-reauth.yaml", "homeassistant/dashboard-card.yaml"} {
		var v map[string]any
		if err := yaml.Unmarshal(read(t, f), &v); err != nil || len(v) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	auto := string(read(t, "homeassistant/automation-reauth.yaml"))
	if !strings.Contains(auto, "binary_sensor.fordpass_reauthorization_required") {
		t.Error("the automation does not watch the Re-authorization required sensor")
	}
}

func TestMosquittoACLKeepsCommandsToTheRightUsers(t *testing.T) {
	t.Parallel()
	acl := string(read(t, "mosquitto/acl"))
	users := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(acl, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "user":
			cur = f[1]
		case len(f) == 3 && f[0] == "topic" && cur != "":
			users[cur] = append(users[cur], f[1]+" "+f[2])
		}
	}
	if !slices.Contains(users["fordpass"], "readwrite fordpass/#") {
		t.Error("the bridge cannot use its topics")
	}
	for _, u := range []string{"homeassistant", "nodered", "evcc"} {
		if !slices.Contains(users[u], "write fordpass/+/command") || !slices.Contains(users[u], "read fordpass/#") {
			t.Errorf("%s cannot read the car or send commands", u)
		}
	}
	for _, u := range []string{"nodered", "evcc"} {
		for _, code := range []string{"write fordpass/auth/code/set", "write fordpass/auth/+/code/set", "write fordpass/#", "readwrite fordpass/#"} {
			if slices.Contains(users[u], code) {
				t.Errorf("%s should not be able to sign the bridge in to another account (%s)", u, code)
			}
		}
	}
	if !slices.Contains(users["homeassistant"], "write fordpass/auth/+/code/set") {
		t.Error("Home Assistant cannot send an account's code (FORD_ACCOUNTS)")
	}
	conf := string(read(t, "mosquitto/mosquitto.conf"))
	if !strings.Contains(conf, "allow_anonymous false") || !strings.Contains(conf, "password_file") {
		t.Error("mosquitto.conf allows anonymous access")
	}
	if !strings.Contains(conf, "\nset_tcp_nodelay true") {
		t.Error("mosquitto.conf lets Nagle's algorithm hold command results back (set_tcp_nodelay true)")
	}
}
