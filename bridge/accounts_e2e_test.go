package bridge_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/bridgetest"
	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi/fordsim"
)

// TestTheSignInPageListsTheAccounts: with FORD_ACCOUNTS the page lists
// every account with its state, shows the one that needs a sign-in, and
// its form signs in the account it names, never another.
func TestTheSignInPageListsTheAccounts(t *testing.T) {
	t.Parallel()
	sim, simURL := bridgetest.Ford(t, fordsim.Options{Accounts: 2})
	region, _ := fordapi.LookupRegion("usa")
	dir := t.TempDir()
	prefix := "fp" + bridgetest.Suffix()
	cfg := config.Config{MQTTURL: bridgetest.Broker(t), MQTTClientID: prefix, TopicPrefix: prefix, StateDir: dir, PollInterval: time.Minute, Region: region, FordBaseURL: simURL,
		DailyBudget: 1000, Accounts: []config.Account{{Name: "home", Region: region}, {Name: "work", Region: region}}}
	var fords []fordapi.Backend
	for _, a := range cfg.Accounts {
		if err := fordapi.PrepareStateDir(filepath.Join(dir, a.Name)); err != nil {
			t.Fatal(err)
		}
		fords = append(fords, bridgetest.Client(t, fordapi.Config{BaseURL: simURL, StateDir: filepath.Join(dir, a.Name), DailyBudget: 1000}))
	}
	if err := fords[0].SignIn(t.Context(), signInTo(t, sim, 1, fords[0])); err != nil {
		t.Fatal(err)
	}
	b := bridge.NewAccounts(cfg, fords, bridge.Options{})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	srv := httptestServer(t, b.HTTPHandler())
	bridgetest.Eventually(t, 10*time.Second, "home signed in, work asking for a sign-in", func() bool {
		st := b.AuthInfo()
		return st.Accounts["home"] == bridge.StateOK && st.Accounts["work"] == bridge.StateReauthRequired
	})

	get := func(path string) string {
		t.Helper()
		resp, err := bridgetest.HTTP.Get(srv + path)
		if err != nil {
			t.Fatal(err)
		}
		return html.UnescapeString(readAll(t, resp))
	}
	page := get("/")
	if !strings.Contains(page, "Account work") || !strings.Contains(page, `?account=home">home</a>`) || !strings.Contains(page, `name="account" value="work"`) {
		t.Fatalf("the page does not show work, the account that needs a sign-in, with home beside it:\n%s", page)
	}
	if p := get("/?account=home"); !strings.Contains(p, "Account home") || !strings.Contains(p, "Connected") {
		t.Fatalf("home's page:\n%s", p)
	}
	token := between(page, `name="form_token" value="`, `"`)
	post := func(account, code string) *http.Response {
		t.Helper()
		resp, err := bridgetest.HTTP.PostForm(srv+"/auth/code", url.Values{"redirect_url": {code}, "form_token": {token}, "account": {account}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := post("nobody", "x"); readAll(t, resp) == "" || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a form naming no account: %d", resp.StatusCode)
	}
	login := between(page, `class="button" href="`, `"`)
	sim.SignInTo(2)
	resp := post("work", bridgetest.FollowLogin(t, html.UnescapeString(login)))
	if readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("work's sign-in: %d", resp.StatusCode)
	}
	if st := b.AuthInfo(); st.State != bridge.StateOK {
		t.Fatalf("after both sign-ins the bridge says %+v", st)
	}
	if !fords[1].Status().SignedIn || !fords[0].Status().SignedIn {
		t.Fatal("the form signed in the wrong account")
	}
}

// signInTo is a redirect address of a sign-in to the simulator's account n.
func signInTo(t *testing.T, sim *fordsim.Sim, n int, c fordapi.Backend) string {
	t.Helper()
	u, err := c.LoginURL()
	if err != nil {
		t.Fatal(err)
	}
	sim.SignInTo(n)
	return bridgetest.FollowLogin(t, u)
}
