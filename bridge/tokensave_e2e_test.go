package bridge_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
)

// TestUnsavedTokenIsSaidAndSavedLater: when the rotated token cannot be
// written (here a directory stands where the token file goes, which stops
// root too), the bridge says so within seconds in P/auth/detail and
// /healthz, keeps working, saves it as soon as it can, and clears the
// warning; the saved token then survives a restart.
func TestUnsavedTokenIsSaidAndSavedLater(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true, stream: true})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	e.waitStream(vin1)
	path := filepath.Join(e.cfg.StateDir, "token.json")
	// The bridge rewrites a token file that goes missing under it (at its
	// next token check), so the directory may lose the race: try again.
	for i := 0; ; i++ {
		_ = os.Remove(path)
		err := os.MkdirAll(filepath.Join(path, "in-the-way"), 0o700)
		if err == nil {
			break
		}
		if i == 100 {
			t.Fatal(err)
		}
	}
	start := time.Now()
	e.simPost("/_sim/expire") // the next call refreshes, and Ford rotates the refresh token
	detail := e.w.WaitFor(e.topic("auth", "detail"), 10*time.Second, func(s string) bool { return strings.Contains(s, "warning") })
	took := time.Since(start)
	var d bridge.AuthInfo
	_ = json.Unmarshal([]byte(detail), &d)
	if !strings.Contains(d.Warning, "could not be saved") || !strings.Contains(d.Warning, "restart now needs a new sign-in") || d.State != "ok" {
		t.Fatalf("detail: %+v", d)
	}
	if h := e.healthz(); !strings.Contains(h, "warning") {
		t.Fatalf("/healthz: %q", h)
	}
	// The bridge goes on with the token in memory.
	e.patch(vin1, `{"metrics":{"odometer":{"value":3131.5}}}`)
	e.w.WaitValue(e.topic(vin1, "odometer"), "3131.5", 10*time.Second)

	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	e.w.WaitFor(e.topic("auth", "detail"), 10*time.Second, func(s string) bool { return !strings.Contains(s, "warning") })
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file after the retry: %v %v", fi, err)
	}
	e.restart()
	e.waitStream(vin1)
	e.patch(vin1, `{"metrics":{"odometer":{"value":3232.5}}}`)
	e.w.WaitValue(e.topic(vin1, "odometer"), "3232.5", 10*time.Second)
	if st, _ := e.w.Get(e.topic("auth", "state")); st != "ok" {
		t.Fatalf("after the restart: %s", st)
	}
	t.Logf("unsaved token reported %.1f s after the refresh; saved and cleared once the path was free; the restart needed no sign-in", took.Seconds())
}

// TestRetainedCodeCostsNoFordCall: a code left retained on P/auth/code/set
// while the bridge was down is cleared and refused at the next start,
// without a Ford call; a code already exchanged is refused after a restart
// too (the codes tried are kept in STATE_DIR as hashes).
func TestRetainedCodeCostsNoFordCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	codeSet := e.topic("auth", "code", "set")
	e.w.WaitValue(e.topic("auth", "state"), "reauth_required", 10*time.Second)
	redirect := e.redirect()
	e.w.Publish(codeSet, redirect, false)
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	exchanged := e.sim.Stats().Calls["b2c_token"]

	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	e.w.Publish(codeSet, redirect, true) // retained while the bridge is down
	e.restart()
	e.w.WaitFor(e.topic("auth", "detail"), 10*time.Second, func(s string) bool { return strings.Contains(s, "retained on") })
	e.w.WaitValue(codeSet, "", 5*time.Second)
	// The same code again, not retained, after a restart: known already.
	e.w.Publish(codeSet, redirect, false)
	e.w.WaitFor(e.topic("auth", "detail"), 10*time.Second, func(s string) bool { return strings.Contains(s, "already tried") })
	if n := e.sim.Stats().Calls["b2c_token"]; n != exchanged {
		t.Fatalf("%d code exchanges after the restart, want none", n-exchanged)
	}
	if st, _ := e.w.Get(e.topic("auth", "state")); st != "ok" {
		t.Fatalf("a refused old code changed the state: %s", st)
	}
	data, _ := os.ReadFile(filepath.Join(e.cfg.StateDir, "codes.json"))
	if strings.Contains(string(data), "simcode-") || len(data) == 0 {
		t.Fatalf("codes.json must hold hashes only: %.80s", data)
	}
}
