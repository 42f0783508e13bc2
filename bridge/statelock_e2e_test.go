package bridge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// TestSecondBridgeOnOneStateDirIsRefused: two bridges on one STATE_DIR
// would share the token file and the budget and race each other's
// refreshes. The second refuses to start, naming the directory and the
// first one's PID, with a configuration error; doctor names the holder;
// once the first stops, the directory is free again.
func TestSecondBridgeOnOneStateDirIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	second := bridge.New(e.cfg, e.client, bridge.Options{Version: "test"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := second.Run(ctx)
	if !errors.Is(err, fordapi.ErrStateDirLocked) || !errors.As(err, new(*config.Error)) ||
		!strings.Contains(err.Error(), e.cfg.StateDir) || !strings.Contains(err.Error(), "PID "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("a second bridge on the same STATE_DIR: %v", err)
	}
	if pid := fordapi.StateDirHolder(e.cfg.StateDir); pid != strconv.Itoa(os.Getpid()) {
		t.Fatalf("the holder is %q", pid)
	}
	if v, _ := e.w.Get(e.topic("auth", "state")); v != "ok" {
		t.Fatalf("the first bridge's state went %q", v)
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	if pid := fordapi.StateDirHolder(e.cfg.StateDir); pid != "" {
		t.Fatalf("still held by %q after the first bridge stopped", pid)
	}
	e.restart()
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
}

// TestSecretFileSymlinkIsRefused: a token file that is a symbolic link
// (to a file anyone can read, say) is never read through the link: the
// bridge warns naming it, and asks for a sign-in rather than use it.
func TestSecretFileSymlinkIsRefused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	if err := fordapi.PrepareStateDir(dir); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "elsewhere.json")
	if err := os.WriteFile(outside, []byte(`{"access_token":"a","refresh_token":"r"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "token.json")); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{dir: dir})
	e.w.WaitValue(e.topic("auth", "state"), "reauth_required", 10*time.Second)
	e.w.WaitFor(e.topic("auth", "detail"), 10*time.Second, func(s string) bool { return strings.Contains(s, "symbolic link") })
	if e.logs.FilterMessageSnippet("not private").Len() == 0 {
		t.Fatal("no warning about the link")
	}
	if fi, _ := os.Stat(outside); fi.Mode().Perm() != 0o644 {
		t.Fatal("the link's target was changed")
	}
}

// TestDamagedTokenFileIsReportedAndRepaired: garbage written over
// token.json while the bridge runs is noticed at the next token check,
// said on P/auth/detail and rewritten from the token in use, so a restart
// right after needs no sign-in; a token file removed is written again too.
func TestDamagedTokenFileIsReportedAndRepaired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signedIn: true})
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	path := filepath.Join(e.cfg.StateDir, "token.json")
	for found, damage := range map[string]func(){
		"damaged": func() { _ = os.WriteFile(path, []byte("garbage\x00\x01"), 0o600) },
		"removed": func() { _ = os.Remove(path) },
	} {
		damage()
		e.w.WaitFor(e.topic("auth", "detail"), 10*time.Second, func(s string) bool {
			return strings.Contains(s, "rewrote it from memory") && strings.Contains(s, found)
		})
		data, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(data), "refresh_token") {
			t.Fatalf("token.json after the repair: %v %.40q", err, data)
		}
	}
	e.restart()
	e.w.WaitValue(e.topic("auth", "state"), "ok", 10*time.Second)
	if v, _ := e.w.Get(e.topic("auth", "state")); v != "ok" {
		t.Fatalf("after a restart: %s", v)
	}
}
