// Command fordpass2mqtt-bench is the load harness of docs/performance.md.
// It builds the real fordpass2mqtt binary, runs it against the FordPass
// simulator (in this process, over real HTTP and websockets) and a broker
// (a private mosquitto when installed, else the embedded one), for 1, 100
// and 1,000 vehicles, and prints what it measured as a Markdown table. All
// traffic stays on 127.0.0.1; every loop is bounded and the run stops by
// itself.
//
//	go run ./cmd/fordpass2mqtt-bench [-vehicles 1,100,1000] [-hour-updates 360] [-commands 30]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/broker"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// responderEnv, when set (to "brokerURL topicPrefix"), makes this binary
// the floor's responder instead of the harness: a separate process, as the
// bridge is, so both pay the same wake-up when a request arrives.
const responderEnv = "FORDPASS2MQTT_BENCH_RESPONDER"

func main() {
	if spec := os.Getenv(responderEnv); spec != "" {
		os.Exit(respond(spec))
	}
	os.Exit(run())
}

type options struct {
	fleets       []int
	hourUpdates  int // telemetry updates per vehicle standing for an hour of activity
	commands     int
	commandDelay time.Duration
	mqttURL      string
	bin          string
	profile      string // directory for heap and goroutine profiles, "" for none
	idle         time.Duration
}

func run() int {
	var o options
	fleets := flag.String("vehicles", "1,100,1000", "fleet sizes to measure")
	flag.IntVar(&o.hourUpdates, "hour-updates", 360, "updates per vehicle that stand for an hour of activity (one every 10 s)")
	flag.IntVar(&o.commands, "commands", 30, "commands to time")
	flag.DurationVar(&o.commandDelay, "command-delay", 100*time.Millisecond, "the simulator's own command delay (subtracted)")
	flag.StringVar(&o.mqttURL, "mqtt", "", "broker URL (default: a private mosquitto if installed, else the embedded broker)")
	flag.StringVar(&o.bin, "bin", "", "fordpass2mqtt binary (default: built from ./cmd/fordpass2mqtt)")
	flag.DurationVar(&o.idle, "idle", time.Minute, "after the hour, how long to sample RSS every 5 s while nothing changes (a collection or two happen meanwhile)")
	flag.StringVar(&o.profile, "profile", "", "save the bridge's heap and goroutine profiles after the hour in this directory (builds with -tags pprof)")
	flag.Parse()
	for _, f := range strings.Split(*fleets, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 5000 {
			fmt.Fprintln(os.Stderr, "-vehicles: a comma-separated list of 1 to 5000")
			return 2
		}
		o.fleets = append(o.fleets, n)
	}
	work, err := os.MkdirTemp("", "fordpass2mqtt-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)
	if o.bin == "" {
		o.bin = filepath.Join(work, "fordpass2mqtt")
		tags := "nodemo"
		if o.profile != "" {
			tags += ",pprof"
		}
		build := exec.Command("go", "build", "-trimpath", "-tags", tags, "-ldflags=-s -w", "-o", o.bin, "./cmd/fordpass2mqtt")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building the bridge: %v\n%s", err, out)
			return 1
		}
	}
	if o.mqttURL == "" {
		url, stop, err := startBroker(work)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer stop()
		o.mqttURL = url
	}
	host, _ := os.Hostname()
	fmt.Printf("fordpass2mqtt load harness, %s, host %s, %d CPUs, broker %s\n\n", time.Now().UTC().Format("2006-01-02"), host, numCPU(), o.mqttURL)
	var results []result
	for _, n := range o.fleets {
		fmt.Fprintf(os.Stderr, "measuring %d vehicle(s)…\n", n)
		r, err := measure(o, n, work)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%d vehicles: %v\n", n, err)
			return 1
		}
		results = append(results, r)
	}
	printTable(os.Stdout, results)
	return 0
}

type result struct {
	vehicles                        int
	startFirst, startAll            time.Duration
	rssStart, rssHour               float64 // MB
	rssIdleMin, rssIdleMax          float64 // MB, sampled while idle after the hour
	goroutinesStart, goroutinesHour int
	heapHour, stacksHour            float64 // MB in use after the hour
	cpuPerUpdate                    time.Duration
	updates                         int
	latencyP50, latencyP99          time.Duration
	msgsPerChange, msgsPerUnchanged float64
	cmdP50, echoP50                 time.Duration
	acceptP50, floorP50, hotP50     time.Duration
	cmdCPU                          time.Duration
	callsStart, refreshes           int
	callsPerVehicleDay              float64
}

func measure(o options, n int, work string) (result, error) {
	r := result{vehicles: n}
	sim := fordsim.New(fordsim.Options{Vehicles: n, CommandDelay: o.commandDelay, Heartbeat: 20 * time.Second})
	defer sim.Close()
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	dir := filepath.Join(work, fmt.Sprintf("state-%d", n))
	if err := fordapi.PrepareStateDir(dir); err != nil {
		return r, err
	}
	region, _ := fordapi.LookupRegion("usa")
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: srv.URL, StateDir: dir, DailyBudget: 10000000})
	if err != nil {
		return r, err
	}
	if err := signIn(c); err != nil {
		return r, err
	}
	prefix := fmt.Sprintf("bench%d", n)
	vins := sim.VINs()

	sub, err := newSubscriber(o.mqttURL, prefix+"/#")
	if err != nil {
		return r, err
	}
	defer sub.close()
	// Clear what an earlier run of the same prefix left retained.
	sub.clearRetained(prefix)

	httpAddr := freeAddr()
	before := sim.Snapshot().CallsTotal
	cmd := exec.Command(o.bin, "run")
	cmd.Env = []string{"MQTT_URL=" + o.mqttURL, "MQTT_TOPIC_PREFIX=" + prefix, "MQTT_CLIENT_ID=" + prefix, "HA_DISCOVERY_PREFIX=ha" + prefix,
		"FORD_BASE_URL=" + srv.URL, "STATE_DIR=" + dir, "FORD_DAILY_CALL_BUDGET=10000000", "FORD_POLL_INTERVAL=10m",
		"HTTP_ADDR=" + httpAddr, "LOG_LEVEL=warn", "PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG"} { // to measure the GC settings side by side
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stderr = io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	pid := cmd.Process.Pid

	// Startup: the first vehicle's state, then every vehicle's.
	first := prefix + "/" + vins[0] + "/state"
	if !sub.waitFor(func() bool { return sub.has(first) }, 60*time.Second) {
		return r, errors.New("no state published within 60 s")
	}
	r.startFirst = time.Since(start)
	if !sub.waitFor(func() bool { return sub.count("/state") >= n }, 5*time.Minute) {
		return r, fmt.Errorf("only %d of %d states published", sub.count("/state"), n)
	}
	r.startAll = time.Since(start)
	for _, vin := range vins {
		if !waitUntil(func() bool { return sim.Streams(vin) > 0 }, 2*time.Minute) {
			return r, fmt.Errorf("stream of %s not open", vin)
		}
	}
	r.callsStart = sim.Snapshot().CallsTotal - before
	time.Sleep(2 * time.Second) // settle
	r.rssStart = rssMB(pid)
	r.goroutinesStart = int(metric(httpAddr, "go_goroutines"))

	// Latency and messages per change: one field changes, over the stream.
	lat := []time.Duration{}
	samples := min(200, max(50, n))
	for i := 0; i < samples; i++ {
		vin := vins[i%n]
		value := 50000 + float64(i) + 0.5
		topic := prefix + "/" + vin + "/odometer"
		sub.resetCount()
		t0 := time.Now()
		if err := patch(srv.URL, vin, fmt.Sprintf(`{"metrics":{"odometer":{"value":%v}}}`, value)); err != nil {
			return r, err
		}
		want := strconv.FormatFloat(value, 'f', -1, 64)
		if !sub.waitFor(func() bool { return sub.value(topic) == want }, 90*time.Second) {
			return r, fmt.Errorf("odometer update %s not seen on %s after %d samples (value %q, streams %d)", want, topic, i, sub.value(topic), sim.Streams(vin))
		}
		lat = append(lat, time.Since(t0))
		time.Sleep(30 * time.Millisecond) // let the state snapshot and updated_at land
		r.msgsPerChange += float64(sub.counted())
	}
	r.msgsPerChange /= float64(samples)
	slices.Sort(lat)
	r.latencyP50, r.latencyP99 = lat[len(lat)/2], lat[len(lat)*99/100]

	// An update that changes nothing (same value, same Ford timestamp).
	for i := 0; i < 20; i++ {
		vin := vins[i%n]
		sub.resetCount()
		v := sub.value(prefix + "/" + vin + "/odometer")
		ts := sub.value(prefix + "/" + vin + "/updated_at")
		if err := patch(srv.URL, vin, fmt.Sprintf(`{"updateTime":%q,"metrics":{"odometer":{"value":%s}}}`, ts, v)); err != nil {
			return r, err
		}
		time.Sleep(100 * time.Millisecond)
		r.msgsPerUnchanged += float64(sub.counted())
	}
	r.msgsPerUnchanged /= 20

	// An hour of activity: every vehicle changes hourUpdates times.
	cpu0 := cpuTime(pid)
	total := 0
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	// At most 36,000 updates per fleet, so a thousand cars finish in minutes:
	// the table says how many were sent.
	perVehicle := min(o.hourUpdates, max(10, 36000/n))
	for i := 0; i < perVehicle; i++ {
		for _, vin := range vins {
			wg.Add(1)
			sem <- struct{}{}
			go func(vin string, i int) {
				defer wg.Done()
				defer func() { <-sem }()
				_ = patch(srv.URL, vin, fmt.Sprintf(`{"metrics":{"odometer":{"value":%d.5},"fuelLevel":{"value":%d}}}`, 60000+i, 50+i%40))
			}(vin, i)
			total++
		}
	}
	wg.Wait()
	// The concurrent patches of one car may land in any order: a last one,
	// sent alone, marks the end of the hour.
	lastVIN := vins[n-1]
	if err := patch(srv.URL, lastVIN, `{"metrics":{"odometer":{"value":99999.5}}}`); err != nil {
		return r, err
	}
	total++
	if !sub.waitFor(func() bool { return sub.value(prefix+"/"+lastVIN+"/odometer") == "99999.5" }, time.Minute) {
		return r, errors.New("the hour's last update never arrived")
	}
	time.Sleep(time.Second)
	r.updates = total
	r.cpuPerUpdate = (cpuTime(pid) - cpu0) / time.Duration(total)
	r.rssHour = rssMB(pid)
	// One reading lands anywhere in the collector's cycle: the range over
	// the next minute says where the resident memory sits.
	r.rssIdleMin, r.rssIdleMax = r.rssHour, r.rssHour
	for end := time.Now().Add(o.idle); time.Now().Before(end); {
		time.Sleep(5 * time.Second)
		rss := rssMB(pid)
		r.rssIdleMin, r.rssIdleMax = min(r.rssIdleMin, rss), max(r.rssIdleMax, rss)
	}
	r.goroutinesHour = int(metric(httpAddr, "go_goroutines"))
	r.heapHour = metric(httpAddr, "go_memstats_heap_inuse_bytes") / 1e6
	r.stacksHour = metric(httpAddr, "go_memstats_stack_inuse_bytes") / 1e6
	if o.profile != "" {
		if err := saveProfiles(httpAddr, o.profile, n); err != nil {
			return r, err
		}
	}

	// Commands against a raw MQTT echo through the same broker.
	echo, err := sub.echo(prefix+"/bench/echo", o.commands)
	if err != nil {
		return r, err
	}
	r.echoP50 = echo
	if r.hotP50, r.floorP50, err = sub.floor(o.mqttURL, prefix, o.commands); err != nil {
		return r, err
	}
	cmdLat, acceptLat := []time.Duration{}, []time.Duration{}
	cpu1 := cpuTime(pid)
	for i := 0; i < o.commands; i++ {
		id := fmt.Sprintf("b%d", i)
		word := []string{"unlock", "lock"}[i%2]
		resTopic := prefix + "/" + vins[0] + "/command/result"
		t0 := time.Now()
		sub.publish(prefix+"/"+vins[0]+"/command", fmt.Sprintf(`{"command":%q,"id":%q}`, word, id))
		if !sub.waitFor(func() bool { _, ok := sub.arrival(id + "/success"); return ok }, 30*time.Second) {
			return r, fmt.Errorf("command %s: no success (last %s)", id, sub.value(resTopic))
		}
		done, _ := sub.arrival(id + "/success")
		accepted, _ := sub.arrival(id + "/accepted")
		cmdLat = append(cmdLat, done.Sub(t0)-o.commandDelay)
		acceptLat = append(acceptLat, accepted.Sub(t0))
	}
	r.cmdCPU = (cpuTime(pid) - cpu1) / time.Duration(o.commands)
	slices.Sort(cmdLat)
	slices.Sort(acceptLat)
	r.cmdP50 = cmdLat[len(cmdLat)/2]
	r.acceptP50 = acceptLat[len(acceptLat)/2]
	st := sim.Snapshot()
	r.refreshes = st.Refreshes
	elapsed := time.Since(start)
	r.callsPerVehicleDay = float64(st.CallsTotal-before-o.commands) / float64(n) / elapsed.Hours() * 24
	return r, nil
}

func signIn(c *fordapi.Client) error {
	u, err := c.LoginURL()
	if err != nil {
		return err
	}
	redirect, err := fordsim.FollowLogin(context.Background(), u)
	if err != nil {
		return err
	}
	return c.SignIn(context.Background(), redirect)
}

var patchClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

func patch(base, vin, body string) error {
	req, _ := http.NewRequest(http.MethodPatch, base+"/_sim/vehicles/"+vin, strings.NewReader(body))
	resp, err := patchClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("patch %s: %d", vin, resp.StatusCode)
	}
	return nil
}

// subscriber is the measuring MQTT client.
type subscriber struct {
	c     mqtt.Client
	mu    sync.Mutex
	last  map[string]string
	n     int
	echo1 chan time.Time
	resp1 chan time.Time
	// arrived records, from the client callback, when each command id's
	// result of each status came in ("id/status" → time).
	arrived map[string]time.Time
}

func newSubscriber(url, filter string) (*subscriber, error) {
	s := &subscriber{last: map[string]string{}, echo1: make(chan time.Time, 1), resp1: make(chan time.Time, 1), arrived: map[string]time.Time{}}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("bench-%d", time.Now().UnixNano())).SetCleanSession(true)
	s.c = mqtt.NewClient(o)
	if t := s.c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("bench subscriber: %v", t.Error())
	}
	t := s.c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		now := time.Now()
		if strings.HasSuffix(m.Topic(), "/bench/echo") {
			s.echo1 <- now
			return
		}
		if strings.HasSuffix(m.Topic(), "/bench/res") {
			s.resp1 <- now
			return
		}
		if strings.HasSuffix(m.Topic(), "/command/result") {
			var res struct{ ID, Status string }
			if json.Unmarshal(m.Payload(), &res) == nil {
				s.mu.Lock()
				s.arrived[res.ID+"/"+res.Status] = now
				s.mu.Unlock()
			}
		}
		s.mu.Lock()
		s.last[m.Topic()] = string(m.Payload())
		s.n++
		s.mu.Unlock()
	})
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("bench subscribe: %v", t.Error())
	}
	return s, nil
}

func (s *subscriber) close() { s.c.Disconnect(100) }

func (s *subscriber) clearRetained(prefix string) {
	time.Sleep(300 * time.Millisecond)
	s.mu.Lock()
	topics := make([]string, 0, len(s.last))
	for t := range s.last {
		topics = append(topics, t)
	}
	s.last = map[string]string{}
	s.mu.Unlock()
	for _, t := range topics {
		s.c.Publish(t, 1, true, []byte{}).WaitTimeout(time.Second)
	}
	time.Sleep(300 * time.Millisecond)
	s.mu.Lock()
	s.last = map[string]string{}
	s.mu.Unlock()
}

func (s *subscriber) publish(topic, payload string) {
	s.c.Publish(topic, 1, false, payload).WaitTimeout(5 * time.Second)
}

func (s *subscriber) has(topic string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.last[topic]
	return ok && v != ""
}

func (s *subscriber) value(topic string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[topic]
}

func (s *subscriber) count(suffix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for t, v := range s.last {
		if strings.HasSuffix(t, suffix) && v != "" {
			n++
		}
	}
	return n
}

func (s *subscriber) resetCount()  { s.mu.Lock(); s.n = 0; s.mu.Unlock() }
func (s *subscriber) counted() int { s.mu.Lock(); defer s.mu.Unlock(); return s.n }

func (s *subscriber) waitFor(ok func() bool, d time.Duration) bool { return waitUntil(ok, d) }

// echo is the median round trip of a message through the broker back to
// the same client: the floor any command path through MQTT pays twice.
func (s *subscriber) echo(topic string, n int) (time.Duration, error) {
	return medianRoundTrip(s.c, topic, s.echo1, n, 0)
}

// floor is the median round trip of a request through the broker to a
// minimal responder (a paho client that answers at once) and back: what a
// command's "accepted" cannot beat, as it makes the same two hops. It is
// measured twice. hot: the responder in this process, requests back to
// back, so neither side ever sleeps. paced: the responder in its own
// process and a 2 ms pause before each request, as the commands have (the
// harness polls for a command's success every 2 ms), so the responder's
// threads are parked when a request arrives, as the bridge's are; that is
// the floor "accepted" is compared with.
func (s *subscriber) floor(url, prefix string, n int) (hot, paced time.Duration, err error) {
	r, err := startResponder(url, prefix)
	if err != nil {
		return 0, 0, err
	}
	hot, err = medianRoundTrip(s.c, prefix+"/bench/req", s.resp1, n, 0)
	r.Disconnect(100)
	if err != nil {
		return 0, 0, err
	}

	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), responderEnv+"="+url+" "+prefix)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("responder process: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ready := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(out, ready); err != nil {
		return 0, 0, fmt.Errorf("responder process did not start: %w", err)
	}
	paced, err = medianRoundTrip(s.c, prefix+"/bench/req", s.resp1, n, 2*time.Millisecond)
	return hot, paced, err
}

// medianRoundTrip publishes n requests on topic, pausing before each, and
// returns the median time until the reply's arrival is reported on replies.
func medianRoundTrip(c mqtt.Client, topic string, replies <-chan time.Time, n int, pause time.Duration) (time.Duration, error) {
	var rtts []time.Duration
	for i := 0; i < n; i++ {
		time.Sleep(pause)
		t0 := time.Now()
		c.Publish(topic, 1, false, "req")
		select {
		case at := <-replies:
			rtts = append(rtts, at.Sub(t0))
		case <-time.After(5 * time.Second):
			return 0, fmt.Errorf("no reply on %s within 5 s", topic)
		}
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], nil
}

// startResponder connects a minimal responder: it answers every request on
// PREFIX/bench/req on PREFIX/bench/res at once.
func startResponder(url, prefix string) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("bench-responder-%d-%d", os.Getpid(), time.Now().UnixNano())).SetCleanSession(true)
	r := mqtt.NewClient(o)
	if t := r.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("responder: %v", t.Error())
	}
	if t := r.Subscribe(prefix+"/bench/req", 1, func(c mqtt.Client, m mqtt.Message) {
		c.Publish(prefix+"/bench/res", 1, false, m.Payload())
	}); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		r.Disconnect(100)
		return nil, fmt.Errorf("responder subscribe: %v", t.Error())
	}
	return r, nil
}

// respond is the responder process: a responder that says "ready" once
// subscribed and runs until the harness kills it.
func respond(spec string) int {
	url, prefix, ok := strings.Cut(spec, " ")
	if !ok {
		fmt.Fprintln(os.Stderr, responderEnv+" must be \"brokerURL topicPrefix\"")
		return 2
	}
	if _, err := startResponder(url, prefix); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	select {}
}

func (s *subscriber) arrival(key string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.arrived[key]
	return t, ok
}

func waitUntil(ok func() bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

func rssMB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// cpuTime is the process's user+system CPU time.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// metric reads one unlabelled value from the bridge's /metrics (0 if absent).
func metric(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") {
			n, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return n
		}
	}
	return 0
}

// saveProfiles stores the bridge's heap profile (after a collection) and
// its goroutines' stacks, for go tool pprof.
func saveProfiles(addr, dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// In this order: the heap profile forces a collection, so the metrics
	// fetched right after it show the live heap.
	for _, p := range [][2]string{{"heap-%d.pb.gz", "/debug/pprof/heap?gc=1"}, {"metrics-%d.txt", "/metrics"}, {"goroutines-%d.txt", "/debug/pprof/goroutine?debug=1"}} {
		name, path := p[0], p[1]
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("fetching the %s profile: %v (HTTP %d)", path, err, resp.StatusCode)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf(name, n)), body, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:18099"
	}
	defer ln.Close()
	return ln.Addr().String()
}

func numCPU() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(data), "processor\t:")
}

// startBroker starts a private mosquitto when installed, else the embedded
// broker.
func startBroker(work string) (string, func(), error) {
	addr := freeAddr()
	stop, err := broker.StartMosquitto(addr, work)
	if err == nil {
		return "tcp://" + addr, stop, nil
	}
	if !errors.Is(err, broker.ErrNoMosquitto) {
		return "", nil, err
	}
	b, err := broker.Start(addr)
	if err != nil {
		return "", nil, err
	}
	return b.URL(), func() { _ = b.Close() }, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func printTable(w io.Writer, rs []result) {
	head := "| measure |"
	sep := "|---|"
	for _, r := range rs {
		head += fmt.Sprintf(" %d vehicle(s) |", r.vehicles)
		sep += "---|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
	row := func(name string, f func(r result) string) {
		line := "| " + name + " |"
		for _, r := range rs {
			line += " " + f(r) + " |"
		}
		fmt.Fprintln(w, line)
	}
	row("start to first vehicle's state", func(r result) string { return ms(r.startFirst) })
	row("start to every vehicle's state", func(r result) string { return ms(r.startAll) })
	row("Ford calls at start", func(r result) string { return strconv.Itoa(r.callsStart) })
	row("RSS after start", func(r result) string { return fmt.Sprintf("%.1f MB", r.rssStart) })
	row("goroutines after start", func(r result) string { return strconv.Itoa(r.goroutinesStart) })
	row("telemetry updates in the \"hour\"", func(r result) string { return strconv.Itoa(r.updates) })
	row("RSS after the hour", func(r result) string { return fmt.Sprintf("%.1f MB", r.rssHour) })
	row("RSS while idle after the hour, min-max", func(r result) string { return fmt.Sprintf("%.1f-%.1f MB", r.rssIdleMin, r.rssIdleMax) })
	row("goroutines after the hour", func(r result) string { return strconv.Itoa(r.goroutinesHour) })
	row("heap in use after the hour", func(r result) string { return fmt.Sprintf("%.1f MB", r.heapHour) })
	row("goroutine stacks after the hour", func(r result) string { return fmt.Sprintf("%.1f MB", r.stacksHour) })
	row("CPU per telemetry update", func(r result) string { return fmt.Sprintf("%d µs", r.cpuPerUpdate.Microseconds()) })
	row("change → subscriber, p50", func(r result) string { return ms(r.latencyP50) })
	row("change → subscriber, p99", func(r result) string { return ms(r.latencyP99) })
	row("MQTT messages per one-field change", func(r result) string { return fmt.Sprintf("%.2f", r.msgsPerChange) })
	row("MQTT messages per unchanged update", func(r result) string { return fmt.Sprintf("%.2f", r.msgsPerUnchanged) })
	row("command round trip − simulator delay, p50", func(r result) string { return ms(r.cmdP50) })
	row("raw MQTT echo, p50", func(r result) string { return ms(r.echoP50) })
	row("command → accepted, p50", func(r result) string { return ms(r.acceptP50) })
	row("request → responder in this process, back to back, p50", func(r result) string { return ms(r.hotP50) })
	row("request → responder process, paced like the commands, p50 (floor)", func(r result) string { return ms(r.floorP50) })
	row("accepted ÷ floor", func(r result) string {
		return fmt.Sprintf("%.1fx", float64(r.acceptP50)/float64(max(r.floorP50, time.Microsecond)))
	})
	row("command overhead ÷ echo", func(r result) string {
		return fmt.Sprintf("%.1fx", float64(r.cmdP50)/float64(max(r.echoP50, time.Microsecond)))
	})
	row("CPU per command", func(r result) string { return fmt.Sprintf("%d µs", r.cmdCPU.Microseconds()) })
	row("token refreshes in the run", func(r result) string { return strconv.Itoa(r.refreshes) })
}
