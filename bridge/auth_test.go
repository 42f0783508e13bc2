package bridge

import (
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// TestRateLimitedEndsByItself: at retry_at the state is ok again without a
// call to Ford (this bridge has no broker and no Ford to call), and a local
// budget refusal never blames Ford.
func TestRateLimitedEndsByItself(t *testing.T) {
	t.Parallel()
	region, _ := fordapi.LookupRegion("usa")
	c, err := fordapi.New(fordapi.Config{Region: region, BaseURL: "http://127.0.0.1:9", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Budget().Close() })
	b := New(config.Config{TopicPrefix: "fp", StateDir: t.TempDir()}, c, Options{})
	b.accounts[0].auth.report(&fordapi.BudgetError{Class: fordapi.ClassTelemetry, Used: 175, Limit: 175, RetryAt: time.Now().Add(300 * time.Millisecond)}, &backoff{})
	info := b.accounts[0].auth.gate.get()
	if info.State != StateRateLimited || info.RetryAt == nil {
		t.Fatalf("after a budget refusal: %+v", info)
	}
	for _, bad := range []string{"rate limited by Ford", "429"} {
		if strings.Contains(info.Reason, bad) {
			t.Fatalf("a local refusal says %q: %s", bad, info.Reason)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.accounts[0].auth.gate.get().State != StateOK {
		if time.Now().After(deadline) {
			t.Fatalf("still %+v two seconds after retry_at", b.accounts[0].auth.gate.get())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := c.Budget().Used() + c.Budget().UsedBy(fordapi.ClassToken); n != 0 {
		t.Fatalf("%d Ford calls to leave rate_limited", n)
	}
}
