package bridge

import (
	"slices"
	"strings"
	"testing"

	"github.com/fordpass2mqtt/fordpass2mqtt/bridge/config"
)

func TestParseCommand(t *testing.T) {
	good := map[string]CommandRequest{
		"lock":                               {Command: "lock"},
		" UnLock \n":                         {Command: "unlock"},
		`"start"`:                            {Command: "start"},
		`{"command":"stop","id":"x-1"}`:      {Command: "stop", ID: "x-1"},
		`{"command":"horn","transaction":7}`: {Command: "horn", ID: "7"},
	}
	for in, want := range good {
		got, err := ParseCommand([]byte(in))
		if err != nil || got.Command != want.Command || got.ID != want.ID {
			t.Errorf("ParseCommand(%q) = %+v, %v", in, got, err)
		}
	}
	// Each bad payload is refused with words that say what is wrong with it.
	for in, want := range map[string]string{
		"":                                      "empty payload",
		"{}":                                    `without "command"`,
		`["lock"]`:                              "a JSON array is not a command",
		`{"command":"lock","id":{}}`:            `"id" must be a string`,
		"\xff\xfe":                              "not UTF-8",
		"open sesame":                           `unknown command "open sesame"`,
		strings.Repeat("a", 5000):               "payload is 5000 bytes",
		`{"command":"lock","command":"unlock"}`: `"command" appears twice`,
		`{"command":5}`:                         `"command" is a number`,
		`{"command":"lock"`:                     "malformed JSON",
		`{"command":"lock","id":"` + strings.Repeat("x", 201) + `"}`: "longer than 200",
	} {
		_, err := ParseCommand([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCommand(%.40q) = %v, want an error saying %q", in, err, want)
		}
	}
}

// TestParseCommandNamesWhatIsWrong: the precise reason, never the payload
// echoed back as an unknown command.
func TestParseCommandNamesWhatIsWrong(t *testing.T) {
	for in, want := range map[string]string{
		`{"command":"lock","command":"unlock"}`:     `the key "command" appears twice`,
		`{"id":"a","command":"lock","id":"b"}`:      `the key "id" appears twice`,
		`{"command":null}`:                          `"command" is null; it must be a string`,
		`{"command":7}`:                             `"command" is a number`,
		`{"command":true}`:                          `"command" is a boolean`,
		`{"command":{"lock":1}}`:                    `"command" is an object`,
		`{"command":["lock"]}`:                      `"command" is a list`,
		`{"command":"fly"}`:                         `unknown command "fly"`,
		`{"command":"lock","nested":{"a":1,"a":2}}`: `the key "nested.a" appears twice`, // at any depth
		`{"command":"start","id":"c1","climate":{"temperature":21,"temperature":30}}`: `the key "climate.temperature" appears twice`,
		`{"command":"start","climate":{"seats":[{"x":1,"x":2}]}}`:                     `the key "climate.seats[0].x" appears twice`,
		`{"command":"lock","id":"x","transaction":"y"}`:                               "",
	} {
		req, err := ParseCommand([]byte(in))
		if strings.Contains(in, `"id":"c1"`) && req.ID != "c1" {
			t.Errorf("ParseCommand(%s): the id %q is lost; the result could not be matched", in, req.ID)
		}
		switch {
		case want == "" && err != nil:
			t.Errorf("ParseCommand(%s): %v", in, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("ParseCommand(%s) = %v, want %q", in, err, want)
		case err != nil && strings.Contains(err.Error(), in):
			t.Errorf("ParseCommand(%s) echoes the payload: %v", in, err)
		}
	}
}

// TestRejectedCommandKeepsTheCallersID: whenever the payload's id can be
// read, the rejection carries it, so a flow waiting for its id gets its
// answer; an id given twice is no id (which one was meant is unknown).
func TestRejectedCommandKeepsTheCallersID(t *testing.T) {
	for in, want := range map[string]string{
		`{"command":"lock","command":"unlock","id":"flow-7"}`: "flow-7",
		`{"id":"flow-8","command":"fly"}`:                     "flow-8",
		`{"transaction":"flow-9"}`:                            "flow-9",
		`{"id":42,"command":"lock","horn":1,"horn":2}`:        "42",
		`{"id":"a","command":"lock","id":"b"}`:                "",
	} {
		req, err := ParseCommand([]byte(in))
		if err == nil || req.ID != want {
			t.Errorf("ParseCommand(%s): id %q, error %v; want id %q and an error", in, req.ID, err, want)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"lock", `{"command":"lock","id":"1"}`, `{"transaction":"x"}`, `"horn"`, `[`, "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseCommand(data)
		if err == nil {
			if commandNamed(req.Command) == nil {
				t.Fatalf("accepted unknown command %q", req.Command)
			}
		}
		if len(req.ID) > 200 {
			t.Fatalf("id of %d bytes", len(req.ID))
		}
	})
}

// TestCommandOptions: a command's other keys are checked by its row: the
// horn takes a duration of 1, 3 or 5 s (3 unless given), and a key the
// command does not take is refused, naming it and what the command takes
// ({"command":"lock","state":"on"} would lock while the flow meant
// something else).
func TestCommandOptions(t *testing.T) {
	for in, want := range map[string]any{
		"horn":                              3,
		`{"command":"horn","duration":5}`:   5,
		`{"command":"horn","duration":1}`:   1,
		`{"command":"horn","duration":7}`:   "must be 1, 3 or 5",
		`{"command":"horn","duration":"3"}`: "must be 1, 3 or 5",
		`{"command":"horn","volume":11}`:    `horn does not take "volume"; it takes duration`,
		`{"command":"lock","duration":5}`:   `lock does not take "duration"; it takes no options`,
		`{"command":"lock","state":"on"}`:   `lock does not take "state"`,
		`{"command":"unlock","a":1,"b":2}`:  `unlock does not take "a", "b"`,
		`{"command":"unlock","id":"x"}`:     nil,
	} {
		req, err := ParseCommand([]byte(in))
		switch w := want.(type) {
		case int:
			if err != nil || req.props["duration"] != w {
				t.Errorf("ParseCommand(%s): %v, %v; want the duration %d", in, req.props, err, w)
			}
		case string:
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("ParseCommand(%s) = %v, want an error saying %q", in, err, w)
			}
		case nil:
			if err != nil || req.props != nil {
				t.Errorf("ParseCommand(%s) = %v, %v; want no properties", in, req.props, err)
			}
		}
	}
}

// TestCommandsAllowedDefaultIsTheTable: the default allow-list is every
// command of the one command table.
func TestCommandsAllowedDefaultIsTheTable(t *testing.T) {
	t.Setenv("COMMANDS_ALLOWED", config.Default("COMMANDS_ALLOWED"))
	c, err := config.Load(commandNames)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.CommandsAllowed, commandNames) {
		t.Fatalf("COMMANDS_ALLOWED's default allows %v; the command table has %v", c.CommandsAllowed, commandNames)
	}
}
