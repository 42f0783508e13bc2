package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/discovery"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// TestMain lets the tests run this test binary as the real program: with
// FP_RUN_MAIN=1 it is fordpass2mqtt, arguments after "--".
func TestMain(m *testing.M) {
	if os.Getenv("FP_RUN_MAIN") == "1" {
		args := []string{"fordpass2mqtt"}
		for i, a := range os.Args {
			if a == "--" {
				args = append(args, os.Args[i+1:]...)
				break
			}
		}
		os.Args = args
		main()
		return
	}
	os.Exit(m.Run())
}

// program starts the binary with env (on top of a clean environment).
func program(t *testing.T, env []string, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append([]string{"FP_RUN_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stdout, &stderr
}

func exitCode(t *testing.T, cmd *exec.Cmd, timeout time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		t.Fatalf("%v did not exit within %s", cmd.Args, timeout)
	}
	return -1
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, nil, &out, &out); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"run", "login", "demo", "simulate", "doctor", "version", "MQTT_URL", "FORD_DAILY_CALL_BUDGET", "tcp://localhost:1883", "250"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"version"}, nil, &out, &out); code != 0 || !strings.Contains(out.String(), "fordpass2mqtt") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run(context.Background(), []string{"frobnicate"}, nil, &out, &out); code != 2 {
		t.Fatalf("unknown subcommand exit %d", code)
	}
}

func TestBadConfigurationExits2NamingTheVariables(t *testing.T) {
	t.Parallel()
	cmd, _, stderr := program(t, []string{"FORD_REGION=mars", "FORD_POLL_INTERVAL=5s", "STATE_DIR=" + t.TempDir()}, "run")
	if code := exitCode(t, cmd, 20*time.Second); code != 2 {
		t.Fatalf("exit %d, want 2; stderr: %s", code, stderr)
	}
	for _, v := range []string{"FORD_REGION", "FORD_POLL_INTERVAL"} {
		if !strings.Contains(stderr.String(), v) {
			t.Errorf("stderr does not name %s: %s", v, stderr)
		}
	}
}

func TestWorldWritableStateDirIsRefused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o777)
	cmd, _, stderr := program(t, []string{"STATE_DIR=" + dir, "HTTP_ADDR="}, "run")
	if code := exitCode(t, cmd, 20*time.Second); code != 2 || !strings.Contains(stderr.String(), "chmod 700") {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
}

func TestLoginSubcommand(t *testing.T) {
	_, fordURL := bridgetest.Ford(t, fordsim.Options{})
	dir := t.TempDir()
	env := []string{"FORD_BASE_URL=" + fordURL, "STATE_DIR=" + dir}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	loginInteractively(t, fordURL)
	if st, err := os.Stat(filepath.Join(dir, "token.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v", err)
	}
	// A bad code exits 1 with a reason.
	var out, errOut syncBuffer
	if code := run(context.Background(), []string{"login", "--redirect-url", "fordapp://userauthorized/?code=stale-code-123"}, nil, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "sign-in failed") {
		t.Fatalf("bad code: exit %d, %s", code, errOut.String())
	}
}

// loginInteractively runs `fordpass2mqtt login` as a person would: it
// prints the link, the person opens it (the simulator signs in at once) and
// pastes the redirect address. The environment must be set already.
func loginInteractively(t *testing.T, simURL string, args ...string) {
	t.Helper()
	pr, pw, _ := os.Pipe()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), append([]string{"login"}, args...), pr, &out, &errOut) }()
	var link string
	for deadline := time.Now().Add(10 * time.Second); link == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, simURL) {
				link = l
			}
		}
	}
	if link == "" {
		t.Fatalf("no login link printed: %s", out.String())
	}
	redirect := bridgetest.FollowLogin(t, link)
	_, _ = pw.WriteString(redirect + "\n")
	if code := <-done; code != 0 {
		t.Fatalf("login exit %d: %s", code, errOut.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
func (s *syncBuffer) Reset()         { s.mu.Lock(); defer s.mu.Unlock(); s.b.Reset() }

func TestSIGTERMPublishesOfflineAndExits0(t *testing.T) {
	t.Parallel()
	url := bridgetest.Broker(t)
	_, fordURL := bridgetest.Ford(t, fordsim.Options{CommandDelay: 200 * time.Millisecond})
	prefix := "fpc" + bridgetest.Suffix()
	sub := bridgetest.Watch(t, url, prefix+"/#")
	cmd, _, stderr := program(t, []string{"MQTT_URL=" + url, "MQTT_TOPIC_PREFIX=" + prefix, "MQTT_CLIENT_ID=" + prefix,
		"HA_DISCOVERY_PREFIX=ha" + prefix, "FORD_BASE_URL=" + fordURL, "FORD_POLL_INTERVAL=2s", "STATE_DIR=" + t.TempDir(),
		"HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=json"})
	sub.WaitFor(prefix+"/bridge/availability", 20*time.Second, func(s string) bool { return s == "online" })
	login := sub.WaitFor(prefix+"/auth/login_url", 10*time.Second, func(s string) bool { return s != "" })
	redirect := bridgetest.FollowLogin(t, login)
	sub.Publish(prefix+"/auth/code/set", redirect, false)
	sub.WaitFor(prefix+"/auth/state", 10*time.Second, func(s string) bool { return s == "ok" })
	sub.WaitFor(prefix+"/"+fordsim.VIN(1)+"/lock", 10*time.Second, func(s string) bool { return s == "locked" })

	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr: %s", code, stderr)
	}
	late := bridgetest.Watch(t, url, prefix+"/bridge/availability")
	late.WaitFor(prefix+"/bridge/availability", 5*time.Second, func(s string) bool { return s == "offline" })
	// JSON logs, one object per line.
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("LOG_FORMAT=json wrote a non-JSON line: %s", line)
		}
	}
}

// TestDemoAgainstBroker runs `fordpass2mqtt demo` as a user would, against
// the test broker (mosquitto in CI), and locks a car with a plain message.
func TestDemoAgainstBroker(t *testing.T) {
	t.Parallel()
	url := bridgetest.Broker(t)
	prefix := "fpd" + bridgetest.Suffix()
	sub := bridgetest.Watch(t, url, prefix+"/#")
	disc := bridgetest.Watch(t, url, "ha"+prefix+"/#")
	cmd, stdout, stderr := program(t, []string{"MQTT_URL=" + url, "MQTT_TOPIC_PREFIX=" + prefix, "MQTT_CLIENT_ID=" + prefix,
		"HA_DISCOVERY_PREFIX=ha" + prefix, "HTTP_ADDR=127.0.0.1:0"}, "demo")
	defer func() { _ = cmd.Process.Kill() }()
	vin := fordsim.VIN(1)
	sub.WaitFor(prefix+"/"+vin+"/odometer", 20*time.Second, func(s string) bool { return s != "" })
	sub.WaitFor(prefix+"/auth/state", 5*time.Second, func(s string) bool { return s == "ok" })
	disc.WaitFor(discovery.VehicleTopic(discovery.Settings{DiscoveryPrefix: "ha" + prefix, TopicPrefix: prefix, Demo: true}, vin), 5*time.Second, func(s string) bool {
		return strings.Contains(s, `"cmps"`) && strings.Contains(s, "(demo)")
	})
	sub.Publish(prefix+"/"+vin+"/command", "unlock", false)
	sub.WaitFor(prefix+"/"+vin+"/command/result", 15*time.Second, func(s string) bool { return strings.Contains(s, `"status":"success"`) })
	sub.WaitFor(prefix+"/"+vin+"/lock", 5*time.Second, func(s string) bool { return s == "unlocked" })
	// The printed commands reach the demo's broker: its host and port.
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "tcp://"))
	if !strings.Contains(stdout.String(), "mosquitto_sub -h "+host+" -p "+port+" -v -t '"+prefix+"/#'") {
		t.Errorf("banner does not say how to watch this broker: %s", stdout)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("demo exit %d; stderr: %s", code, stderr)
	}
	// Nothing retained is left but the will.
	late := bridgetest.Watch(t, url, prefix+"/#")
	lateDisc := bridgetest.Watch(t, url, "ha"+prefix+"/#")
	late.WaitFor(prefix+"/bridge/availability", 5*time.Second, func(s string) bool { return s == "offline" })
	time.Sleep(300 * time.Millisecond)
	if got := append(late.Messages(), lateDisc.Messages()...); len(got) != 1 {
		t.Fatalf("the demo left %d retained messages, want only its will: %.300q", len(got), got)
	}
}

// TestDemoOnASharedBrokerLeavesARealBridgeAlone runs the demo as the README
// suggests (only MQTT_URL set) on the broker a real bridge uses: it writes
// under fordpass_demo/ with its own client id and devices, never under
// fordpass/, and clears what it retained when it stops.
func TestDemoOnASharedBrokerLeavesARealBridgeAlone(t *testing.T) {
	t.Parallel()
	url := bridgetest.Broker(t)
	real := bridgetest.Watch(t, url, "fordpass/#")
	realDevices := bridgetest.Watch(t, url, "homeassistant/device/fordpass_bridge/config")
	demo := bridgetest.Watch(t, url, "fordpass_demo/#")
	cmd, _, stderr := program(t, []string{"MQTT_URL=" + url, "HTTP_ADDR=127.0.0.1:0"}, "demo")
	defer func() { _ = cmd.Process.Kill() }()
	vin := fordsim.VIN(1)
	demo.WaitFor("fordpass_demo/"+vin+"/odometer", 20*time.Second, func(s string) bool { return s != "" })
	demo.WaitFor("fordpass_demo/bridge/info", 5*time.Second, func(s string) bool { return strings.Contains(s, `"demo":true`) })

	// doctor beside the demo says what it looks at, and never posts onto
	// the demo's page.
	_, fordURL := bridgetest.Ford(t, fordsim.Options{})
	doctorSays := func(prefix string) string {
		doc, out, errOut := program(t, []string{"MQTT_URL=" + url, "MQTT_TOPIC_PREFIX=" + prefix, "FORD_BASE_URL=" + fordURL,
			"STATE_DIR=" + t.TempDir()}, "doctor", "--json")
		exitCode(t, doc, 60*time.Second)
		var r struct {
			Checks []struct{ Name, Status, Finding string }
		}
		if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
			t.Fatalf("doctor: %v %s %s", err, out, errOut)
		}
		for _, c := range r.Checks {
			if c.Name == "demo" {
				return c.Finding
			}
		}
		t.Fatalf("doctor does not mention the demo: %s", out)
		return ""
	}
	if f := doctorSays("fpreal" + bridgetest.Suffix()); !strings.Contains(f, "a fordpass2mqtt demo runs on this broker under fordpass_demo/") {
		t.Errorf("doctor beside the demo: %s", f)
	}
	if f := doctorSays("fordpass_demo"); !strings.Contains(f, "belongs to fordpass2mqtt demo") {
		t.Errorf("doctor on the demo's prefix: %s", f)
	}
	_, posted := demo.Get("fordpass_demo/bridge/doctor")
	if posted {
		t.Error("doctor posted its report onto the demo's page")
	}

	// A second demo on the same broker takes a prefix of its own, and the
	// first one stopping leaves it whole.
	cmd2, out2, stderr2 := program(t, []string{"MQTT_URL=" + url, "HTTP_ADDR=127.0.0.1:0"}, "demo")
	defer func() { _ = cmd2.Process.Kill() }()
	var second string
	bridgetest.Eventually(t, 20*time.Second, "the second demo's banner", func() bool {
		if _, rest, ok := strings.Cut(out2.String(), "Topic prefix:"); ok {
			second, _, _ = strings.Cut(strings.TrimSpace(rest), "\n")
		}
		return second != ""
	})
	if !strings.HasPrefix(second, "fordpass_demo_") {
		t.Fatalf("the second demo's prefix is %q", second)
	}
	other := bridgetest.Watch(t, url, second+"/#")
	other.WaitFor(second+"/"+vin+"/odometer", 20*time.Second, func(s string) bool { return s != "" })
	_ = cmd.Process.Signal(syscall.SIGINT)
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("demo exit %d; stderr: %s", code, stderr)
	}
	demo.WaitFor("fordpass_demo/"+vin+"/odometer", 5*time.Second, func(s string) bool { return s == "" })
	if v, _ := other.Get(second + "/" + vin + "/odometer"); v == "" {
		t.Fatal("the first demo's stop cleared the second's topics")
	}
	again := bridgetest.Watch(t, url, second+"/"+vin+"/odometer")
	again.WaitFor(second+"/"+vin+"/odometer", 5*time.Second, func(s string) bool { return s != "" })
	_ = cmd2.Process.Signal(syscall.SIGINT)
	if code := exitCode(t, cmd2, 20*time.Second); code != 0 {
		t.Fatalf("the second demo exit %d; stderr: %s", code, stderr2)
	}
	if got := real.Messages(); len(got) != 0 {
		t.Fatalf("the demo wrote under fordpass/: %v", got)
	}
	if got := realDevices.Messages(); len(got) != 0 {
		t.Fatalf("the demo wrote the real bridge's device: %v", got)
	}
}

func TestDoctorCommandJSON(t *testing.T) {
	_, fordURL := bridgetest.Ford(t, fordsim.Options{})
	dir := t.TempDir()
	url := bridgetest.Broker(t)
	env := []string{"MQTT_URL=" + url, "MQTT_TOPIC_PREFIX=fpx" + bridgetest.Suffix(), "FORD_BASE_URL=" + fordURL, "STATE_DIR=" + dir,
		"COMMANDS_ALLOWED=lock", "MQTT_USERNAME=x"}
	// Not signed in: the token check fails, so doctor exits 1.
	cmd, stdout, stderr := program(t, env, "doctor", "--json")
	if code := exitCode(t, cmd, 60*time.Second); code != 1 {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	var r struct {
		At     time.Time `json:"at"`
		Checks []struct{ Name, Status, Finding, Fix string }
	}
	if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil || len(r.Checks) < 5 {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	// Signed in: every check passes, --live included, and no secret is printed.
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	loginInteractively(t, fordURL)
	cmd, stdout, stderr = program(t, env, "doctor", "--json", "--live")
	if code := exitCode(t, cmd, 60*time.Second); code != 0 {
		t.Fatalf("healthy doctor exit %d: %s %s", code, stdout, stderr)
	}
	for _, secret := range []string{"simcat-", "simrefresh-", "simauto-", "simcode-", "simb2c-", "code_verifier"} {
		if strings.Contains(stdout.String(), secret) {
			t.Fatalf("doctor --json prints a secret (%s…)", secret)
		}
	}
}

// TestSIGKILLAtRandomInstants kills the bridge with SIGKILL at random
// instants while it refreshes tokens as fast as the simulator lets it
// (every call needs a refresh), 50 times: five installations (each its own
// simulated Ford and state directory) side by side, ten kills each. The
// token file must always load; the restart must come back without a new
// sign-in unless the kill fell in the instant between Ford rotating the
// refresh token and the fsync of the new one, which no client can cover
// (docs/reliability.md).
func TestSIGKILLAtRandomInstants(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("50 process runs")
	}
	const lanes, runsPerLane = 5, 10
	url := bridgetest.Broker(t)
	var lost, refreshes atomic.Int64
	t.Run("installations", func(t *testing.T) {
		for lane := range lanes {
			t.Run(strconv.Itoa(lane), func(t *testing.T) {
				t.Parallel()
				l, r := sigkillLane(t, url, runsPerLane)
				lost.Add(int64(l))
				refreshes.Add(int64(r))
			})
		}
	})
	runs := lanes * runsPerLane
	t.Logf("%d SIGKILLs during %d token refreshes: token file loadable %d/%d; back without a new sign-in %d/%d", runs, refreshes.Load(), runs, runs, runs-int(lost.Load()), runs)
	if lost.Load() > int64(runs/10) {
		t.Fatalf("%d of %d restarts needed a new sign-in", lost.Load(), runs)
	}
}

// sigkillLane runs and kills one installation's bridge runs times; it
// returns how many restarts needed a new sign-in and how many refreshes
// Ford saw.
func sigkillLane(t *testing.T, brokerURL string, runs int) (lost, refreshes int) {
	sim, fordURL := bridgetest.Ford(t, fordsim.Options{AccessTTL: 20 * time.Second, AutonomicTTL: 2 * time.Second})
	dir := t.TempDir()
	newClient := func() *fordapi.Client {
		return bridgetest.Client(t, fordapi.Config{BaseURL: fordURL, StateDir: dir, DailyBudget: 1000000})
	}
	signIn := func() { bridgetest.SignIn(t, newClient()) }
	signIn()
	env := []string{"MQTT_URL=" + brokerURL, "MQTT_TOPIC_PREFIX=fpk" + bridgetest.Suffix(), "MQTT_CLIENT_ID=k" + bridgetest.Suffix(), "FORD_BASE_URL=" + fordURL,
		"STATE_DIR=" + dir, "FORD_STREAM=false", "FORD_POLL_INTERVAL=100ms", "FORD_DAILY_CALL_BUDGET=1000000", "HTTP_ADDR="}
	refreshesBefore := sim.Stats().Refreshes
	for i := range runs {
		cmd, _, _ := program(t, env)
		time.Sleep(time.Duration(50+mrand.IntN(600)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if _, err := fordapi.NewTokenStore(dir, "usa").Load(); err != nil {
			t.Fatalf("run %d: the token file does not load after SIGKILL: %v", i, err)
		}
		if _, err := newClient().Vehicles(context.Background()); err != nil {
			if !errors.Is(err, fordapi.ErrReauthRequired) {
				t.Fatalf("run %d: %v", i, err)
			}
			lost++
			signIn()
		}
	}
	return lost, sim.Stats().Refreshes - refreshesBefore
}

// TestBadArgumentsExit2 gives every subcommand arguments it cannot take:
// each says what is wrong and exits 2, before touching the network.
func TestBadArgumentsExit2(t *testing.T) {
	t.Setenv("STATE_DIR", t.TempDir())
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "extra"}, "takes no arguments"},
		{[]string{"demo", "extra"}, "takes no arguments"},
		{[]string{"login", "--bogus"}, "flag provided but not defined"},
		{[]string{"doctor", "--bogus"}, "flag provided but not defined"},
		{[]string{"simulate", "--vehicles", "0"}, "--vehicles must be"},
		{[]string{"simulate", "--command-delay", "-1s"}, "--command-delay"},
		{[]string{"simulate", "--command-delay", "soon"}, "invalid value"},
		{[]string{"simulate", "--addr", "not an address"}, "--addr"},
		{[]string{"simulate", "--fcon-pace", "0s"}, "--fcon-pace positive"},
		{[]string{"simulate", "--fcon-pace-unit", "car"}, "--fcon-pace-unit token or app"},
		{[]string{"simulate", "--fcon-retry-after", "never"}, "--fcon-retry-after seconds, date or body"},
		{[]string{"simulate", "--fcon-client-secret", ""}, "--fcon- app not empty"},
	}
	for _, c := range cases {
		var out, errOut syncBuffer
		if code := run(context.Background(), c.args, nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	t.Parallel()
	info := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}
	if got := versionFrom(info, true); got != "dev (0123456789ab, modified)" {
		t.Errorf("local build: %q", got)
	}
	info = &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}
	if got := versionFrom(info, true); got != "v1.2.0" {
		t.Errorf("module build: %q", got)
	}
	if got := versionFrom(nil, false); got != "dev" {
		t.Errorf("no build info: %q", got)
	}
	// Stamped by the Dockerfile's -ldflags: that wins. (Not by setting
	// the variable: tests in parallel read it.)
	if got := stampedOr("9.9.9"); got != "9.9.9" {
		t.Errorf("stamped: %q", got)
	}
}

// addonStage is what the Dockerfile's addon stage gives the container: its
// base, entrypoint and command, and environment.
type addonStage struct {
	from       string
	entrypoint []string
	cmd        []string
	env        map[string]string
}

func readAddonStage(t *testing.T) addonStage {
	t.Helper()
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var st addonStage
	in := false
	lines := strings.Split(strings.ReplaceAll(string(data), "\\\n", " "), "\n")
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "FROM ") {
			in = strings.HasSuffix(line, " AS addon")
			if in {
				st.from = strings.Fields(line)[1]
			}
			continue
		}
		if !in {
			continue
		}
		switch {
		case strings.HasPrefix(line, "ENTRYPOINT "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ENTRYPOINT ")), &st.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT: %v", err)
			}
		case strings.HasPrefix(line, "CMD "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "CMD ")), &st.cmd); err != nil {
				t.Fatalf("CMD: %v", err)
			}
		case strings.HasPrefix(line, "ENV "):
			st.env = map[string]string{}
			for _, kv := range strings.Fields(strings.TrimPrefix(line, "ENV ")) {
				k, v, _ := strings.Cut(kv, "=")
				st.env[k] = v
			}
		}
	}
	if st.from == "" {
		t.Fatal("the Dockerfile has no addon stage")
	}
	return st
}

// TestAddonImageStartsInAddonMode starts the bridge the way the Supervisor
// starts the add-on's image: the addon stage's entrypoint (the binary, no
// s6-overlay /init that would reset the environment) and command, with the
// stage's environment and the Supervisor's variables (SUPERVISOR_TOKEN,
// HASSIO_TOKEN, TZ) and nothing else. Two values are changed because no
// container is made here: STATE_DIR's /data is a temporary directory (the
// Supervisor mounts the add-on's data there) and HTTP_ADDR a free port;
// SUPERVISOR_URL points at a stand-in for http://supervisor. It must enter
// add-on mode: take options.json, ask the Supervisor for the broker, and
// come online there.
func TestAddonImageStartsInAddonMode(t *testing.T) {
	t.Parallel()
	st := readAddonStage(t)
	if st.from != "gcr.io/distroless/static-debian12" || len(st.entrypoint) != 1 || st.entrypoint[0] != "/usr/local/bin/fordpass2mqtt" ||
		!slices.Equal(st.cmd, []string{"run"}) || st.env["STATE_DIR"] != "/data" || st.env["HTTP_ADDR"] != ":8080" {
		t.Fatalf("the addon stage: %+v", st)
	}
	brokerAt := bridgetest.Broker(t)
	u, err := url.Parse(brokerAt)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	var askedForBroker atomic.Bool
	sup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sv-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		data := map[string]any{}
		switch r.URL.Path {
		case "/services/mqtt":
			askedForBroker.Store(true)
			data = map[string]any{"host": u.Hostname(), "port": port, "ssl": false, "protocol": "3.1.1"}
		case "/addons/self/info":
			data = map[string]any{"slug": "local_fordpass2mqtt", "ingress": true, "network": map[string]any{"8080/tcp": nil}}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"result": "ok", "data": data})
	}))
	defer sup.Close()
	_, fordURL := bridgetest.Ford(t, fordsim.Options{})
	dir := t.TempDir()
	prefix := "fpaddon" + bridgetest.Suffix()
	opts := fmt.Sprintf(`{"ford_region":"usa","ford_vins":[],"commands_allowed":["lock"],"ford_daily_call_budget":250,"log_level":"info",
		"mqtt_topic_prefix":%q,"ha_discovery_prefix":"ha%s","ford_base_url":%q}`, prefix, prefix, fordURL)
	if err := os.WriteFile(filepath.Join(dir, "options.json"), []byte(opts), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SUPERVISOR_TOKEN=sv-token", "HASSIO_TOKEN=sv-token", "TZ=Europe/Berlin", "SUPERVISOR_URL=" + sup.URL}
	for k, v := range st.env {
		switch k {
		case "STATE_DIR":
			v = dir
		case "HTTP_ADDR":
			v = "127.0.0.1:0"
		}
		env = append(env, k+"="+v)
	}
	sub := bridgetest.Watch(t, brokerAt, prefix+"/#")
	cmd, _, stderr := program(t, env, st.cmd...)
	defer func() { _ = cmd.Process.Kill() }()
	sub.WaitFor(prefix+"/bridge/availability", 15*time.Second, func(s string) bool { return s == "online" })
	sub.WaitFor(prefix+"/auth/state", 5*time.Second, func(s string) bool { return s == "reauth_required" })
	if !askedForBroker.Load() {
		t.Fatal("the broker did not come from the Supervisor's MQTT service")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// TestFordConnectThroughTheBinary runs the binary with
// FORD_BACKEND=fordconnect against the simulator and the test broker: the
// consent is given with `fordpass2mqtt login` before the bridge starts,
// and the consented car's state then appears on MQTT and keeps changing,
// with the secret and the tokens nowhere in the logs.
func TestFordConnectThroughTheBinary(t *testing.T) {
	sim, fordURL := bridgetest.Ford(t, fordsim.Options{FconPace: 200 * time.Millisecond})
	env := fordConnectEnv(t, fordURL, "fordconnect")
	loginInteractively(t, fordURL)
	url := bridgetest.Broker(t)
	prefix := "fpfc" + bridgetest.Suffix()
	sub := bridgetest.Watch(t, url, prefix+"/#")
	cmd, _, stderr := program(t, append(env, "MQTT_URL="+url, "MQTT_TOPIC_PREFIX="+prefix, "MQTT_CLIENT_ID="+prefix,
		"HA_DISCOVERY_PREFIX=ha"+prefix, "FORD_POLL_INTERVAL=300ms", "HTTP_ADDR=", "LOG_LEVEL=debug"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the bridge's log:\n%s", stderr)
		}
	})
	sub.WaitFor(prefix+"/auth/state", 20*time.Second, func(s string) bool { return s == "ok" })
	sub.WaitFor(prefix+"/"+fordsim.VIN(1)+"/lock", 20*time.Second, func(s string) bool { return s == "locked" })
	if err := sim.Patch(fordsim.VIN(1), map[string]any{"metrics": map[string]any{"odometer": map[string]any{"value": 4321.5}}}); err != nil {
		t.Fatal(err)
	}
	sub.WaitFor(prefix+"/"+fordsim.VIN(1)+"/odometer", 10*time.Second, func(s string) bool { return s == "4321.5" })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	for _, secret := range []string{fordsim.FconClientSecret, "fconaccess-", "fconrefresh-", "fconcode-"} {
		if strings.Contains(stderr.String(), secret) {
			t.Fatalf("the log holds a secret (%s…)", secret)
		}
	}
}

// TestBothFailoverThroughTheBinary runs the binary with FORD_BACKEND=both
// on the default call budget and poll interval against the simulator and
// the test broker: two cars, the first consented to FordConnect with
// `login --fordconnect`. When FordPass's sign-in dies the consented car's
// state comes through FordConnect within two minutes (P/VIN/source; the
// in-process test shows the state is fresh), FordConnect's state stays ok,
// and doctor names the car that is not consented.
func TestBothFailoverThroughTheBinary(t *testing.T) {
	sim, fordURL := bridgetest.Ford(t, fordsim.Options{Vehicles: 2, FconPace: 200 * time.Millisecond, Heartbeat: 500 * time.Millisecond})
	env := fordConnectEnv(t, fordURL, "both")
	loginInteractively(t, fordURL)
	loginInteractively(t, fordURL, "--fordconnect")
	url := bridgetest.Broker(t)
	prefix := "fpboth" + bridgetest.Suffix()
	sub := bridgetest.Watch(t, url, prefix+"/#")
	cmd, _, stderr := program(t, append(env, "MQTT_URL="+url, "MQTT_TOPIC_PREFIX="+prefix, "MQTT_CLIENT_ID="+prefix,
		"HA_DISCOVERY_PREFIX=ha"+prefix, "HTTP_ADDR=", "LOG_LEVEL=debug"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the bridge's log:\n%s", stderr)
		}
	})
	vin1, vin2 := fordsim.VIN(1), fordsim.VIN(2)
	for _, v := range []string{vin1, vin2} {
		sub.WaitFor(prefix+"/"+v+"/source", 20*time.Second, func(s string) bool { return s == "fordpass" })
	}
	bridgetest.Eventually(t, 10*time.Second, "the first car's stream", func() bool { return sim.Streams(vin1) > 0 })
	lost := time.Now()
	sim.Revoke()
	sim.Expire()
	sub.WaitFor(prefix+"/"+vin1+"/source", 2*time.Minute, func(s string) bool { return s == "fordconnect" })
	failover := time.Since(lost)
	if err := sim.Patch(vin1, map[string]any{"metrics": map[string]any{"odometer": map[string]any{"value": 6543.5}}}); err != nil {
		t.Fatal(err)
	}
	sub.WaitFor(prefix+"/auth/fordpass/state", 20*time.Second, func(s string) bool { return s == "reauth_required" })
	for _, s := range sub.History(prefix + "/auth/fordconnect/state") {
		if s != "ok" {
			t.Fatalf("FordConnect's state went %q", s)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	var out, errOut bytes.Buffer
	run(context.Background(), []string{"doctor"}, strings.NewReader(""), &out, &errOut)
	if !strings.Contains(out.String(), "not consented, so offline while FordPass is down: "+fordapi.ShortVIN(vin2)) {
		t.Fatalf("doctor does not name the car without a consent:\n%s", out.String())
	}
	t.Logf("through the binary, default budget and poll interval: the consented car on FordConnect %s after FordPass's sign-in died", failover.Round(time.Millisecond))
}

// TestSecondProcessOnOneStateDirExits: a second bridge started on the
// STATE_DIR of a running one exits at once with the configuration exit
// code, naming the directory and the running one's PID.
func TestSecondProcessOnOneStateDirExits(t *testing.T) {
	t.Parallel()
	_, fordURL := bridgetest.Ford(t, fordsim.Options{})
	url := bridgetest.Broker(t)
	dir := t.TempDir()
	prefix := "fplock" + bridgetest.Suffix()
	sub := bridgetest.Watch(t, url, prefix+"/#")
	env := []string{"FORD_BASE_URL=" + fordURL, "STATE_DIR=" + dir, "MQTT_URL=" + url, "MQTT_TOPIC_PREFIX=" + prefix,
		"MQTT_CLIENT_ID=" + prefix, "HA_DISCOVERY_PREFIX=ha" + prefix, "HTTP_ADDR="}
	first, _, _ := program(t, env)
	sub.WaitFor(prefix+"/auth/state", 20*time.Second, func(s string) bool { return s == "reauth_required" })
	second, _, stderr := program(t, append(env, "MQTT_CLIENT_ID="+prefix+"b"))
	if code := exitCode(t, second, 20*time.Second); code != 2 || !strings.Contains(stderr.String(), dir) ||
		!strings.Contains(stderr.String(), "PID "+strconv.Itoa(first.Process.Pid)) {
		t.Fatalf("the second process: exit %d, %s", code, stderr)
	}
	_ = first.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, first, 20*time.Second); code != 0 {
		t.Fatalf("the first process: exit %d", code)
	}
}

// fordConnectEnv is the environment of a bridge on the simulator with a
// FordConnect app and FORD_BACKEND=backend, in a new STATE_DIR; it is set
// in the test's own environment too, for the in-process login.
func fordConnectEnv(t *testing.T, fordURL, backend string) []string {
	env := []string{"FORD_BASE_URL=" + fordURL, "STATE_DIR=" + t.TempDir(), "FORD_BACKEND=" + backend,
		"FORDCONNECT_CLIENT_ID=" + fordsim.FconClientID, "FORDCONNECT_CLIENT_SECRET=" + fordsim.FconClientSecret, "FORDCONNECT_PACE=200ms"}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return env
}
