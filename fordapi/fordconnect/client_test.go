package fordconnect_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordconnect"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

type fixture struct {
	sim    *fordsim.Sim
	url    string
	dir    string
	client *fordconnect.Client
}

func newFixture(t *testing.T, o fordsim.Options, pace time.Duration) *fixture {
	t.Helper()
	sim := fordsim.New(o)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	f := &fixture{sim: sim, url: srv.URL, dir: t.TempDir()}
	f.client = f.newClient(t, pace)
	return f
}

func (f *fixture) newClient(t *testing.T, pace time.Duration) *fordconnect.Client {
	t.Helper()
	c, err := fordconnect.New(fordconnect.Config{BaseURL: f.url, ClientID: fordsim.FconClientID, ClientSecret: fordsim.FconClientSecret,
		StateDir: f.dir, Pace: pace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	return c
}

// consent opens a login link and consents, as the owner's browser does;
// it returns the address the browser landed on.
func (f *fixture) consent(t *testing.T) string {
	t.Helper()
	link, err := f.client.LoginURL()
	if err != nil {
		t.Fatal(err)
	}
	landing, err := fordsim.FollowLogin(context.Background(), link)
	if err != nil {
		t.Fatal(err)
	}
	return landing
}

// TestConsentLinkAndSignIn: the link carries the app's client id, the
// registered redirect and a state of 16 characters; the landing address
// signs in and the consented car is listed; the token file is 0600 and
// holds no code; a landing address from a link this client did not make,
// or used twice, is refused.
func TestConsentLinkAndSignIn(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{Vehicles: 2}, 10*time.Millisecond)
	link, err := f.client.LoginURL()
	if err != nil {
		t.Fatal(err)
	}
	// Asked again (every page view, every state published), the link is
	// the same and nothing is written.
	fi1, _ := os.Stat(filepath.Join(f.dir, "fordconnect.json"))
	again, _ := f.client.LoginURL()
	fi2, _ := os.Stat(filepath.Join(f.dir, "fordconnect.json"))
	if again != link || !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Fatalf("a second link %s (first %s), file rewritten %v", again, link, !fi1.ModTime().Equal(fi2.ModTime()))
	}
	u, _ := url.Parse(link)
	q := u.Query()
	if u.Path != fordconnect.PathInit || q.Get("client_id") != fordsim.FconClientID || q.Get("redirect_uri") != fordconnect.DefaultRedirect ||
		len(q.Get("state")) != 16 || q.Get("response_type") != "code" {
		t.Fatalf("login link %s", link)
	}
	landing, err := fordsim.FollowLogin(context.Background(), link)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(landing, fordconnect.DefaultRedirect+"?code=") {
		t.Fatalf("landed on %s", landing)
	}
	if err := f.client.SignIn(context.Background(), landing); err != nil {
		t.Fatal(err)
	}
	if err := f.client.SignIn(context.Background(), landing); !errors.Is(err, fordapi.ErrInvalidCode) {
		t.Fatalf("the same address again: %v", err)
	}
	vs, _ := f.client.Vehicles(context.Background())
	if len(vs) != 1 || vs[0].VIN != fordsim.VIN(1) || vs[0].Model != "F-150" {
		t.Fatalf("cars %+v", vs)
	}
	// A second consent is a second car.
	if err := f.client.SignIn(context.Background(), f.consent(t)); err != nil {
		t.Fatal(err)
	}
	if vs, _ := f.client.Vehicles(context.Background()); len(vs) != 2 || !vs[1].EV {
		t.Fatalf("cars after a second consent %+v", vs)
	}
	fi, err := os.Stat(filepath.Join(f.dir, "fordconnect.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	data, _ := os.ReadFile(filepath.Join(f.dir, "fordconnect.json"))
	if strings.Contains(string(data), "fconcode-") {
		t.Fatal("the token file keeps a code")
	}
	forged := strings.Replace(f.consent(t), "state=", "state=0", 1)
	if err := f.client.SignIn(context.Background(), forged); !errors.Is(err, fordapi.ErrInvalidCode) || !strings.Contains(err.Error(), "state") {
		t.Fatalf("a forged state: %v", err)
	}
	// Another client on the same directory (a restart) has the cars.
	if vs, _ := f.newClient(t, time.Millisecond).Vehicles(context.Background()); len(vs) != 2 {
		t.Fatalf("after a restart: %+v", vs)
	}
}

// TestTelemetryIsPacedAndA429Honoured: the client never asks faster than
// its pace, over every car; when Ford's pace is slower, its 429 is
// returned as a rate limit and the next request waits for Retry-After.
func TestTelemetryIsPacedAndA429Honoured(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{Vehicles: 2, FconPace: 300 * time.Millisecond}, 300*time.Millisecond)
	for range 2 {
		if err := f.client.SignIn(context.Background(), f.consent(t)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for i := range 4 {
		tel, err := f.client.Telemetry(context.Background(), fordsim.VIN(1+i%2))
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if tel.Get("odometer").String() == "" {
			t.Fatalf("read %d has no odometer", i)
		}
	}
	// 2 garage reads and 4 telemetry reads, 300 ms apart.
	if d := time.Since(start); d < 3*300*time.Millisecond {
		t.Fatalf("4 reads in %s: faster than the pace", d)
	}
	if n := f.sim.Stats().FconRefused; n != 0 {
		t.Fatalf("%d requests refused for the pace", n)
	}

	slow := newFixture(t, fordsim.Options{FconPace: 2 * time.Second}, 10*time.Millisecond)
	if err := slow.client.SignIn(context.Background(), slow.consent(t)); err != nil {
		t.Fatal(err)
	}
	// The garage read was the token's first request: the next is refused.
	_, err := slow.client.Telemetry(context.Background(), fordsim.VIN(1))
	var rl *fordapi.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("too soon: %v", err)
	}
	before := time.Now()
	if _, err := slow.client.Telemetry(context.Background(), fordsim.VIN(1)); err != nil {
		t.Fatal(err)
	}
	if time.Since(before) < time.Second || slow.sim.Stats().FconRefused != 1 {
		t.Fatalf("the next read came %s later with %d refusals: Retry-After not honoured", time.Since(before), slow.sim.Stats().FconRefused)
	}
}

// TestWithdrawnConsentIsReauth: a refresh token Ford no longer takes is
// reauth_required, with words that say to consent again; commands are
// refused naming FordPass.
func TestWithdrawnConsentIsReauth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{AccessTTL: time.Second}, time.Millisecond)
	if err := f.client.SignIn(context.Background(), f.consent(t)); err != nil {
		t.Fatal(err)
	}
	f.sim.RevokeFordConnect()
	time.Sleep(1100 * time.Millisecond) // the access token expires
	_, err := f.client.Telemetry(context.Background(), fordsim.VIN(1))
	if !errors.Is(err, fordapi.ErrReauthRequired) || !strings.Contains(err.Error(), "consent again") {
		t.Fatalf("after the consent was withdrawn: %v", err)
	}
	if st := f.client.Status(); st.SignedIn {
		t.Fatalf("status %+v", st)
	}
	if _, err := f.client.SendVersionedCommand(context.Background(), fordsim.VIN(1), "lock", "", nil); !strings.Contains(err.Error(), "FordPass") {
		t.Fatalf("a command: %v", err)
	}
}

// TestBadLandingAddressesAndADamagedFile: what is pasted instead of the
// landing address is refused with words that say what to paste, without a
// call; a damaged token file is no car (a new consent), never a crash.
func TestBadLandingAddressesAndADamagedFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fordsim.Options{}, time.Millisecond)
	for in, want := range map[string]string{
		"hello": "no code and state",
		"http://localhost:8080/fordconnect/callback?code=abc":                         "no code and state",
		"http://localhost:8080/cb?error=access_denied&error_description=user+said+no": "access_denied",
		strings.Repeat("x", 5000):                                  "at most 4096",
		"http://localhost:8080/cb?code=abc&state=0123456789abcdef": "not one of this bridge's login links",
	} {
		err := f.client.SignIn(context.Background(), in)
		if !errors.Is(err, fordapi.ErrInvalidCode) || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40q: %v, want it to say %q", in, err, want)
		}
	}
	if n := f.sim.Stats().CallsTotal; n != 0 {
		t.Fatalf("%d Ford calls for bad addresses", n)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "fordconnect.json"), []byte(`{"cars":[{"vin":`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := f.newClient(t, time.Millisecond)
	if st := c.Status(); st.SignedIn || !strings.Contains(st.Reason, "consent") {
		t.Fatalf("a damaged file: %+v", st)
	}
	f.client = c
	if err := c.SignIn(context.Background(), f.consent(t)); err != nil {
		t.Fatalf("a consent after a damaged file: %v", err)
	}
}
