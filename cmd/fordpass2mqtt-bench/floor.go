// The floor of an unchanged update: a program that only reads the same
// websocket frames and decodes them with encoding/json, measured in the
// same run as the bridge (issue 36), so the bridge's cost is a ratio to it.

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// floorEnv, when set (to "wsURL token frames"), makes this binary the
// floor program: it opens the socket, says "ready", decodes the given
// number of frames, says "done" and waits for its standard input to close.
const floorEnv = "FORDPASS2MQTT_BENCH_FLOOR"

func floor(spec string) int {
	f := strings.Fields(spec)
	n, err := 0, error(nil)
	if len(f) == 3 {
		n, err = strconv.Atoi(f[2])
	}
	if len(f) != 3 || err != nil {
		fmt.Fprintln(os.Stderr, floorEnv+` must be "wsURL token frames"`)
		return 2
	}
	conn, _, err := websocket.DefaultDialer.Dial(f[0], http.Header{"Authorization": {"Bearer " + f[1]}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	defer conn.Close()
	if _, _, err := conn.ReadMessage(); err != nil { // the car's whole record
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	fmt.Println("ready")
	for got := 0; got < n; {
		_, data, err := conn.ReadMessage()
		if err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			return 1
		}
		var frame map[string]any
		if json.Unmarshal(data, &frame) != nil {
			continue
		}
		if d, ok := frame["_data"].(map[string]any); ok && d["metrics"] != nil {
			got++ // a heartbeat is not one of the burst's frames
		}
	}
	fmt.Println("done")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// burstFrames is the burst of unchanged updates measured.
const burstFrames = 300

// burst measures the CPU of an unchanged update on the socket, for the
// bridge and for the floor program in the same run: the first car gets
// burstFrames updates that change nothing, read by both at once; each
// process's CPU over the burst, less its idle CPU over as long, is divided
// by the frames.
func (fr *fleetRun) burst() error {
	vin := fr.vins[0]
	ws := "ws" + strings.TrimPrefix(fr.simURL, "http") + fordapi.PathStream(vin)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), floorEnv+"="+ws+" "+fr.sim.StreamToken(1)+" "+strconv.Itoa(burstFrames))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		return errors.New("the floor program did not open its socket")
	}
	if !waitUntil(func() bool { return fr.sim.Streams(vin) >= 2 }, 30*time.Second) {
		return errors.New("the bridge's socket of the first car is not open")
	}
	// Idle: both processes' CPU over a quiet second, per second.
	idleSpan := time.Second
	b0, f0 := cpuPrecise(fr.pid), cpuPrecise(cmd.Process.Pid)
	time.Sleep(idleSpan)
	bIdle, fIdle := cpuPrecise(fr.pid)-b0, cpuPrecise(cmd.Process.Pid)-f0
	start := time.Now()
	b0, f0 = cpuPrecise(fr.pid), cpuPrecise(cmd.Process.Pid)
	if err := fr.sim.Burst(vin, burstFrames); err != nil {
		return err
	}
	if !lines.Scan() || lines.Text() != "done" {
		return errors.New("the floor program did not read the burst")
	}
	// The bridge read the same frames; a change sent after them marks the
	// end of its part (its cost is one frame's among the burst's).
	if err := patch(fr.simURL, vin, `{"metrics":{"odometer":{"value":88888.5}}}`); err != nil {
		return err
	}
	if !fr.sub.waitFor(func() bool { return fr.sub.value(fr.prefix+"/"+vin+"/odometer") == "88888.5" }, time.Minute) {
		return errors.New("the change after the burst never arrived")
	}
	took := time.Since(start)
	idle := func(d time.Duration) time.Duration { return d * took / idleSpan }
	fr.r.cpuPerUnchanged = max(cpuPrecise(fr.pid)-b0-idle(bIdle), 0) / burstFrames
	fr.r.floorPerFrame = max(cpuPrecise(cmd.Process.Pid)-f0-idle(fIdle), 0) / burstFrames
	return nil
}

// profileBurst, with -profile, records the bridge's CPU profile over a long
// burst of unchanged socket updates (the floor program gone by then), for
// go tool pprof: where an unchanged update's CPU goes, as a whole process.
func (fr *fleetRun) profileBurst() error {
	if fr.o.profile == "" {
		return nil
	}
	if err := os.MkdirAll(fr.o.profile, 0o755); err != nil {
		return err
	}
	const seconds = 5
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", fr.httpAddr, seconds))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(fr.o.profile, fmt.Sprintf("cpu-unchanged-%d.pprof", fr.n)))
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			f.Close()
		}
		done <- err
	}()
	for end := time.Now().Add(seconds * time.Second); time.Now().Before(end); {
		if err := fr.sim.Burst(fr.vins[0], 1000); err != nil {
			return err
		}
	}
	return <-done
}
