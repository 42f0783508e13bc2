package fordapi

import (
	"testing"
	"time"
)

// TestOneSocketIsFoundAndLapses: a socket closed within seconds of another
// car's opening is displaced; the third displacement within ten minutes
// makes the client find one socket per token, which is kept on disk (a
// restarted client knows it) and lapses after a day, so the bridge streams
// every car again and finds out whether Ford still closes them. A socket
// that closes with no other car's opening near it, or the same car's
// own reopening, is no displacement.
func TestOneSocketIsFoundAndLapses(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	region, _ := LookupRegion("usa")
	dir := t.TempDir()
	cfg := Config{Region: region, BaseURL: "http://127.0.0.1:9", StateDir: dir, Now: func() time.Time { return now }}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	step := func(d time.Duration) { now = now.Add(d) }
	const a, b = "1FTEW1EP000000001", "3FMTK3SU000000002"

	c.socketOpened(a)
	openedA := now
	step(time.Minute)
	if c.socketClosed(a, openedA) {
		t.Fatal("a close with no other opening near it counted as displaced")
	}
	c.socketOpened(a)
	step(time.Second)
	if c.socketClosed(a, openedA) {
		t.Fatal("the car's own reopening counted as displacing it")
	}
	for i := range displaceCount {
		if c.OneSocket() {
			t.Fatalf("found after %d displacements", i)
		}
		opened := now
		step(time.Minute)
		c.socketOpened(b)
		step(500 * time.Millisecond)
		if !c.socketClosed(a, opened) {
			t.Fatalf("displacement %d not seen", i+1)
		}
	}
	if !c.OneSocket() || c.Protocol().OneSocketSince.IsZero() {
		t.Fatal("three displacements in ten minutes: not found")
	}
	restarted, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Budget().Close() })
	if !restarted.OneSocket() {
		t.Fatal("a restarted client does not know it")
	}
	step(oneSocketRecheck)
	if c.OneSocket() || restarted.OneSocket() {
		t.Fatal("the finding did not lapse after a day")
	}
}
