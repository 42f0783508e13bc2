//go:build !nodemo

// The demo and the simulator: left out of the production build (-tags
// nodemo, as the Dockerfile builds the image users run), which then carries
// neither the embedded broker nor the simulator.

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/broker"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// runDemo runs a whole system on one machine: the FordPass simulator, an
// embedded broker (unless MQTT_URL is set), and the bridge signed in by
// itself, with a simulated car that drives, parks, opens a door and charges.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "demo takes no arguments (got %q)\n", args)
		return exitConfig
	}
	_, brokerSet := os.LookupEnv("MQTT_URL")
	_, httpSet := os.LookupEnv("HTTP_ADDR")
	_, prefixSet := os.LookupEnv("MQTT_TOPIC_PREFIX")
	_, clientSet := os.LookupEnv("MQTT_CLIENT_ID")
	cfg, ok := loadConfig(stderr)
	if !ok {
		return exitConfig
	}
	// The demo never writes where a real bridge does: its own topic prefix,
	// client id and Home Assistant devices, on any broker.
	if !prefixSet {
		cfg.TopicPrefix = config.DemoPrefix
	} else if cfg.TopicPrefix == "fordpass" {
		fmt.Fprintf(stderr, "MQTT_TOPIC_PREFIX: the demo does not use %q, a real bridge's prefix; leave it unset (the demo uses %q) or pick another\n",
			cfg.TopicPrefix, config.DemoPrefix)
		return exitConfig
	}
	if !clientSet || cfg.MQTTClientID == "fordpass2mqtt" {
		cfg.MQTTClientID = "fordpass2mqtt-demo-" + randomID()
	}
	if brokerSet && !prefixSet {
		// Another demo on this broker owns fordpass_demo/: this one takes
		// a prefix of its own, so neither clears the other's topics.
		if v, err := bridge.RetainedOn(cfg, config.DemoPrefix+"/bridge/availability", time.Second); err == nil && v == "online" {
			cfg.TopicPrefix = config.DemoPrefix + "_" + randomID()
		}
	}
	cfg.Demo = true
	log := newLogger(cfg, stderr)
	defer func() { _ = log.Sync() }()

	sim := fordsim.New(fordsim.Options{Vehicles: 2, CommandDelay: 2 * time.Second, Heartbeat: 20 * time.Second})
	defer sim.Close()
	simSrv := httptest.NewServer(sim.Handler())
	defer simSrv.Close()

	if !brokerSet {
		b, err := broker.Start("127.0.0.1:1883")
		if err != nil {
			fmt.Fprintf(stderr, "cannot start the embedded MQTT broker on 127.0.0.1:1883 (%v).\n"+
				"Is another broker running there? Then point the demo at it: MQTT_URL=tcp://127.0.0.1:1883 fordpass2mqtt demo\n", err)
			return exitFatal
		}
		defer b.Close()
		cfg.MQTTURL = b.URL()
	}
	if !httpSet {
		cfg.HTTPAddr = freeOr("127.0.0.1:8080")
	}
	dir, err := os.MkdirTemp("", "fordpass2mqtt-demo-")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFatal
	}
	defer os.RemoveAll(dir)
	// The demo never touches a real token: its state lives in a temporary
	// directory, and it calls only the simulator.
	cfg.StateDir, cfg.FordBaseURL, cfg.PollInterval, cfg.DailyBudget = dir, simSrv.URL, time.Minute, 100000
	cfg.VINs = nil

	m := bridge.NewMetrics()
	client, err := newClient(cfg, log, m)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFatal
	}
	if err := demoSignIn(ctx, client); err != nil {
		fmt.Fprintln(stderr, "demo sign-in against the simulator failed:", err)
		return exitFatal
	}
	go animate(ctx, sim, log.Named("demo"))
	printBanner(stdout, cfg, sim.VINs())
	return runWith(ctx, cfg, log, m, client)
}

func randomID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freeOr returns addr when it can be listened on, else any free port.
func freeOr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return ""
		}
	}
	defer ln.Close()
	return ln.Addr().String()
}

// demoSignIn does what a user does: open the login link, sign in, paste the
// redirect URL. The simulator's login page signs in at once.
func demoSignIn(ctx context.Context, client *fordapi.Client) error {
	u, err := client.LoginURL()
	if err != nil {
		return err
	}
	redirect, err := fordsim.FollowLogin(ctx, u)
	if err != nil {
		return err
	}
	return client.SignIn(ctx, redirect)
}

func printBanner(w io.Writer, cfg config.Config, vins []string) {
	p := cfg.TopicPrefix
	b := brokerFlags(cfg)
	fmt.Fprintf(w, `
fordpass2mqtt demo: a simulated Ford account with %d cars, no Ford account needed.

  Broker:        %s
  Topic prefix:  %s
  Cars:          %v
  Sign-in page:  http://%s/

Watch everything:
  mosquitto_sub %s -v -t '%s/#'
Lock the first car and see the result:
  mosquitto_pub %s -t '%s/%s/command' -m lock
  mosquitto_sub %s -v -t '%s/+/command/result'
Home Assistant: point its MQTT integration at this broker; the cars appear by themselves.
The truck drives, parks and refuels; the Mach-E drives unplugged, is plugged in at home and charges
up to its target (charge_pause holds). Ctrl-C stops the demo.

`, len(vins), cfg.MQTTURL, p, vins, cfg.HTTPAddr, b, p, b, p, vins[0], b, p)
}

// brokerFlags are mosquitto_sub's and mosquitto_pub's flags for the
// demo's broker: its host and port (and TLS, user name when set), so a
// pasted command reaches it.
func brokerFlags(cfg config.Config) string {
	u, err := url.Parse(cfg.MQTTURL)
	if err != nil || u.Hostname() == "" {
		return "-h 127.0.0.1"
	}
	flags := "-h " + u.Hostname()
	port := u.Port()
	switch u.Scheme {
	case "ssl", "tls", "mqtts":
		if port == "" {
			port = "8883"
		}
		flags += " -p " + port + " --capath /etc/ssl/certs"
	case "ws", "wss":
		flags += " -p " + port + " (mosquitto_sub speaks no websocket: use a TCP listener)"
		return flags
	default:
		if port == "" {
			port = "1883"
		}
		flags += " -p " + port
	}
	if cfg.MQTTUsername != "" {
		flags += " -u " + cfg.MQTTUsername + " -P '…'"
	}
	return flags
}

// animate changes the simulated cars now and then so a watcher sees live
// updates: a drive, parking, a door opened and closed, a charge.
func animate(ctx context.Context, sim *fordsim.Sim, log *zap.Logger) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	d := newDemoCars(sim)
	for step := 0; ; step++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := d.step(step); err != nil {
			log.Debug("demo step", zap.Error(err))
		}
	}
}

// demoCars are the demo's cars as they live: the fuel trucks drive, park,
// open a door and refuel; the electric cars drive unplugged, come home, are
// plugged in and charge — a charge the simulator runs as a car does (it
// holds what the last command or plug change set, stops at the target,
// draws power only while it charges; fordsim's evcharge.go).
type demoCars struct {
	sim  *fordsim.Sim
	odo  map[string]float64
	fuel float64
}

func newDemoCars(sim *fordsim.Sim) *demoCars {
	return &demoCars{sim: sim, odo: map[string]float64{}, fuel: 63.2}
}

// demoChargeTime is the charge a demo step lets pass (15 s of the demo are
// 20 minutes on the charger, so a charge is seen to move).
const demoChargeTime = 20 * time.Minute

// step is one 15-second step of the demo's six-step day.
func (d *demoCars) step(step int) error {
	var errs []error
	for i, vin := range d.sim.VINs() {
		if d.odo[vin] == 0 {
			d.odo[vin] = 12345.6 + float64(i+1)
		}
		if plugged, err := d.sim.Plugged(vin); err == nil {
			errs = append(errs, d.evStep(vin, i, step, plugged))
			continue
		}
		metrics := map[string]any{}
		switch step % 6 {
		case 0, 1: // driving
			d.odo[vin] += 1.4
			d.fuel = max(d.fuel-0.3, 5)
			metrics = driving(d.odo[vin], step, i)
		case 2:
			metrics = parked()
		case 3:
			metrics["doorStatus"] = doors("AJAR")
		case 4:
			metrics["doorStatus"] = doors("CLOSED")
		case 5:
			d.fuel = 95 // refuelled
		}
		metrics["fuelLevel"] = map[string]any{"value": d.fuel}
		errs = append(errs, d.sim.Patch(vin, map[string]any{"metrics": metrics}))
	}
	return errors.Join(errs...)
}

// evStep is an electric car's step: unplugged and driven (steps 0 and 1),
// parked and plugged in (2), charging while it stays plugged (3 to 5).
func (d *demoCars) evStep(vin string, i, step int, plugged bool) error {
	switch step % 6 {
	case 0, 1:
		if plugged {
			if err := d.sim.SetPlug(vin, false); err != nil {
				return err
			}
		}
		if err := d.sim.Drive(vin, 1.4); err != nil {
			return err
		}
		m := driving(d.odo[vin], step, i)
		delete(m, "odometer") // Drive moved the car's own
		return d.sim.Patch(vin, map[string]any{"metrics": m})
	case 2:
		if err := d.sim.Patch(vin, map[string]any{"metrics": parked()}); err != nil {
			return err
		}
		return d.sim.SetPlug(vin, true)
	}
	return d.sim.ChargeTick(vin, demoChargeTime)
}

func driving(odo float64, step, i int) map[string]any {
	return map[string]any{
		"ignitionStatus": map[string]any{"value": "ON"}, "speed": map[string]any{"value": 52.0},
		"gearLeverPosition": map[string]any{"value": "DRIVE"}, "odometer": map[string]any{"value": odo},
		"position": map[string]any{"value": map[string]any{"location": map[string]any{
			"lat": 42.3006 + float64(step%100)/500, "lon": -83.2312 + float64(i)/1000}}},
	}
}

func parked() map[string]any {
	return map[string]any{"ignitionStatus": map[string]any{"value": "OFF"}, "speed": map[string]any{"value": 0.0},
		"gearLeverPosition": map[string]any{"value": "PARK"}}
}

// doors is the four side doors in Ford's shape, the driver's in the given
// state (AJAR or CLOSED).
func doors(driver string) []any {
	return []any{
		map[string]any{"vehicleDoor": "UNSPECIFIED_FRONT", "vehicleSide": "DRIVER", "value": driver},
		map[string]any{"vehicleDoor": "UNSPECIFIED_FRONT", "vehicleSide": "PASSENGER", "value": "CLOSED"},
		map[string]any{"vehicleDoor": "REAR_LEFT", "vehicleSide": "DRIVER", "value": "CLOSED"},
		map[string]any{"vehicleDoor": "REAR_RIGHT", "vehicleSide": "PASSENGER", "value": "CLOSED"},
	}
}

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9000", "listen address")
	n := fs.Int("vehicles", 1, "number of simulated vehicles (of each account)")
	accounts := fs.Int("accounts", 1, "number of Ford accounts, each with its own vehicles (POST /_sim/signin?account=N picks the next sign-in's)")
	delay := fs.Duration("command-delay", 2*time.Second, "time from a command to its outcome")
	limit := fs.Int("daily-limit", 0, "lock the account after this many calls in 24 h, token exchanges aside (0: never)")
	fconID := fs.String("fcon-client-id", fordsim.FconClientID, "the FordConnect app's client id the simulator accepts")
	fconSecret := fs.String("fcon-client-secret", fordsim.FconClientSecret, "the FordConnect app's client secret the simulator accepts")
	fconRedirect := fs.String("fcon-redirect", fordsim.FconRedirect, "the FordConnect redirect URL registered with that app")
	fconPace := fs.Duration("fcon-pace", time.Minute, "FordConnect answers Query requests closer than this with 429")
	fconPaceUnit := fs.String("fcon-pace-unit", "token", "what FordConnect's pace counts: token (each access token, one per car) or app (every car of the app)")
	fconRetry := fs.String("fcon-retry-after", "seconds", "how FordConnect's 429 says when to come back: seconds, date (an HTTP date) or body (\"N seconds\" in the body)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if *n < 1 || *n > 100000 || *accounts < 1 || *accounts > 100 || *n**accounts > 100000 || *delay <= 0 || *limit < 0 || *fconPace <= 0 || *fconID == "" || *fconSecret == "" ||
		(*fconPaceUnit != "token" && *fconPaceUnit != "app") || (*fconRetry != "seconds" && *fconRetry != "date" && *fconRetry != "body") {
		fmt.Fprintln(stderr, "--vehicles must be 1 to 100000 (of every account together), --accounts 1 to 100, --command-delay and --fcon-pace positive, --daily-limit 0 or more, the --fcon- app not empty, --fcon-pace-unit token or app, --fcon-retry-after seconds, date or body")
		return exitConfig
	}
	sim := fordsim.New(fordsim.Options{Vehicles: *n, Accounts: *accounts, CommandDelay: *delay, DailyLimit: *limit,
		FconClientID: *fconID, FconClientSecret: *fconSecret, FconRedirects: []string{*fconRedirect}, FconPace: *fconPace,
		FconPacePerApp: *fconPaceUnit == "app", FconRetryAfter: *fconRetry})
	defer sim.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "--addr:", err)
		return exitConfig
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stdout, "FordPass simulator on http://%s with %d vehicle(s): %s\n", ln.Addr(), *n**accounts, strings.Join(sim.VINs(), ", "))
	if *accounts > 1 {
		fmt.Fprintf(stdout, "%d accounts of %d vehicle(s) each, in that order; a sign-in is to account 1 unless POST /_sim/signin?account=N picks another.\n", *accounts, *n)
	}
	fmt.Fprintf(stdout, "Point the bridge at it with FORD_BASE_URL=http://%s ; control it under /_sim/ (see README).\n", ln.Addr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return exitFatal
	}
	return exitOK
}
