package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// TestDoctorReportsADamagedCallCount: a corrupt calls.json is a warning in
// doctor, saying the bridge assumed this hour's share spent.
func TestDoctorReportsADamagedCallCount(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "calls.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := fordapi.NewBudget(path, 250, nil)
	if err == nil {
		t.Fatal("a damaged file loaded without a word")
	}
	c := checkBudget(b, time.Now())
	if c.Status != mqttapi.Warn || !strings.Contains(c.Finding, "calls.json) was unreadable") {
		t.Fatalf("doctor: %+v", c)
	}
}

// TestDoctorReportsFordsAnswers: REST telemetry retired, empty vehicle
// lists and a car missing from the list are each said in doctor, with
// when, and what (if anything) to do.
func TestDoctorReportsFordsAnswers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	if c := checkFordAnswers(dir, fordapi.Protocol{}, now, false); c.Status != mqttapi.Pass || !strings.Contains(c.Finding, "serves REST telemetry") {
		t.Fatalf("nothing learned yet: %+v", c)
	}
	a := bridge.Account{FetchedAt: now.Add(-48 * time.Hour), Vehicles: []fordapi.Vehicle{{VIN: "1FTEW1EP000000001"}, {VIN: "3FMTK3SU000000002"}},
		MissingSince: map[string]time.Time{"3FMTK3SU000000002": now.Add(-48 * time.Hour)}, EmptyAt: now.Add(-time.Hour), EmptyAnswers: 3}
	if err := a.Write(dir); err != nil {
		t.Fatal(err)
	}
	c := checkFordAnswers(dir, fordapi.Protocol{RESTTelemetryGone: now.Add(-2 * time.Hour)}, now, false)
	for _, want := range []string{"REST telemetry with 404 (2.0 h ago)", "no vehicles 3 time(s)", "2 car(s) known are kept",
		"3FMTK3SU000000002 is missing from Ford's vehicle list for 2 days", "removed in 5 days", "FORD_VINS"} {
		if !strings.Contains(c.Finding+c.Fix, want) {
			t.Errorf("doctor does not say %q: %+v", want, c)
		}
	}
	if c.Status != mqttapi.Warn {
		t.Fatalf("status %s", c.Status)
	}
}

// TestDoctorSaysOneSocketPerToken: while the bridge streams one car at a
// time because Ford closes a socket when another opens on the same
// sign-in, doctor says so and since when; a day after the finding it no
// longer does (the bridge checks again then).
func TestDoctorSaysOneSocketPerToken(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	p := fordapi.Protocol{OneSocketSince: now.Add(-3 * time.Hour)}
	if c := checkFordAnswers(t.TempDir(), p, now, false); !strings.Contains(c.Finding, "one car streams") || !strings.Contains(c.Finding, "3.0 h ago") ||
		!strings.Contains(c.Fix, "FORD_ACCOUNTS") {
		t.Fatalf("%+v", c)
	}
	// With accounts already, nothing more to advise.
	if c := checkFordAnswers(t.TempDir(), p, now, true); strings.Contains(c.Fix, "FORD_ACCOUNTS") {
		t.Fatalf("%+v", c)
	}
	if c := checkFordAnswers(t.TempDir(), p, now.Add(22*time.Hour), false); strings.Contains(c.Finding, "one car streams") {
		t.Fatalf("a finding over a day old: %+v", c)
	}
}

// TestDoctorChecksEachAccount: with FORD_ACCOUNTS each account's token is
// checked in its own folder and named; an account never signed in says
// where its code goes.
func TestDoctorChecksEachAccount(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	region, _ := fordapi.LookupRegion("usa")
	cfg := config.Config{TopicPrefix: "fp", StateDir: dir, Region: region, DailyBudget: 250,
		Accounts: []config.Account{{Name: "home", Region: region}, {Name: "work", Region: region}}}
	if err := fordapi.PrepareStateDir(filepath.Join(dir, "home")); err != nil {
		t.Fatal(err)
	}
	now := time.Now
	home := checkAccount(t.Context(), cfg, cfg.Accounts[0], Options{Now: now})
	work := checkAccount(t.Context(), cfg, cfg.Accounts[1], Options{Now: now})
	if len(home) == 0 || home[0].Name != "token (home)" || home[0].Status != mqttapi.Fail || !strings.Contains(home[0].Fix, "--account home") {
		t.Fatalf("home: %+v", home)
	}
	if len(work) != 1 || work[0].Name != "token (work)" || !strings.Contains(work[0].Finding, "never signed in") ||
		!strings.Contains(work[0].Fix, "fp/auth/work/code/set") {
		t.Fatalf("work: %+v", work)
	}
	if _, err := os.Stat(filepath.Join(dir, "work")); err == nil {
		t.Fatal("doctor made the account's folder")
	}
}
