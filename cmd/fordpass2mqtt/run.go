package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/both"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordconnect"
)

// Exit codes.
const (
	exitOK     = 0
	exitFatal  = 1
	exitConfig = 2
)

const usage = `fordpass2mqtt keeps a Ford vehicle on MQTT, with Home Assistant discovery.

Usage:
  fordpass2mqtt [run]      run the bridge until SIGINT/SIGTERM
  fordpass2mqtt login      sign in from a terminal (prints the login URL, reads the redirect URL)
                           --redirect-url URL   use this redirect URL instead of reading it
                           --account NAME       with FORD_ACCOUNTS: the account to sign in to
                           --fordconnect        with FORD_BACKEND=both: consent one more car to FordConnect
  fordpass2mqtt demo       a whole system without a Ford account: simulator, embedded broker, bridge
  fordpass2mqtt simulate   only the FordPass simulator, as an HTTP server
                           --addr 127.0.0.1:9000  --vehicles 1  --accounts 1  --command-delay 2s  --daily-limit 0
                           --fcon-client-id sim-client  --fcon-client-secret sim-secret
                           --fcon-redirect URL  --fcon-pace 1m   (its FordConnect app)
                           --fcon-pace-unit token|app  --fcon-retry-after seconds|date|body
  fordpass2mqtt doctor     troubleshooting checklist (--live spends Ford calls; --json)
  fordpass2mqtt healthcheck  exit 0 when the running bridge on HTTP_ADDR is healthy (for Docker)
  fordpass2mqtt version    print the version
  fordpass2mqtt --help     this text

Exit codes: 0 clean shutdown, 2 bad configuration, 1 anything else.

Environment:
`

// run is the whole program; main only wires signals and the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		_ = config.PrintEnvHelp(stdout)
		return exitOK
	case "version", "--version":
		fmt.Fprintln(stdout, "fordpass2mqtt", fullVersion())
		return exitOK
	case "run":
		return runBridge(ctx, args, stderr)
	case "login":
		return runLogin(ctx, args, stdin, stdout, stderr)
	case "demo":
		return runDemo(ctx, args, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args, stdout, stderr)
	case "doctor":
		return runDoctor(ctx, args, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, stdout, stderr)
	}
	fmt.Fprintf(stderr, "unknown command %q; run fordpass2mqtt --help\n", cmd)
	return exitConfig
}

// loadConfig loads and validates the environment, printing every problem.
func loadConfig(stderr io.Writer) (config.Config, bool) {
	cfg, err := config.Load(bridge.Commands())
	if err != nil {
		fmt.Fprintln(stderr, "configuration error:")
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "  "+line)
		}
		return cfg, false
	}
	return cfg, true
}

func newLogger(cfg config.Config, w io.Writer) *zap.Logger {
	level := zapcore.InfoLevel
	_ = level.Set(cfg.LogLevel)
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.LogFormat == "json" {
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level))
}

// newClient makes the FordPass client for cfg.
func newClient(cfg config.Config, log *zap.Logger, m *bridge.Metrics) (*fordapi.Client, error) {
	if err := fordapi.PrepareStateDir(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("STATE_DIR: %w", err)
	}
	c := fordapi.Config{Region: cfg.Region, BaseURL: cfg.FordBaseURL, StateDir: cfg.StateDir,
		DailyBudget: cfg.DailyBudget, DefaultClimate: cfg.ClimateDefault, Logger: log.Named("ford")}
	if m != nil {
		c.OnCall, c.OnRefresh = m.FordCall, m.TokenRefresh
	}
	return fordapi.New(c)
}

// newFord makes the client of the backend cfg names.
func newFord(cfg config.Config, log *zap.Logger, m *bridge.Metrics) (fordapi.Backend, error) {
	if cfg.Backend != config.BackendFordConnect && cfg.Backend != config.BackendBoth {
		return newClient(cfg, log, m)
	}
	if err := fordapi.PrepareStateDir(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("STATE_DIR: %w", err)
	}
	fc, err := newFordConnect(cfg, log)
	if err != nil || cfg.Backend == config.BackendFordConnect {
		return fc, err
	}
	fp, err := newClient(cfg, log, m)
	if err != nil {
		return nil, err
	}
	return both.New(fp, fc), nil
}

// newFordConnect makes the FordConnect client for cfg.
func newFordConnect(cfg config.Config, log *zap.Logger) (*fordconnect.Client, error) {
	return fordconnect.New(fordconnect.Config{BaseURL: cfg.FordBaseURL, ClientID: cfg.FordConnect.ClientID, ClientSecret: cfg.FordConnect.ClientSecret,
		RedirectURL: cfg.FordConnect.RedirectURL, StateDir: cfg.StateDir, Pace: fordConnectPace(cfg), Logger: log.Named("fordconnect")})
}

// fordConnectPace is FordConnect's one Query request a minute; against the
// simulator (FORD_BASE_URL) FORDCONNECT_PACE may shorten it for tests.
func fordConnectPace(cfg config.Config) time.Duration {
	if cfg.FordBaseURL != "" {
		if d, err := time.ParseDuration(os.Getenv("FORDCONNECT_PACE")); err == nil && d > 0 {
			return d
		}
	}
	return time.Minute
}

func runBridge(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "run takes no arguments (got %q); configure it with environment variables\n", args)
		return exitConfig
	}
	cfg, ok := loadConfig(stderr)
	if !ok {
		return exitConfig
	}
	return serve(ctx, cfg, stderr)
}

// serve runs the bridge with a validated configuration.
func serve(ctx context.Context, cfg config.Config, stderr io.Writer) int {
	log := newLogger(cfg, stderr)
	defer func() { _ = log.Sync() }()
	m := bridge.NewMetrics()
	if err := fordapi.PrepareStateDir(cfg.StateDir); err != nil {
		log.Error("cannot start", zap.Error(err))
		return exitConfig
	}
	if err := bridge.UpgradeStateDir(cfg, log); err != nil {
		log.Error("cannot start", zap.Error(err))
		return exitConfig
	}
	var clients []fordapi.Backend
	for _, a := range cfg.Accounts {
		alog := log
		if a.Name != "" {
			alog = log.With(zap.String("account", a.Name))
		}
		client, err := newFord(cfg.ForAccount(a), alog, m)
		if err != nil {
			log.Error("cannot start", zap.Error(err))
			for _, c := range clients {
				_ = c.Budget().Close()
			}
			return exitConfig
		}
		clients = append(clients, client)
	}
	return runWith(ctx, cfg, log, m, clients...)
}

// runWith runs the bridge with prepared clients, one per account.
func runWith(ctx context.Context, cfg config.Config, log *zap.Logger, m *bridge.Metrics, clients ...fordapi.Backend) int {
	if len(cfg.Accounts) != len(clients) {
		cfg.Accounts = nil // the demo's one account
	}
	cfg.Accounts = cfg.AccountList()
	b := bridge.NewAccounts(cfg, clients, bridge.Options{Version: fullVersion(), Logger: log.Named("bridge"), Metrics: m})
	var names []string
	for _, a := range cfg.Accounts {
		names = append(names, a.Name)
	}
	log.Info("fordpass2mqtt starting", zap.String("version", fullVersion()), zap.String("backend", cfg.Backend), zap.String("region", cfg.Region.Key),
		zap.Bool("stream", cfg.Stream), zap.Int("daily_call_budget", clients[0].Budget().Limit()), zap.Strings("accounts", slices.DeleteFunc(names, func(n string) bool { return n == "" })))
	if err := b.Run(ctx); err != nil {
		log.Error("fatal", zap.Error(err))
		if errors.As(err, new(*config.Error)) {
			return exitConfig
		}
		return exitFatal
	}
	return exitOK
}

func runLogin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	redirect := fs.String("redirect-url", "", "the fordapp://userauthorized?code=… URL (read from standard input when empty)")
	consent := fs.Bool("fordconnect", false, "with FORD_BACKEND=both: consent to FordConnect for one more car instead of signing in to FordPass")
	account := fs.String("account", "", "with FORD_ACCOUNTS: the account to sign in to")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	cfg, ok := loadConfig(stderr)
	if !ok {
		return exitConfig
	}
	log := newLogger(cfg, stderr)
	if cfg, ok = accountConfig(cfg, *account, log, stderr); !ok {
		return exitConfig
	}
	var client fordapi.Backend
	var err error
	useFordConnect := cfg.Backend == config.BackendFordConnect || cfg.Backend == config.BackendBoth && *consent
	switch {
	case *consent && cfg.Backend != config.BackendBoth:
		fmt.Fprintln(stderr, "--fordconnect is for FORD_BACKEND=both; with fordconnect every login is a consent")
		return exitConfig
	case useFordConnect:
		if err = fordapi.PrepareStateDir(cfg.StateDir); err == nil {
			client, err = newFordConnect(cfg, log)
		}
	default:
		client, err = newClient(cfg, log, nil)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	defer client.Budget().Close()
	if *redirect == "" {
		u, err := client.LoginURL()
		if err != nil {
			fmt.Fprintln(stderr, "cannot make the login link:", err)
			return exitFatal
		}
		if useFordConnect {
			fmt.Fprintf(stdout, `Consent to FordConnect Query for one car:

 1. Open this link in a browser:

%s

 2. Sign in with your Ford account and consent for the car. Ford then sends the
    browser to %s; that page may not load (nothing needs to listen there).
 3. Copy the whole address the browser landed on (with code= and state=) and paste it here.
    Run login again for each further car.

Address: `, u, cfg.FordConnect.RedirectURL)
		} else {
			fmt.Fprintf(stdout, `Sign in to FordPass (region %s):

 1. Open this link in a desktop browser, with the developer tools (F12) open on the Network tab:

%s

 2. Sign in. The page then keeps loading; that is expected.
 3. Copy the last address, which starts with %s://userauthorized, and paste it here.

Redirect URL: `, cfg.Region.Key, u, cfg.Region.RedirectScheme())
		}
		line, err := bufio.NewReaderSize(stdin, 64<<10).ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintln(stderr, "\nno redirect URL was read")
			return exitFatal
		}
		*redirect = line
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := client.SignIn(ctx, *redirect); err != nil {
		fmt.Fprintln(stderr, "sign-in failed:", err)
		return exitFatal
	}
	where := filepath.Join(cfg.StateDir, "fordconnect.json")
	if fc, ok := client.(*fordapi.Client); ok {
		where = fc.TokenPath()
	}
	fmt.Fprintf(stdout, "Signed in. The token is saved in %s.\nA running bridge takes it up by itself within seconds (no restart needed); if none runs, start it with `fordpass2mqtt run`.\n", where)
	return exitOK
}

// accountConfig is the configuration of the account login signs in to:
// the one account without FORD_ACCOUNTS; with it, the one --account names.
func accountConfig(cfg config.Config, name string, log *zap.Logger, stderr io.Writer) (config.Config, bool) {
	var names []string
	for _, a := range cfg.AccountList() {
		if a.Name == name {
			if err := fordapi.PrepareStateDir(cfg.StateDir); err == nil {
				_ = bridge.UpgradeStateDir(cfg, log) // the sign-in from before is the first account's
			}
			return cfg.ForAccount(a), true
		}
		names = append(names, a.Name)
	}
	if name == "" {
		fmt.Fprintf(stderr, "FORD_ACCOUNTS names several accounts: say which one with --account (%s)\n", strings.Join(names, ", "))
	} else if names[0] == "" {
		fmt.Fprintln(stderr, "--account is for FORD_ACCOUNTS, which is not set")
	} else {
		fmt.Fprintf(stderr, "--account %q is not in FORD_ACCOUNTS (%s)\n", name, strings.Join(names, ", "))
	}
	return cfg, false
}

// runHealthcheck asks the running bridge's /healthz (the image has no curl).
func runHealthcheck(ctx context.Context, stdout, stderr io.Writer) int {
	addr, ok := os.LookupEnv("HTTP_ADDR")
	if !ok {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintln(stderr, "HTTP_ADDR: the health check needs host:port, got", addr)
		return exitConfig
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "unhealthy:", err)
		return exitFatal
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "unhealthy: %d %s", resp.StatusCode, body)
		return exitFatal
	}
	fmt.Fprintf(stdout, "healthy: %s", body)
	return exitOK
}
