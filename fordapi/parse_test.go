package fordapi_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

func testToken(expiry time.Time) *fordapi.Token {
	return &fordapi.Token{Token: &oauth2.Token{AccessToken: "access-secret", RefreshToken: "refresh-secret", Expiry: expiry},
		RefreshExpiry: time.Now().Add(24 * time.Hour)}
}

func TestParseRedirect(t *testing.T) {
	t.Parallel()
	const code = "eyJraWQiOiJjcGltY29yZV8wOTI1MjAxNSIsInZlciI6IjEuMCJ9.abc-DEF_123"
	good := []string{
		"fordapp://userauthorized?code=" + code,
		"fordapp://userauthorized/?code=" + code,
		"  fordapp://userauthorized/?code=" + code + "\n",
		`"fordapp://userauthorized/?code=` + code + `"`,
		"fordapp%3A%2F%2Fuserauthorized%2F%3Fcode%3D" + code,
		"lincolnapp://userauthorized?code=" + code + "&state=x",
		code,
		"code=" + code,
	}
	for _, in := range good {
		got, err := fordapi.ParseRedirect(in)
		if err != nil || got != code {
			t.Errorf("ParseRedirect(%q) = %q, %v", in, got, err)
		}
	}
	bad := []string{"", "   ", "fordapp://userauthorized/", "fordapp://userauthorized?error=access_denied&error_description=cancelled",
		"short", "has spaces in the middle of it", string(make([]byte, 20000))}
	for _, in := range bad {
		if _, err := fordapi.ParseRedirect(in); !errors.Is(err, fordapi.ErrInvalidCode) {
			t.Errorf("ParseRedirect(%q) error = %v, want ErrInvalidCode", in, err)
		}
	}
}

func FuzzParseRedirect(f *testing.F) {
	for _, s := range []string{"fordapp://userauthorized/?code=abcdefghij", "abcdefghijkl", "%3A%2F%2F", "fordapp://x?code=%zz", "code=%41%42%43%44%45%46%47%48"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, err := fordapi.ParseRedirect(s)
		if err == nil && (len(code) < 8 || len(code) > 16<<10) {
			t.Fatalf("accepted code of length %d", len(code))
		}
		if err != nil && !errors.Is(err, fordapi.ErrInvalidCode) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

func readSample(tb testing.TB) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "telemetry_ev.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func TestNormalizeSample(t *testing.T) {
	t.Parallel()
	_, tel, err := fordapi.ParseTelemetry(readSample(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"odometer": "12345.6", "fuel_level": "63.2", "battery_soc": "78.5", "ev_range": "312", "battery_12v_voltage": "12.6",
		"lock": "locked", "door_driver": "closed", "door_passenger": "open", "door_hood": "closed", "window_driver": "open",
		"window_passenger": "closed", "ignition": "off", "remote_start": "on", "alarm": "armed", "charge_plug": "connected",
		"tire_pressure_front_left": "250", "speed": "0", "gear": "park",
	}
	for k, v := range want {
		if got := tel.Get(k).String(); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if tel.Location == nil || tel.Location.Latitude != 52.1 {
		t.Errorf("location = %+v", tel.Location)
	}
	if cs, _ := tel.Command("lock"); cs.ID != "cmd-1" || cs.Outcome() != "success" {
		t.Errorf("lock command = %+v", cs)
	}
	if cs, _ := tel.Command("remoteStart"); cs.ID != "cmd-2" || cs.Outcome() != "" {
		t.Errorf("nested remoteStart command = %+v", cs)
	}
	if len(tel.Skipped) != 1 || tel.Skipped[0] != "ambientTemp" {
		t.Errorf("skipped = %v, want [ambientTemp] (a string where a number belongs)", tel.Skipped)
	}
}

func TestLockFromDoorCount(t *testing.T) {
	t.Parallel()
	doc := fordapi.Document{"metrics": map[string]any{"doorLockStatus": []any{
		map[string]any{"vehicleDoor": "UNSPECIFIED_FRONT", "vehicleSide": "DRIVER", "value": "LOCKED"},
		map[string]any{"vehicleDoor": "TAILGATE", "value": "UNLOCKED", "tags": map[string]any{"DOOR_LATCH_TYPE": "MECHANICAL"}},
		map[string]any{"vehicleDoor": "REAR_LEFT", "value": "UNKNOWN"},
	}}}
	if got := fordapi.NewRecord(doc).Telemetry().Get("lock").String(); got != "locked" {
		t.Fatalf("lock = %q: mechanical and unknown doors must not count", got)
	}
}

func TestMergeDelta(t *testing.T) {
	t.Parallel()
	rec := fordapi.NewRecord(fordapi.Document{"metrics": map[string]any{"odometer": map[string]any{"value": 1.0}, "fuelLevel": map[string]any{"value": 50.0},
		"batteryVoltage": map[string]any{"value": 12.4}, "customMetrics": map[string]any{"a": 1.0, "b": 2.0}}})
	rec.Apply(fordapi.Document{"metrics": map[string]any{"odometer": map[string]any{"value": 2.0}, "customMetrics": map[string]any{"b": 3.0}, "fuelLevel": nil},
		"updateTime": "2026-01-01T00:00:00Z"})
	tel := rec.Telemetry()
	if tel.Get("odometer").Float() != 2 {
		t.Error("odometer not merged")
	}
	if _, ok := tel.Field("fuel_level"); ok {
		t.Error("null did not delete")
	}
	if tel.Get("battery_12v_voltage").Float() != 12.4 {
		t.Error("a metric the delta did not name was lost")
	}
	if !tel.UpdatedAt.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("updated at %v", tel.UpdatedAt)
	}
}

func FuzzParseTelemetry(f *testing.F) {
	f.Add(readSample(f))
	f.Add([]byte(`{"metrics":{"doorLockStatus":"x","tirePressure":[1,{"value":"a"}],"position":{"value":{"location":{"lat":1e999}}}}}`))
	f.Add([]byte(`{"metrics":null,"states":{"commands":{"x":{"commandId":1}}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, tel, err := fordapi.ParseTelemetry(data)
		if err != nil {
			return
		}
		var doc fordapi.Document
		_ = json.Unmarshal(data, &doc)
		for i, f := range tel.Fields {
			if _, err := json.Marshal(f.Value); err != nil {
				t.Fatalf("field %s does not marshal: %v", f.Name, err)
			}
			if i > 0 && tel.Fields[i-1].Name >= f.Name {
				t.Fatalf("fields out of order or twice: %s, then %s", tel.Fields[i-1].Name, f.Name)
			}
		}
		rec.Apply(doc) // merging a document into its own record must be harmless
		rec.Telemetry()
	})
}

func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{`{"_data":{"metrics":{"odometer":{"value":1}}}}`, `{"_httpStatus":202}`, `{"_error":{"code":401,"message":"x"}}`, ``, `{}`, `{"_data":5}`, `garbage`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := fordapi.ParseFrame(data)
		if err == nil && fr.Data != nil {
			fordapi.NewRecord(nil).Apply(fr.Data)
			fordapi.NewRecord(fr.Data).Telemetry()
		}
	})
}

func BenchmarkParseTelemetry(b *testing.B) {
	data := readSample(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := fordapi.ParseTelemetry(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNormalize builds a record from a whole decoded document and
// hands out its telemetry (once per REST record).
func BenchmarkNormalize(b *testing.B) {
	var doc fordapi.Document
	if err := json.Unmarshal(readSample(b), &doc); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		fordapi.NewRecord(doc).Telemetry()
	}
}

// TestTokenSaveSurvivesKill runs token saves in a child process, kills it
// with SIGKILL at varied instants, and checks that the token file always
// loads.
func TestTokenSaveSurvivesKill(t *testing.T) {
	t.Parallel()
	if dir := os.Getenv("FORDAPI_SAVE_LOOP_DIR"); dir != "" {
		store := fordapi.NewTokenStore(dir, "usa")
		for i := 0; ; i++ {
			tok := testToken(time.Now().Add(time.Hour))
			tok.AccessToken = "access-" + strconv.Itoa(i) + string(make([]byte, 4096))
			if err := store.Save(tok, time.Now()); err != nil {
				os.Exit(3)
			}
		}
	}
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	store := fordapi.NewTokenStore(dir, "usa")
	if err := store.Save(testToken(time.Now().Add(time.Hour)), time.Now()); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTokenSaveSurvivesKill$")
		cmd.Env = append(os.Environ(), "FORDAPI_SAVE_LOOP_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+i*7) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if _, err := store.Load(); err != nil {
			t.Fatalf("run %d: token unloadable after SIGKILL: %v", i, err)
		}
	}
}

func TestParseFrame(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ frame, err string }{
		{`{"_data":5}`, "a _data frame that is not an object (a JSON number)"},
		{`{"_data":[1]}`, "a _data frame that is not an object (a JSON array)"},
		{`{"_data":{"metrics":`, "a frame that is not a JSON object (20 bytes)"},
		{`[]`, "a frame that is not a JSON object (2 bytes)"},
		{`{"_data":{"metrics":{"odometer":{"value":7}}},"_httpStatus":200}`, ""},
		{`{"_error":{"code":401,"message":"token expired"}}`, ""},
		{`  `, ""},
	} {
		fr, err := fordapi.ParseFrame([]byte(c.frame))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.frame, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one that says %q", c.frame, err, c.err)
		}
		if c.err == "" && strings.Contains(c.frame, "odometer") && (fr.HTTPStatus != 200 || fordapi.NewRecord(fr.Data).Telemetry().Get("odometer").Float() != 7) {
			t.Errorf("%s decoded as %+v", c.frame, fr)
		}
		if strings.Contains(c.frame, "_error") && (fr.Error == nil || fr.Error.Code != 401 || fr.Error.Message != "token expired") {
			t.Errorf("%s: error frame decoded as %+v", c.frame, fr.Error)
		}
	}
}
