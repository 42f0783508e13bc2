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
	before := sim.Stats().CallsTotal
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
	r.callsStart = sim.Stats().CallsTotal - before
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
		time.Sleep(30 * time.Millisecond) // let the state JSON and updated_at land
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
	st := sim.Stats()
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
