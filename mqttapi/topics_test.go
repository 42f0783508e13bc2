package mqttapi

import "testing"

func TestTree(t *testing.T) {
	t.Parallel()
	tr := New("fp")
	for got, want := range map[string]string{
		tr.Availability(): "fp/bridge/availability", tr.Info(): "fp/bridge/info", tr.Doctor(): "fp/bridge/doctor",
		tr.AuthState(): "fp/auth/state", tr.AuthDetail(): "fp/auth/detail", tr.LoginURL(): "fp/auth/login_url",
		tr.CodeSet(): "fp/auth/code/set", tr.Field("V1", "lock"): "fp/V1/lock", tr.Command("V1"): "fp/V1/command",
		tr.Result("V1"): "fp/V1/command/result", tr.AllCommands(): "fp/+/command",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
	const vin = "1FTEW1EP000000001"
	for topic, want := range map[string]string{"fp/" + vin + "/command": vin, "fp/a/b/command": "", "fp/" + vin + "/command/result": "",
		"other/" + vin + "/command": "", "fp//command": "", "fp/ÄÖ/command": "", "fp/V1/command": "", "fp/auth/command": "",
		"fp/bridge/command": "", "fp/1ftew1ep000000001/command": "1ftew1ep000000001", "fp/1FTEW1EP00000000O/command": ""} {
		if got := tr.CommandVIN(topic); got != want {
			t.Errorf("CommandVIN(%q) = %q, want %q", topic, got, want)
		}
	}
	if tr.VehicleAvailability(vin) != "fp/"+vin+"/availability" || tr.VehicleDark(vin) != "fp/"+vin+"/availability/detail" {
		t.Error("a car's availability topics")
	}
}

// TestAccountTree: an account's auth topics are under P/auth/<name>/; its
// cars' topics and the bridge's are the tree's.
func TestAccountTree(t *testing.T) {
	t.Parallel()
	tr := New("fp").Account("work")
	for got, want := range map[string]string{
		tr.AuthState(): "fp/auth/work/state", tr.AuthDetail(): "fp/auth/work/detail", tr.LoginURL(): "fp/auth/work/login_url",
		tr.CodeSet(): "fp/auth/work/code/set", tr.BackendState("fordpass"): "fp/auth/work/fordpass/state",
		tr.Field("V1", "lock"): "fp/V1/lock", tr.Info(): "fp/bridge/info", tr.AllCommands(): "fp/+/command",
		New("fp").Account("").CodeSet(): "fp/auth/code/set",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}
