package fordconnect_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
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
// its pace per access token (one per car); when Ford's pace is slower, its
// 429 is returned as a rate limit and the next request waits for
// Retry-After.
func TestTelemetryIsPacedAndA429Honoured(t *testing.T) {
	t.Parallel()
	const pace = 300 * time.Millisecond
	f := newFixture(t, fordsim.Options{Vehicles: 2, FconPace: pace}, pace)
	for range 2 {
		if err := f.client.SignIn(context.Background(), f.consent(t)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for i := range 6 {
		tel, err := f.client.Telemetry(context.Background(), fordsim.VIN(1+i%2))
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if tel.Get("odometer").String() == "" {
			t.Fatalf("read %d has no odometer", i)
		}
	}
	// Each car's token: 3 telemetry reads a pace apart (its garage read
	// came before start, and may be a pace old already).
	if d := time.Since(start); d < 2*pace {
		t.Fatalf("6 reads in %s: faster than the pace", d)
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
	if _, err := f.client.SendCommand(context.Background(), fordsim.VIN(1), "lock", "", nil); !strings.Contains(err.Error(), "FordPass") {
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
		strings.Repeat("x", 5000): "at most 4096",
		"http://localhost:8080/cb?code=abcdefgh1234&state=0123456789abcdef":                      "not one of this bridge's login links",
		"http://localhost:8080/cb?code=abc&state=0123456789abcdef":                               "not one Ford issues",
		"http://localhost:8080/cb?code=" + strings.Repeat("a", 3000) + "&state=0123456789abcdef": "not one Ford issues",
		"http://localhost:8080/cb?code=%3Cscript%3E12345&state=0123456789abcdef":                 "not one Ford issues",
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

// clock is real time plus an offset a test moves forward.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// TestPacePerAppIsLearned: when Ford paces the app as a whole rather than
// each token, the client's first request that Ford refuses teaches it: the
// cars share one pace from then on, and no storm of 429s follows, whether
// Ford says when to come back in seconds, as a date, or in the body.
func TestPacePerAppIsLearned(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"seconds", "date", "body"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			const pace = 300 * time.Millisecond
			f := newFixture(t, fordsim.Options{Vehicles: 2, FconPace: pace, FconPacePerApp: true, FconRetryAfter: format}, pace)
			for range 2 {
				if err := f.client.SignIn(context.Background(), f.consent(t)); err != nil {
					t.Fatal(err) // the second consent's car is read once more after the 429
				}
			}
			refused := 0
			for i := range 6 {
				_, err := f.client.Telemetry(context.Background(), fordsim.VIN(1+i%2))
				if errors.As(err, new(*fordapi.RateLimitError)) {
					refused++
					continue
				}
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
			}
			if n := f.sim.Stats().FconRefused; n > 1 || refused > 0 {
				t.Fatalf("%d requests refused by Ford (%d telemetry reads): the client did not settle on one pace", n, refused)
			}
		})
	}
}

// TestRetryAfterFormats: a 429 says when to ask again in seconds, as an
// HTTP date, or only in its body; each is honoured.
func TestRetryAfterFormats(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		header, body string
		want         time.Duration
	}{
		{"42", "", 42 * time.Second},
		{now.Add(90 * time.Second).Format(http.TimeFormat), "", 90 * time.Second},
		{"", `{"message":"Rate limit is exceeded. Try again in 17 seconds."}`, 17 * time.Second},
		{"", `{"message":"retry in 1 second"}`, time.Second},
		{"", `{"message":"slow down"}`, time.Minute},
		{"soon", "", time.Minute},
	} {
		if got := fordapi.RetryAfter(c.header, []byte(c.body), now, time.Minute).Sub(now); got != c.want {
			t.Errorf("Retry-After %q, body %q: %s, want %s", c.header, c.body, got, c.want)
		}
	}
}

// TestJunkCodesCannotBurnTheLink: whoever reads the retained login link
// knows its state; junk codes sent with it cost Ford one exchange before
// the throttle holds the rest, a code seen before costs none, and the
// owner's own landing still completes, since a state is used up only by a
// consent that completes.
func TestJunkCodesCannotBurnTheLink(t *testing.T) {
	t.Parallel()
	var clk clock
	f := newFixture(t, fordsim.Options{Now: clk.now}, time.Millisecond)
	c, err := fordconnect.New(fordconnect.Config{BaseURL: f.url, ClientID: fordsim.FconClientID, ClientSecret: fordsim.FconClientSecret,
		StateDir: f.dir, Pace: time.Millisecond, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	landing := f.consent(t)
	u, _ := url.Parse(landing)
	state := u.Query().Get("state")
	var throttled int
	for i := range 20 {
		junk := "http://localhost:8080/fordconnect/callback?code=junkcode" + strconv.Itoa(i%3) + "&state=" + state
		err := c.SignIn(context.Background(), junk)
		switch {
		case errors.As(err, new(*fordapi.SignInThrottleError)):
			throttled++
		case !errors.Is(err, fordapi.ErrInvalidCode):
			t.Fatalf("junk code %d: %v", i, err)
		}
	}
	if n := f.sim.Stats().Calls["fcon_token"]; n != 1 || throttled == 0 {
		t.Fatalf("20 junk codes: %d exchanges, %d held by the throttle", n, throttled)
	}
	if err := c.SignIn(context.Background(), landing); !errors.As(err, new(*fordapi.SignInThrottleError)) {
		t.Fatalf("the owner's landing within the wait: %v", err)
	}
	clk.advance(6 * time.Second)
	if err := c.SignIn(context.Background(), landing); err != nil {
		t.Fatalf("the owner's landing after the junk: %v", err)
	}
	if !c.Consented(fordsim.VIN(1)) || f.sim.Stats().Calls["fcon_token"] != 2 {
		t.Fatalf("consented %v after %d exchanges", c.Consented(fordsim.VIN(1)), f.sim.Stats().Calls["fcon_token"])
	}
}

// TestRefusedConsentHealsByItself: during an outage of Ford's sign-in
// service every renewal is refused with invalid_grant though the consent
// is good. The car's consent is refused at once (the user is told), its
// refresh token is kept and tried again on the schedule, and once Ford
// recovers the car is read again with no new consent.
func TestRefusedConsentHealsByItself(t *testing.T) {
	t.Parallel()
	var clk clock
	f := newFixture(t, fordsim.Options{Now: clk.now, Vehicles: 2}, time.Millisecond)
	c, err := fordconnect.New(fordconnect.Config{BaseURL: f.url, ClientID: fordsim.FconClientID, ClientSecret: fordsim.FconClientSecret,
		StateDir: f.dir, Pace: time.Millisecond, Now: clk.now, HealSchedule: []time.Duration{10 * time.Minute, time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	for range 2 {
		if err := c.SignIn(context.Background(), f.consent(t)); err != nil {
			t.Fatal(err)
		}
	}
	f.sim.AuthOutage("fordconnect", time.Hour)
	f.sim.Expire()
	_, err = c.Telemetry(context.Background(), fordsim.VIN(1))
	if !errors.Is(err, fordapi.ErrReauthRequired) || !strings.Contains(err.Error(), "by itself") {
		t.Fatalf("a renewal refused in the outage: %v", err)
	}
	cs := c.Consents()
	if cs[0].Refused == "" || cs[0].RetryAt == nil || cs[1].Refused != "" || !c.Status().SignedIn || c.Consented(fordsim.VIN(1)) {
		t.Fatalf("consents %+v, status %+v", cs, c.Status())
	}
	if tried, _ := c.RetryRefused(context.Background()); tried {
		t.Fatal("tried again before its time")
	}
	clk.advance(11 * time.Minute) // the first try again: Ford still refuses
	if tried, healed := c.RetryRefused(context.Background()); !tried || healed {
		t.Fatalf("the first try again: tried %v healed %v", tried, healed)
	}
	if at := *c.Consents()[0].RetryAt; at.Sub(clk.now()) < 59*time.Minute {
		t.Fatalf("the next try at %s, want an hour on", at.Sub(clk.now()))
	}
	clk.advance(61 * time.Minute) // Ford recovered meanwhile
	if tried, healed := c.RetryRefused(context.Background()); !tried || !healed {
		t.Fatalf("after the outage: tried %v healed %v", tried, healed)
	}
	if tel, err := c.Telemetry(context.Background(), fordsim.VIN(1)); err != nil || tel.Get("odometer").String() == "" {
		t.Fatalf("read after healing: %v", err)
	}
	if cs := c.Consents(); cs[0].Refused != "" {
		t.Fatalf("still refused: %+v", cs[0])
	}
}
