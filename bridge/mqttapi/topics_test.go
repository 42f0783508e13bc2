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
	for topic, vin := range map[string]string{"fp/V1/command": "V1", "fp/a/b/command": "", "fp/V1/command/result": "",
		"other/V1/command": "", "fp//command": "", "fp/ÄÖ/command": "ÄÖ"} {
		if got := tr.CommandVIN(topic); got != vin {
			t.Errorf("CommandVIN(%q) = %q, want %q", topic, got, vin)
		}
	}
}
