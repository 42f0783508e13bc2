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
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// responderEnv, when set (to "brokerURL topicPrefix"), makes this binary
// the floor's responder instead of the harness: a separate process, as the
// bridge is, so both pay the same wake-up when a request arrives.
const responderEnv = "FORDPASS2MQTT_BENCH_RESPONDER"

func main() {
	if spec := os.Getenv(responderEnv); spec != "" {
		os.Exit(respond(spec))
	}
	if spec := os.Getenv(floorEnv); spec != "" {
		os.Exit(floor(spec))
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
	tls          bool // the simulator serves https and wss, as Ford does
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
	flag.BoolVar(&o.tls, "tls", false, "serve the simulator over TLS (https and wss, as Ford does), its certificate trusted through SSL_CERT_FILE")
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
	if o.tls {
		if err := trustSimulator(work); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	host, _ := os.Hostname()
	fmt.Printf("fordpass2mqtt load harness, %s, host %s, %d CPUs, broker %s, simulator over %s\n\n", time.Now().UTC().Format("2006-01-02"), host, numCPU(), o.mqttURL, map[bool]string{false: "plain HTTP", true: "TLS"}[o.tls])
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
	rssStart, rssHour               rss
	rssIdleMin, rssIdleMax          float64 // MB, sampled while idle after the hour
	goroutinesStart, goroutinesHour int
	heapHour, stacksHour            float64 // MB in use after the hour
	cpuPerUpdate                    time.Duration
	// cpuPerUnchanged and floorPerFrame: an unchanged update on the
	// socket, for the bridge and for the floor program (floor.go).
	cpuPerUnchanged, floorPerFrame  time.Duration
	updates                         int
	latencyP50, latencyP99          time.Duration
	msgsPerChange, msgsPerUnchanged float64
	cmdP50, echoP50                 time.Duration
	acceptP50, floorP50, hotP50     time.Duration
	cmdCPU                          time.Duration
	callsStart, refreshes           int
	callsPerVehicleDay              float64
}

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
	row("RSS after start", func(r result) string { return r.rssStart.String() })
	row("goroutines after start", func(r result) string { return strconv.Itoa(r.goroutinesStart) })
	row("telemetry updates in the \"hour\"", func(r result) string { return strconv.Itoa(r.updates) })
	row("RSS after the hour", func(r result) string { return r.rssHour.String() })
	row("RSS while idle after the hour, min-max", func(r result) string { return fmt.Sprintf("%.1f-%.1f MB", r.rssIdleMin, r.rssIdleMax) })
	row("goroutines after the hour", func(r result) string { return strconv.Itoa(r.goroutinesHour) })
	row("heap in use after the hour", func(r result) string { return fmt.Sprintf("%.1f MB", r.heapHour) })
	row("goroutine stacks after the hour", func(r result) string { return fmt.Sprintf("%.1f MB", r.stacksHour) })
	row("CPU per telemetry update", func(r result) string { return fmt.Sprintf("%d µs", r.cpuPerUpdate.Microseconds()) })
	row(fmt.Sprintf("CPU per unchanged socket update (%d in a burst, idle subtracted)", burstFrames), func(r result) string {
		return fmt.Sprintf("%.1f µs", float64(r.cpuPerUnchanged.Nanoseconds())/1e3)
	})
	row("the floor's (read and decode the same frames alone)", func(r result) string {
		return fmt.Sprintf("%.1f µs", float64(r.floorPerFrame.Nanoseconds())/1e3)
	})
	row("bridge / floor", func(r result) string {
		if r.floorPerFrame <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f×", float64(r.cpuPerUnchanged)/float64(r.floorPerFrame))
	})
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
