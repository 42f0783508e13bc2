package bridge

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/fordpass2mqtt/fordpass2mqtt/fordapi"
	"github.com/fordpass2mqtt/fordpass2mqtt/mqttapi"
)

// carHost is what a car needs from the bridge around it, and nothing else:
// a car does not reach into the bridge's state.
type carHost interface {
	clock() time.Time
	logger() *zap.Logger
	fordAPI() fordapi.Backend
	// waitForFord returns when Ford may be called (the auth gate).
	waitForFord(ctx context.Context) error
	// report turns a Ford call's outcome into the auth state and says how
	// long to wait before the next try.
	report(err error, bo *backoff) time.Duration
	// pollInterval is how long after a read the car is polled again.
	pollInterval(vin string) time.Duration
	// mayStream says whether the car may hold a socket now (Ford may
	// allow one per token); used says the car is in use, so it streams.
	mayStream(vin string) bool
	used(vin string)
	// publishRetained publishes a car's retained value; the car itself
	// decides whether it changed.
	publishRetained(topic, payload string)
	fieldTopic(vin, field string) string
	topics() mqttapi.Tree
	// vehicleChanged republishes the car's discovery config (its fields
	// changed).
	vehicleChanged(v *vehicle)
	// carShape is the shape the car's device had before, if known;
	// shapeChanged records a new one.
	carShape(vin string) (shape, bool)
	// keptClimate is the car's climate profile kept from before ("" when
	// none); keepClimate keeps a new one.
	keptClimate(vin string) string
	keepClimate(vin, state string)
	shapeChanged(vin string, sh shape)
	noteDrift(vin string, tel *fordapi.Telemetry)
	streamingChanged(vin string, on bool)
	carStopped()
	// deleteMessages deletes the car's messages from Ford's message centre
	// (latest: only the newest).
	deleteMessages(ctx context.Context, vin string, latest bool) error
	// keepExtras keeps the cars' reads besides telemetry in STATE_DIR
	// (after a command changed what one shows).
	keepExtras()

	// For the car's commands:
	commandContext() context.Context // ends when shutdown gives up on commands
	acceptingCommands() bool
	commandResult(vin string, req CommandRequest, status, msg string, waited time.Duration)
	countCommand(cmd, status string)
	commandDone()
}

// carSettings are the settings a car runs with.
type carSettings struct {
	stream, discovery      bool
	backoffMin, backoffMax time.Duration
	streamRetry            time.Duration
	darkRetry              time.Duration // the longest wait between a failing car's tries
	streamOpts             fordapi.StreamOptions
	allowed                func(cmd string) bool
	commandTimeout         time.Duration // a command's deadline, from its acceptance
	refreshEvery           time.Duration // at most one refresh per car in this time
	fieldGrace             time.Duration // a field missing from Ford's answers keeps its value this long
}

// carLink is the bridge as its cars see it: the carHost they run with.
// Its methods are the carHost ones the bridge does not have itself.
type carLink struct {
	*Bridge
	a *fordAccount // the car's
}

func (b carLink) settings() carSettings {
	return carSettings{stream: b.cfg.Stream, discovery: b.cfg.HADiscovery, backoffMin: b.opts.BackoffMin, backoffMax: b.opts.BackoffMax,
		// Not b.cfg.Allowed: that method value would copy the whole
		// config.Config into every car (2 KB each in a fleet).
		streamRetry: b.opts.StreamRetry, streamOpts: b.opts.Stream, allowed: b.allowed,
		commandTimeout: b.opts.CommandTimeout, refreshEvery: b.opts.RefreshEvery, darkRetry: b.opts.DarkRetry,
		fieldGrace: b.opts.FieldGrace}
}

func (b carLink) allowed(cmd string) bool                     { return b.cfg.Allowed(cmd) }
func (b carLink) clock() time.Time                            { return b.now() }
func (b carLink) logger() *zap.Logger                         { return b.a.log }
func (b carLink) fordAPI() fordapi.Backend                    { return b.a.ford }
func (b carLink) waitForFord(ctx context.Context) error       { return b.a.auth.gate.wait(ctx, b.now) }
func (b carLink) pollInterval(vin string) time.Duration       { return b.a.fleet.pollInterval(vin) }
func (b carLink) mayStream(vin string) bool                   { return b.a.fleet.mayStream(vin) }
func (b carLink) used(vin string)                             { b.a.fleet.used(vin) }
func (b carLink) report(err error, bo *backoff) time.Duration { return b.a.auth.report(err, bo) }
func (b carLink) publishRetained(topic, payload string)       { b.pub.publishRetained(topic, payload) }
func (b carLink) fieldTopic(vin, field string) string         { return b.t.Field(vin, field) }
func (b carLink) topics() mqttapi.Tree                        { return b.t }
func (b carLink) vehicleChanged(v *vehicle)                   { b.publishVehicleDiscovery(v) }
func (b carLink) carShape(vin string) (shape, bool)           { return b.shapes.get(vin) }
func (b carLink) keptClimate(vin string) string               { return b.shapes.climate(vin) }
func (b carLink) keepClimate(vin, state string)               { b.shapes.setClimate(vin, state) }
func (b carLink) shapeChanged(vin string, sh shape)           { b.shapes.set(vin, sh) }
func (b carLink) streamingChanged(vin string, on bool)        { b.m.setStreaming(vin, on) }
func (b carLink) carStopped()                                 { b.workers.Done() }
func (b carLink) deleteMessages(ctx context.Context, vin string, latest bool) error {
	return b.a.fleet.deleteMessages(ctx, vin, latest)
}
func (b carLink) keepExtras()                     { b.a.fleet.saveExtras() }
func (b carLink) commandContext() context.Context { return b.cmdCtx }
func (b carLink) acceptingCommands() bool         { return b.accepting.Load() }
func (b carLink) countCommand(cmd, status string) { b.m.command(cmd, status) }
func (b carLink) commandDone()                    { b.commands.Done() }
func (b carLink) commandResult(vin string, req CommandRequest, status, msg string, waited time.Duration) {
	b.result(vin, req, status, msg, waited)
}
