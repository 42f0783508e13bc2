package fordsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestControlAPIRefusesBadInput: every control request with a bad
// parameter is refused with a 4xx that says which, and changes nothing.
func TestControlAPIRefusesBadInput(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	cases := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/_sim/outage?status=200&for=1s", "", 400, "status must be"},
		{"POST", "/_sim/outage?status=abc", "", 400, "status must be"},
		{"POST", "/_sim/outage?for=-5s", "", 400, "for must be a duration"},
		{"POST", "/_sim/ratelimit?for=soon", "", 400, "for must be a duration"},
		{"POST", "/_sim/slow?delay=x", "", 400, "delay must be a duration"},
		{"POST", "/_sim/stream?mode=explode", "", 400, "mode must be"},
		{"POST", "/_sim/authoutage?for=60s", "", 400, "backend must be fordpass or fordconnect"},
		{"POST", "/_sim/authoutage?backend=ford&for=60s", "", 400, "backend must be fordpass or fordconnect"},
		{"POST", "/_sim/authoutage?backend=fordpass&for=soon", "", 400, "for must be a duration"},
		{"POST", "/_sim/authoutage?backend=fordpass&until=1", "", 400, `unknown parameter "until"`},
		{"POST", "/_sim/fail?command=selfDestruct", "", 400, "command must be"},
		{"PATCH", "/_sim/vehicles/" + VIN(1), "not json", 400, "merge patch"},
		{"PATCH", "/_sim/vehicles/" + VIN(1), "[1,2]", 400, "merge patch"},
		{"PATCH", "/_sim/vehicles/NOSUCHVIN", `{"metrics":{}}`, 404, "no simulated vehicle"},
		{"PATCH", "/_sim/vehicles/" + VIN(1), strings.Repeat(" ", 2<<20) + "{}", 400, "merge patch"},
		{"POST", "/_sim/protocol?anything=1", "", 400, `unknown parameter "anything"`},
		{"POST", "/_sim/protocol?rest_telemetry=maybe", "", 400, "rest_telemetry must be"},
		{"POST", "/_sim/protocol?vehicle_list=none", "", 400, "vehicle_list must be"},
		{"POST", "/_sim/protocol?stream_record=later", "", 400, "stream_record must be"},
		{"POST", "/_sim/protocol?sockets_per_token=2", "", 400, "sockets_per_token must be"},
		{"POST", "/_sim/account?hide=NOSUCHVIN", "", 400, "no simulated vehicle"},
		{"POST", "/_sim/revoke?backend=tesla", "", 400, "backend must be fordpass or fordconnect"},
		{"POST", "/_sim/revoke?vin=1", "", 400, `unknown parameter "vin"`},
		{"POST", "/_sim/revoke?account=2", "", 400, "account must be a number from 1 to 1"},
		{"POST", "/_sim/expire?account=x", "", 400, "account must be a number"},
		{"POST", "/_sim/signin", "", 400, "signin takes account=N"},
		{"POST", "/_sim/signin?account=0", "", 400, "account must be a number"},
		{"POST", "/_sim/outage?status=503&duration=5s", "", 400, `unknown parameter "duration"`},
		{"GET", "/_sim/stats?verbose=1", "", 400, "takes none"},
		{"PATCH", "/_sim/vehicles/" + VIN(1) + "?when=refresh", `{"metrics":{}}`, 400, `unknown parameter "when"`},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := new(strings.Builder)
		_, _ = io.Copy(buf, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(buf.String(), c.want) {
			t.Errorf("%s %s: %d %q, want %d and %q", c.method, c.path[:min(len(c.path), 40)], resp.StatusCode, buf.String(), c.status, c.want)
		}
	}
	st := s.Stats()
	if st.CallsTotal != 0 || len(st.Commands) != 0 {
		t.Fatalf("refused control requests counted as Ford calls: %+v", st)
	}
	// Nothing was broken on purpose: the lists and REST telemetry are
	// served, and a Ford endpoint answers normally.
	s.mu.Lock()
	broken := s.restGone || s.listEmpty || s.deltasOnly || s.streamMode != "" || !s.outageTo.IsZero()
	s.mu.Unlock()
	if broken {
		t.Fatal("a refused control request changed the simulator")
	}
	resp, _ := http.Post(srv.URL+"/api/token/v2/cat-with-refresh-token", "application/json", strings.NewReader(`{"refresh_token":"x"}`))
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest { // missing Application-Id, not an outage or a 429
		t.Fatalf("after refused controls the simulator answers %d", resp.StatusCode)
	}
}

// TestAccountsKeepTheirCars: a sign-in to account 2 lists account 2's cars
// only, cannot read account 1's, and revoking account 2 leaves account 1
// signed in.
func TestAccountsKeepTheirCars(t *testing.T) {
	t.Parallel()
	s := New(Options{Accounts: 2, Vehicles: 2})
	signIn := func(account int) (cat, refresh, auto string) {
		s.SignInTo(account)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.signIns++
		who := signIn{account: max(s.nextAccount, 1), n: s.signIns}
		s.nextAccount = 0
		pair := s.issueCAT(who)
		cat, refresh = pair["access_token"].(string), pair["refresh_token"].(string)
		auto = token("simauto-")
		s.auto[auto], s.owner[auto] = s.now().Add(time.Hour), who
		return cat, refresh, auto
	}
	_, refresh1, _ := signIn(1)
	cat2, _, auto2 := signIn(2)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/fpcpl-user-garage-service/v1/user/garage", nil)
	req.Header.Set("auth-token", cat2)
	req.Header.Set("Application-Id", "667D773E-1BDC-4139-8AD0-2B16474E8DC7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), VIN(3)) || !strings.Contains(string(body), VIN(4)) || strings.Contains(string(body), VIN(1)) {
		t.Fatalf("account 2's garage: %s", body)
	}
	for vin, want := range map[string]int{VIN(1): http.StatusForbidden, VIN(3): http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/telemetry/sources/fordpass/vehicles/"+vin, nil)
		req.Header.Set("Authorization", "Bearer "+auto2)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("account 2 reading %s: %d, want %d", vin, resp.StatusCode, want)
		}
	}
	s.RevokeAccount(2)
	s.mu.Lock()
	_, alive := s.refresh[refresh1]
	left := len(s.refresh)
	s.mu.Unlock()
	if !alive || left != 1 {
		t.Fatalf("revoking account 2: account 1's refresh token alive %v, %d left", alive, left)
	}
}

// TestEVDrivesOnlyUnplugged: the simulated EV refuses to drive plugged in,
// and the fuel truck has no plug.
func TestEVDrivesOnlyUnplugged(t *testing.T) {
	t.Parallel()
	s := New(Options{Vehicles: 2})
	if err := s.SetPlug(VIN(2), true); err != nil {
		t.Fatal(err)
	}
	if err := s.Drive(VIN(2), 5); err == nil || !strings.Contains(err.Error(), "unplug it") {
		t.Fatalf("driving plugged in: %v", err)
	}
	if err := s.SetPlug(VIN(1), true); err == nil || !strings.Contains(err.Error(), "not an electric car") {
		t.Fatalf("plugging in the truck: %v", err)
	}
}
