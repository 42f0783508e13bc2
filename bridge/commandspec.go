package bridge

import (
	"github.com/fordpass2mqtt/fordpass2mqtt/discovery"
	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
)

// commandSpec is everything the bridge knows of one command, in one row:
// parsing, COMMANDS_ALLOWED, the queue, running it, its result and its
// Home Assistant entity all read the row, so a new command is a new row.
type commandSpec struct {
	name  string         // on P/VIN/command
	ford  string         // Ford's command type
	props map[string]any // the properties sent with it
	// noOutcome: Ford reports no outcome (the horn): success once sent.
	noOutcome bool
	// throttled: it wakes the car's modem and drains its 12 V battery, so
	// a car takes one per Options.RefreshEvery.
	throttled bool
	// showing is what the lock shows while it runs ("locking"); a command
	// with one shows "jammed" when it does not succeed.
	showing string
	// effect is what a success shows at once, before the car reports it.
	effect func(*fordapi.Telemetry) *fordapi.Telemetry
	// opens: it opens the car or starts it (doctor warns when anyone on an
	// open broker may send it).
	opens bool
	// can says whether a car can run it, from what Ford lists of the car.
	can func(fordapi.Capabilities) bool
	// button is the Home Assistant button that sends it (key "" for none:
	// the lock entity sends lock and unlock).
	button discovery.Button
}

var commandSpecs = []commandSpec{
	{name: "lock", ford: fordapi.CmdLock, showing: "locking", effect: setWord("lock", "locked"),
		can: func(c fordapi.Capabilities) bool { return c.RemoteLock }},
	{name: "unlock", ford: fordapi.CmdUnlock, showing: "unlocking", effect: setWord("lock", "unlocked"), opens: true,
		can: func(c fordapi.Capabilities) bool { return c.RemoteLock }},
	{name: "start", ford: fordapi.CmdRemoteStart, effect: setWord("remote_start", "on"), opens: true,
		can:    func(c fordapi.Capabilities) bool { return c.RemoteStart },
		button: discovery.Button{Key: "remote_start_button", Name: "Remote start", Icon: "mdi:car-key"}},
	{name: "stop", ford: fordapi.CmdCancelRemoteStart, effect: setWord("remote_start", "off"),
		can:    func(c fordapi.Capabilities) bool { return c.RemoteStart },
		button: discovery.Button{Key: "remote_stop_button", Name: "Stop remote start", Icon: "mdi:car-off"}},
	{name: "refresh", ford: fordapi.CmdStatusRefresh, throttled: true,
		can:    func(fordapi.Capabilities) bool { return true },
		button: discovery.Button{Key: "refresh_button", Name: "Refresh from car", Icon: "mdi:refresh"}},
	{name: "horn", ford: fordapi.CmdPanicCue, props: map[string]any{"duration": 3}, noOutcome: true,
		can:    func(c fordapi.Capabilities) bool { return c.PanicAlarm },
		button: discovery.Button{Key: "horn_button", Name: "Horn and lights", Icon: "mdi:bullhorn", DeviceClass: "identify"}},
}

// setWord is an effect that shows a field's new word.
func setWord(field, word string) func(*fordapi.Telemetry) *fordapi.Telemetry {
	return func(t *fordapi.Telemetry) *fordapi.Telemetry { return t.With(field, fordapi.Word(word)) }
}

// specOf is the row of a command name (nil for an unknown one).
func specOf(name string) *commandSpec {
	for i := range commandSpecs {
		if commandSpecs[i].name == name {
			return &commandSpecs[i]
		}
	}
	return nil
}

// commandNames lists the MQTT names, in the table's order.
var commandNames = func() []string {
	out := make([]string, len(commandSpecs))
	for i, c := range commandSpecs {
		out[i] = c.name
	}
	return out
}()
