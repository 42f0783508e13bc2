// The measurement of one fleet size: start, the "hour" of updates, the
// commands.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// fleetRun is one fleet's measurement: the simulated Ford, the bridge
// process under test and the subscriber that watches the broker. Each
// phase fills in its part of r.
type fleetRun struct {
	o        options
	n        int
	r        result
	sim      *fordsim.Sim
	simURL   string
	sub      *subscriber
	prefix   string
	vins     []string
	httpAddr string
	pid      int
	start    time.Time // the bridge's start
	before   int       // Ford calls before the bridge started
}

func measure(o options, n int, work string) (result, error) {
	fr := &fleetRun{o: o, n: n, r: result{vehicles: n}, prefix: fmt.Sprintf("bench%d", n)}
	fr.sim = fordsim.New(fordsim.Options{Vehicles: n, CommandDelay: o.commandDelay, Heartbeat: 20 * time.Second})
	defer fr.sim.Close()
	srv := httptest.NewUnstartedServer(fr.sim.Handler())
	if o.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	defer srv.Close()
	fr.simURL, fr.vins = srv.URL, fr.sim.VINs()
	dir := filepath.Join(work, fmt.Sprintf("state-%d", n))
	if err := signedInState(dir, srv.URL); err != nil {
		return fr.r, err
	}
	sub, err := newSubscriber(o.mqttURL, fr.prefix+"/#")
	if err != nil {
		return fr.r, err
	}
	defer sub.close()
	fr.sub = sub
	sub.clearRetained(fr.prefix) // what an earlier run of the same prefix left
	stop, err := fr.startBridge(dir)
	if err != nil {
		return fr.r, err
	}
	defer stop()
	for _, phase := range []func() error{fr.startup, fr.changes, fr.unchanged, fr.burst, fr.profileBurst, fr.hour, fr.idle, fr.commands} {
		if err := phase(); err != nil {
			return fr.r, err
		}
	}
	st := fr.sim.Stats()
	fr.r.refreshes = st.Refreshes
	fr.r.callsPerVehicleDay = float64(st.CallsTotal-fr.before-o.commands) / float64(n) / time.Since(fr.start).Hours() * 24
	return fr.r, nil
}

// signedInState signs in to the simulator once, so that the bridge starts
// from a saved token in dir.
func signedInState(dir, simURL string) error {
	if err := fordapi.PrepareStateDir(dir); err != nil {
		return err
	}
	region, _ := fordapi.LookupRegion("usa")
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: simURL, StateDir: dir, DailyBudget: 10000000})
	if err != nil {
		return err
	}
	defer c.Budget().Close()
	return signIn(c)
}

// startBridge starts the bridge process against the simulator and the
// broker; stop ends it (SIGTERM, then a kill after 30 s).
func (fr *fleetRun) startBridge(dir string) (stop func(), err error) {
	fr.httpAddr = freeAddr()
	fr.before = fr.sim.Stats().CallsTotal
	cmd := exec.Command(fr.o.bin, "run")
	cmd.Env = []string{"MQTT_URL=" + fr.o.mqttURL, "MQTT_TOPIC_PREFIX=" + fr.prefix, "MQTT_CLIENT_ID=" + fr.prefix, "HA_DISCOVERY_PREFIX=ha" + fr.prefix,
		"FORD_BASE_URL=" + fr.simURL, "STATE_DIR=" + dir, "FORD_DAILY_CALL_BUDGET=10000000", "FORD_POLL_INTERVAL=10m",
		"HTTP_ADDR=" + fr.httpAddr, "LOG_LEVEL=warn", "PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "SSL_CERT_FILE"} { // the GC settings side by side; -tls
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stderr = io.Discard
	fr.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	fr.pid = cmd.Process.Pid
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	}, nil
}

// startup waits for the first car's state, then every car's, and every
// car's socket; then it reads the resident memory at rest.
func (fr *fleetRun) startup() error {
	first := fr.prefix + "/" + fr.vins[0] + "/state"
	if !fr.sub.waitFor(func() bool { return fr.sub.has(first) }, 60*time.Second) {
		return errors.New("no state published within 60 s")
	}
	fr.r.startFirst = time.Since(fr.start)
	if !fr.sub.waitFor(func() bool { return fr.sub.count("/state") >= fr.n }, 5*time.Minute) {
		return fmt.Errorf("only %d of %d states published", fr.sub.count("/state"), fr.n)
	}
	fr.r.startAll = time.Since(fr.start)
	for _, vin := range fr.vins {
		if !waitUntil(func() bool { return fr.sim.Streams(vin) > 0 }, 2*time.Minute) {
			return fmt.Errorf("stream of %s not open", vin)
		}
	}
	fr.r.callsStart = fr.sim.Stats().CallsTotal - fr.before
	time.Sleep(2 * time.Second) // settle
	fr.r.rssStart = rssOf(fr.pid)
	fr.r.goroutinesStart = int(metric(fr.httpAddr, "go_goroutines"))
	return nil
}

// changes times one field's change over the socket, from Ford to the
// broker, and counts the messages it causes.
func (fr *fleetRun) changes() error {
	lat := []time.Duration{}
	samples := min(200, max(50, fr.n))
	for i := range samples {
		vin := fr.vins[i%fr.n]
		value := 50000 + float64(i) + 0.5
		topic := fr.prefix + "/" + vin + "/odometer"
		fr.sub.resetCount()
		t0 := time.Now()
		if err := patch(fr.simURL, vin, fmt.Sprintf(`{"metrics":{"odometer":{"value":%v}}}`, value)); err != nil {
			return err
		}
		want := strconv.FormatFloat(value, 'f', -1, 64)
		if !fr.sub.waitFor(func() bool { return fr.sub.value(topic) == want }, 90*time.Second) {
			return fmt.Errorf("odometer update %s not seen on %s after %d samples (value %q, streams %d)", want, topic, i, fr.sub.value(topic), fr.sim.Streams(vin))
		}
		lat = append(lat, time.Since(t0))
		time.Sleep(30 * time.Millisecond) // let the state JSON and updated_at land
		fr.r.msgsPerChange += float64(fr.sub.counted())
	}
	fr.r.msgsPerChange /= float64(samples)
	slices.Sort(lat)
	fr.r.latencyP50, fr.r.latencyP99 = lat[len(lat)/2], lat[len(lat)*99/100]
	return nil
}

// unchanged counts the messages of an update that changes nothing (the
// same value, the same Ford timestamp).
func (fr *fleetRun) unchanged() error {
	for i := range 20 {
		vin := fr.vins[i%fr.n]
		fr.sub.resetCount()
		v := fr.sub.value(fr.prefix + "/" + vin + "/odometer")
		ts := fr.sub.value(fr.prefix + "/" + vin + "/updated_at")
		if err := patch(fr.simURL, vin, fmt.Sprintf(`{"updateTime":%q,"metrics":{"odometer":{"value":%s}}}`, ts, v)); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
		fr.r.msgsPerUnchanged += float64(fr.sub.counted())
	}
	fr.r.msgsPerUnchanged /= 20
	return nil
}

// hour sends an hour of activity (every car changes hourUpdates times, at
// most 36,000 updates a fleet so a thousand cars finish in minutes) and
// measures the CPU per update and the memory after it.
func (fr *fleetRun) hour() error {
	cpu0 := cpuTime(fr.pid)
	total := 0
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	perVehicle := min(fr.o.hourUpdates, max(10, 36000/fr.n))
	for i := range perVehicle {
		for _, vin := range fr.vins {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				_ = patch(fr.simURL, vin, fmt.Sprintf(`{"metrics":{"odometer":{"value":%d.5},"fuelLevel":{"value":%d}}}`, 60000+i, 50+i%40))
			}()
			total++
		}
	}
	wg.Wait()
	// The concurrent patches of one car may land in any order: a last one,
	// sent alone, marks the end of the hour.
	lastVIN := fr.vins[fr.n-1]
	if err := patch(fr.simURL, lastVIN, `{"metrics":{"odometer":{"value":99999.5}}}`); err != nil {
		return err
	}
	total++
	if !fr.sub.waitFor(func() bool { return fr.sub.value(fr.prefix+"/"+lastVIN+"/odometer") == "99999.5" }, time.Minute) {
		return errors.New("the hour's last update never arrived")
	}
	time.Sleep(time.Second)
	fr.r.updates = total
	fr.r.cpuPerUpdate = (cpuTime(fr.pid) - cpu0) / time.Duration(total)
	fr.r.rssHour = rssOf(fr.pid)
	return nil
}

// idle samples the resident memory while nothing changes: one reading lands
// anywhere in the collector's cycle, the range says where it sits.
func (fr *fleetRun) idle() error {
	fr.r.rssIdleMin, fr.r.rssIdleMax = fr.r.rssHour.total, fr.r.rssHour.total
	for end := time.Now().Add(fr.o.idle); time.Now().Before(end); {
		time.Sleep(5 * time.Second)
		rss := rssMB(fr.pid)
		fr.r.rssIdleMin, fr.r.rssIdleMax = min(fr.r.rssIdleMin, rss), max(fr.r.rssIdleMax, rss)
	}
	fr.r.goroutinesHour = int(metric(fr.httpAddr, "go_goroutines"))
	fr.r.heapHour = metric(fr.httpAddr, "go_memstats_heap_inuse_bytes") / 1e6
	fr.r.stacksHour = metric(fr.httpAddr, "go_memstats_stack_inuse_bytes") / 1e6
	if fr.o.profile != "" {
		return saveProfiles(fr.httpAddr, fr.o.profile, fr.n)
	}
	return nil
}

// commands times lock and unlock from MQTT to their result, next to a raw
// MQTT echo through the same broker.
func (fr *fleetRun) commands() error {
	o, sub := fr.o, fr.sub
	echo, err := sub.echo(fr.prefix+"/bench/echo", o.commands)
	if err != nil {
		return err
	}
	fr.r.echoP50 = echo
	if fr.r.hotP50, fr.r.floorP50, err = sub.floor(o.mqttURL, fr.prefix, o.commands); err != nil {
		return err
	}
	cmdLat, acceptLat := []time.Duration{}, []time.Duration{}
	cpu1 := cpuTime(fr.pid)
	carTopic := fr.prefix + "/" + fr.vins[0] + "/command"
	for i := range o.commands {
		id := fmt.Sprintf("b%d", i)
		word := []string{"unlock", "lock"}[i%2]
		t0 := time.Now()
		sub.publish(carTopic, fmt.Sprintf(`{"command":%q,"id":%q}`, word, id))
		if !sub.waitFor(func() bool { _, ok := sub.arrival(id + "/success"); return ok }, 30*time.Second) {
			return fmt.Errorf("command %s: no success (last %s)", id, sub.value(carTopic+"/result"))
		}
		done, _ := sub.arrival(id + "/success")
		accepted, _ := sub.arrival(id + "/accepted")
		cmdLat = append(cmdLat, done.Sub(t0)-o.commandDelay)
		acceptLat = append(acceptLat, accepted.Sub(t0))
	}
	fr.r.cmdCPU = (cpuTime(fr.pid) - cpu1) / time.Duration(o.commands)
	slices.Sort(cmdLat)
	slices.Sort(acceptLat)
	fr.r.cmdP50, fr.r.acceptP50 = cmdLat[len(cmdLat)/2], acceptLat[len(acceptLat)/2]
	return nil
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
