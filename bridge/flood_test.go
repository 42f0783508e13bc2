package bridge_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// TestBasicAuthFloodIsSlowedAndSummarised: 200 wrong passwords from one
// address get five ordinary refusals, then 429 with Retry-After; the log
// has a few lines with the count, not 200; the metric counts them; the
// right password works once the wait is over.
func TestBasicAuthFloodIsSlowedAndSummarised(t *testing.T) {
	t.Parallel()
	region, _ := fordapi.LookupRegion("usa")
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: "http://127.0.0.1:9", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := config.Config{TopicPrefix: "fp", HADiscoveryPrefix: "ha", Region: region, StateDir: t.TempDir(),
		HTTPUsername: "owner", HTTPPassword: "s3cret"}
	m := bridge.NewMetrics()
	// The throttle's clock stands still unless the test moves it: a slow
	// machine cannot outlast the wait in the middle of the flood.
	base, off := time.Now(), atomic.Int64{}
	now := func() time.Time { return base.Add(time.Duration(off.Load())) }
	srv := httptest.NewServer(bridge.New(cfg, c, bridge.Options{Logger: zap.New(core), Metrics: m, FloodLogEvery: 300 * time.Millisecond, Now: now}).HTTPHandler())
	defer srv.Close()
	try := func(pass string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		req.SetBasicAuth("owner", pass)
		resp, err := bridgetest.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	codes := map[int]int{}
	var retry int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := try(fmt.Sprintf("guess-%d", i))
			mu.Lock()
			defer mu.Unlock()
			codes[resp.StatusCode]++
			if resp.StatusCode == http.StatusTooManyRequests {
				retry, _ = strconv.Atoi(resp.Header.Get("Retry-After"))
			}
		}()
		if i%20 == 19 {
			wg.Wait() // in waves, as a guessing script would
		}
	}
	wg.Wait()
	if codes[401] != 5 || codes[429] != 195 || retry < 1 {
		t.Fatalf("200 wrong passwords: %v (Retry-After %d); want 5 refusals, then 429s", codes, retry)
	}
	if resp := try("s3cret"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("during the wait even the right password waits: %d", resp.StatusCode)
	}
	off.Add(int64(time.Duration(retry)*time.Second + 100*time.Millisecond))
	if resp := try("s3cret"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the right password after the wait: %d", resp.StatusCode)
	}
	bridgetest.Eventually(t, 10*time.Second, "the summary of the flood's interval", func() bool {
		return logs.FilterMessageSnippet("more wrong HTTP basic-auth").Len() > 0
	})
	lines := logs.FilterMessageSnippet("basic-auth").All()
	if len(lines) == 0 || len(lines) > 4 {
		t.Fatalf("%d log lines for 200 wrong passwords, want a few", len(lines))
	}
	if got := logs.FilterMessageSnippet("more wrong HTTP basic-auth").All(); len(got) != 1 || got[0].ContextMap()["count"] != int64(5) {
		t.Fatalf("the summary line: %v", got)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	// Every attempt is counted once: refused when its password was
	// checked (the free five, the one that started the wait, and any of a
	// wave that raced it in), throttled when it was not looked at.
	var refused, throttled int
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, `fordpass_http_auth_failures_total{outcome="refused"} `); ok {
			refused, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(l, `fordpass_http_auth_failures_total{outcome="throttled"} `); ok {
			throttled, _ = strconv.Atoi(v)
		}
	}
	if refused+throttled != 201 || refused < 6 || throttled < 150 {
		t.Fatalf("metrics: %s", grepLines(body, "auth_failures"))
	}
	t.Logf("200 wrong passwords: %v, %d log lines", codes, len(lines))
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestCommandFloodLogsACount: 2,000 junk commands to made-up VINs each get
// their rejection, and the log gets at most 34 lines an interval however
// many rejections it holds.
func TestCommandFloodLogsACount(t *testing.T) {
	t.Parallel()
	// The interval is a minute in use; 3 s here, and the bound counts the
	// intervals the flood spanned (a loaded machine makes it last longer).
	e := newEnv(t, envOptions{signedIn: true, options: func(o *bridge.Options) { o.FloodLogEvery = 3 * time.Second }})
	e.w.WaitValue(e.topic(vin1, "lock"), "locked", 10*time.Second)
	before := e.logs.FilterMessageSnippet("rejected").Len()
	results := func() int {
		n := 0
		for i := range 400 {
			n += len(e.w.History(e.topic(fmt.Sprintf("1FTEW1EP%09d", 100000+i), "command", "result")))
		}
		return n
	}
	// In waves of 200, each answered before the next: a broker queues at
	// most so many messages for one client (mosquitto: 1,000), and the
	// test's watcher must see every answer.
	start := time.Now()
	for wave := range 10 {
		for i := wave * 200; i < (wave+1)*200; i++ {
			vin := fmt.Sprintf("1FTEW1EP%09d", 100000+i%400) // 400 made-up VINs
			e.w.Send(e.topic(vin, "command"), `{"command":"lock","id":"junk-`+strconv.Itoa(i)+`"}`)
		}
		deadline := time.Now().Add(20 * time.Second)
		for results() < (wave+1)*200 {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d rejections published", results(), (wave+1)*200)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	took := time.Since(start)
	// Every rejection is in the log, one by one or in a count, once the
	// last interval's summaries are written.
	var counted, firsts int
	accounted := func() int {
		counted = 0
		for _, l := range e.logs.FilterMessageSnippet("more commands rejected").All() {
			counted += int(l.ContextMap()["count"].(int64))
		}
		firsts = e.logs.FilterMessageSnippet("command rejected (more like it").Len() + e.logs.FilterMessageSnippet("for more reasons and topics").Len()
		return counted + firsts
	}
	bridgetest.Eventually(t, 10*time.Second, "the log accounting for 2000 rejections", func() bool { return accounted() >= 2000 })
	if accounted() != 2000 {
		t.Fatalf("the log accounts for %d of 2000 rejections (%d one by one, %d counted)", counted+firsts, firsts, counted)
	}
	// An interval logs at most 17 kinds (16 told apart, the others as
	// one) once at first and once in a count: 34 lines, however many
	// rejections. The flood spans as many intervals as the machine's speed
	// makes it last.
	lines := e.logs.FilterMessageSnippet("rejected").Len() - before
	if intervals := int(took/(3*time.Second)) + 2; lines > 34*intervals {
		t.Fatalf("2000 junk commands over %s wrote %d log lines; %d intervals allow %d", took.Round(time.Millisecond), lines, intervals, 34*intervals)
	}
	t.Logf("2000 junk commands: 2000 rejections published, %d log lines (%d counted in summaries)", lines, counted)
}
