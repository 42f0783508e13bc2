package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// accountsEnv is the environment of a bridge of FORD_ACCOUNTS=home,work
// on the simulator and broker, in dir.
func accountsEnv(fordURL, brokerURL, prefix, dir string) []string {
	return []string{"FORD_ACCOUNTS=home,work", "FORD_BASE_URL=" + fordURL, "FORD_POLL_INTERVAL=2s", "STATE_DIR=" + dir,
		"MQTT_URL=" + brokerURL, "MQTT_TOPIC_PREFIX=" + prefix, "MQTT_CLIENT_ID=" + prefix, "HA_DISCOVERY_PREFIX=ha" + prefix,
		"HTTP_ADDR=", "LOG_LEVEL=debug"}
}

// TestTwoAccountsThroughTheBinary: with FORD_ACCOUNTS=home,work each
// account signs in through its own topics, every car of both appears, and
// when work's sign-in dies, work alone asks for a new one: home stays ok
// and its cars keep updating.
func TestTwoAccountsThroughTheBinary(t *testing.T) {
	t.Parallel()
	sim, fordURL := bridgetest.Ford(t, fordsim.Options{Accounts: 2, Vehicles: 2, Heartbeat: 500 * time.Millisecond})
	url := bridgetest.Broker(t)
	prefix := "fpacc" + bridgetest.Suffix()
	sub := bridgetest.Watch(t, url, prefix+"/#", "ha"+prefix+"/#")
	tree := mqttapi.New(prefix)
	home, work := tree.Account("home"), tree.Account("work")
	cmd, _, stderr := program(t, accountsEnv(fordURL, url, prefix, t.TempDir()))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the bridge's log:\n%s", stderr)
		}
	})
	sub.WaitFor(tree.AuthState(), 20*time.Second, func(s string) bool { return s == "reauth_required" })

	// Home Assistant gets an auth sensor for each account on the bridge
	// device, reading that account's topics.
	var dev struct {
		Components map[string]struct {
			StateTopic string `json:"state_topic"`
		} `json:"cmps"`
	}
	cfgTopic := "ha" + prefix + "/device/fordpass_bridge_" + prefix + "/config"
	if err := json.Unmarshal([]byte(sub.WaitFor(cfgTopic, 10*time.Second, func(s string) bool { return s != "" })), &dev); err != nil {
		t.Fatal(err)
	}
	for name, acct := range map[string]mqttapi.Tree{"home": home, "work": work} {
		if got := dev.Components["account_"+name+"_auth_state"].StateTopic; got != acct.AuthState() {
			t.Fatalf("account %s's auth sensor reads %q, not %s", name, got, acct.AuthState())
		}
	}

	signIn := func(n int, acct mqttapi.Tree) {
		t.Helper()
		sim.SignInTo(n)
		link := sub.WaitFor(acct.LoginURL(), 10*time.Second, func(s string) bool { return s != "" })
		sub.Publish(acct.CodeSet(), bridgetest.FollowLogin(t, link), false)
		sub.WaitFor(acct.AuthState(), 20*time.Second, func(s string) bool { return s == "ok" })
	}
	// A code on the topic of one account signs nothing in: it names no
	// account.
	sim.SignInTo(1)
	sub.Publish(tree.CodeSet(), bridgetest.FollowLogin(t, sub.WaitFor(home.LoginURL(), 10*time.Second, func(s string) bool { return s != "" })), false)
	sub.WaitFor(tree.CodeSet(), 10*time.Second, func(s string) bool { return s == "" })
	if got := last(sub, home.AuthState()); got != "reauth_required" {
		t.Fatalf("a code on %s signed in home: %q", tree.CodeSet(), got)
	}
	signIn(1, home)
	if got := last(sub, work.AuthState()); got != "reauth_required" {
		t.Fatalf("work signed in with home's code: %q", got)
	}
	if got := last(sub, tree.AuthState()); got != "reauth_required" {
		t.Fatalf("P/auth/state is %q while work needs a sign-in", got)
	}
	signIn(2, work)
	sub.WaitFor(tree.AuthState(), 10*time.Second, func(s string) bool { return s == "ok" })
	for i := 1; i <= 4; i++ {
		sub.WaitFor(tree.Field(fordsim.VIN(i), "lock"), 20*time.Second, func(s string) bool { return s == "locked" })
	}
	var info mqttapi.Info
	sub.WaitFor(tree.Info(), 10*time.Second, func(s string) bool {
		return json.Unmarshal([]byte(s), &info) == nil && len(info.Accounts) == 2 && len(info.VINs) == 4
	})
	for i, want := range [][]string{{fordsim.VIN(1), fordsim.VIN(2)}, {fordsim.VIN(3), fordsim.VIN(4)}} {
		if got := info.Accounts[i].VINs; !slices.Equal(got, want) {
			t.Fatalf("account %s bridges %v, not its own cars %v", info.Accounts[i].Name, got, want)
		}
	}

	sim.RevokeAccount(2)
	sim.ExpireAccount(2)
	sub.WaitFor(work.AuthState(), 30*time.Second, func(s string) bool { return s == "reauth_required" })
	sub.WaitFor(tree.AuthState(), 10*time.Second, func(s string) bool { return s == "reauth_required" })
	var detail mqttapi.AuthInfo
	if err := json.Unmarshal([]byte(last(sub, tree.AuthDetail())), &detail); err != nil || detail.Account != "work" ||
		detail.Accounts["home"] != "ok" || detail.Accounts["work"] != "reauth_required" {
		t.Fatalf("P/auth/detail does not say which account needs the sign-in: %+v (%v)", detail, err)
	}
	if err := sim.Patch(fordsim.VIN(1), map[string]any{"metrics": map[string]any{"odometer": map[string]any{"value": 4321.5}}}); err != nil {
		t.Fatal(err)
	}
	sub.WaitFor(tree.Field(fordsim.VIN(1), "odometer"), 20*time.Second, func(s string) bool { return s == "4321.5" })
	after := sub.History(home.AuthState())
	if slices.Contains(after[slices.Index(after, "ok"):], "reauth_required") {
		t.Fatalf("home asked for a sign-in when work's died: %v", after)
	}
	// A command to work's car says which account needs the sign-in.
	sub.Publish(tree.Command(fordsim.VIN(3)), `{"command":"lock","id":"w1"}`, false)
	res := sub.WaitFor(tree.Result(fordsim.VIN(3)), 10*time.Second, func(s string) bool { return strings.Contains(s, `"w1"`) })
	if !strings.Contains(res, "rejected") || !strings.Contains(res, "account work") {
		t.Fatalf("a command to a car of the account that needs a sign-in: %s", res)
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "each account takes its code on its own topic") {
		t.Fatal("a code on P/auth/code/set was dropped without a word")
	}
	for _, secret := range []string{"simcat-", "simrefresh-", "simauto-", "simcode-", "simb2c-"} {
		if strings.Contains(stderr.String(), secret) {
			t.Fatalf("the log holds a token or code (%s…)", secret)
		}
	}
}

// TestSingleAccountStateDirUpgrades: a STATE_DIR signed in before
// FORD_ACCOUNTS is set becomes the first account's without a new sign-in;
// the other account asks for its own.
func TestSingleAccountStateDirUpgrades(t *testing.T) {
	t.Parallel()
	_, fordURL := bridgetest.Ford(t, fordsim.Options{Accounts: 2, Heartbeat: 500 * time.Millisecond})
	dir := t.TempDir()
	c, err := fordapi.New(fordapi.Config{BaseURL: fordURL, StateDir: dir, DailyBudget: 250, Region: mustRegion(t)})
	if err != nil {
		t.Fatal(err)
	}
	bridgetest.SignIn(t, c)
	if err := c.Budget().Close(); err != nil {
		t.Fatal(err)
	}
	url := bridgetest.Broker(t)
	prefix := "fpupg" + bridgetest.Suffix()
	sub := bridgetest.Watch(t, url, prefix+"/#")
	tree := mqttapi.New(prefix)
	cmd, _, stderr := program(t, accountsEnv(fordURL, url, prefix, dir))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the bridge's log:\n%s", stderr)
		}
	})
	sub.WaitFor(tree.Account("home").AuthState(), 20*time.Second, func(s string) bool { return s == "ok" })
	sub.WaitFor(tree.Field(fordsim.VIN(1), "lock"), 20*time.Second, func(s string) bool { return s == "locked" })
	sub.WaitFor(tree.Account("work").AuthState(), 10*time.Second, func(s string) bool { return s == "reauth_required" })
	if slices.Contains(sub.History(tree.Account("home").AuthState()), "reauth_required") {
		t.Fatal("the account that took the sign-in from before asked for a new one")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, fordapi.TokenFileName)); err == nil {
		t.Fatal("the token from before is still in STATE_DIR beside the account's")
	}
	st, err := os.Stat(filepath.Join(dir, "home", fordapi.TokenFileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("home's token: %v, %v", st, err)
	}
}

func mustRegion(t *testing.T) fordapi.Region {
	t.Helper()
	r, err := fordapi.LookupRegion("usa")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func last(w *bridgetest.Watcher, topic string) string {
	s, _ := w.Get(topic)
	return s
}

// TestATokenPerCarStreamsEveryCar: where Ford binds the socket to one car
// per sign-in, an account per car (the same Ford login signed in twice,
// FORD_VINS_<NAME> naming one car each) streams every car: no socket
// closes another.
func TestATokenPerCarStreamsEveryCar(t *testing.T) {
	t.Parallel()
	sim, fordURL := bridgetest.Ford(t, fordsim.Options{Vehicles: 2, Heartbeat: 500 * time.Millisecond})
	bridgetest.SimControl(t, fordURL, "/_sim/protocol?sockets_per_token=1")
	url := bridgetest.Broker(t)
	prefix := "fpcar" + bridgetest.Suffix()
	sub := bridgetest.Watch(t, url, prefix+"/#")
	tree := mqttapi.New(prefix)
	vin1, vin2 := fordsim.VIN(1), fordsim.VIN(2)
	env := append(accountsEnv(fordURL, url, prefix, t.TempDir()), "FORD_ACCOUNTS=pickup,mache", "FORD_VINS_PICKUP="+vin1, "FORD_VINS_MACHE="+vin2)
	cmd, _, stderr := program(t, env)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the bridge's log:\n%s", stderr)
		}
	})
	for _, name := range []string{"pickup", "mache"} {
		acct := tree.Account(name)
		link := sub.WaitFor(acct.LoginURL(), 20*time.Second, func(s string) bool { return s != "" })
		sub.Publish(acct.CodeSet(), bridgetest.FollowLogin(t, link), false)
		sub.WaitFor(acct.AuthState(), 20*time.Second, func(s string) bool { return s == "ok" })
	}
	bridgetest.Eventually(t, 20*time.Second, "both cars streaming", func() bool { return sim.Streams(vin1) == 1 && sim.Streams(vin2) == 1 })
	for i, vin := range []string{vin1, vin2} {
		odo := fmt.Sprintf("%d.5", 7000+i)
		if err := sim.Patch(vin, map[string]any{"metrics": map[string]any{"odometer": map[string]any{"value": 7000.5 + float64(i)}}}); err != nil {
			t.Fatal(err)
		}
		// Pushed on the socket: well within one poll interval (2 s).
		sub.WaitFor(tree.Field(vin, "odometer"), 20*time.Second, func(s string) bool { return s == odo })
	}
	if n := sim.Stats().SocketsDisplaced; n != 0 {
		t.Fatalf("%d sockets closed by another car's, with a sign-in per car", n)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
}
