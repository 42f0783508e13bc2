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
	fordAPI() Ford
	// waitForFord returns when Ford may be called (the auth gate).
	waitForFord(ctx context.Context) error
	// report turns a Ford call's outcome into the auth state and says how
	// long to wait before the next try.
	report(err error, bo *backoff) time.Duration
	pollInterval() time.Duration
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
	shapeChanged(vin string, sh shape)
	noteDrift(vin string, tel *fordapi.Telemetry)
	streamingChanged(vin string, on bool)
	carStopped()

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
	streamOpts             fordapi.StreamOptions
	allowed                func(cmd string) bool
	commandTimeout         time.Duration // a command's deadline, from its acceptance
	refreshEvery           time.Duration // at most one refresh per car in this time
}

func (b *Bridge) carSettings() carSettings {
	return carSettings{stream: b.cfg.Stream, discovery: b.cfg.HADiscovery, backoffMin: b.opts.BackoffMin, backoffMax: b.opts.BackoffMax,
		// Not b.cfg.Allowed: that method value would copy the whole
		// Config into every car (2 KB each in a fleet).
		streamRetry: b.opts.StreamRetry, streamOpts: b.opts.Stream, allowed: b.allowed,
		commandTimeout: b.opts.CommandTimeout, refreshEvery: b.opts.RefreshEvery}
}

func (b *Bridge) allowed(cmd string) bool               { return b.cfg.Allowed(cmd) }
func (b *Bridge) clock() time.Time                      { return b.now() }
func (b *Bridge) logger() *zap.Logger                   { return b.log }
func (b *Bridge) fordAPI() Ford                         { return b.ford }
func (b *Bridge) waitForFord(ctx context.Context) error { return b.gate.wait(ctx, b.now) }
func (b *Bridge) fieldTopic(vin, field string) string   { return b.t.Field(vin, field) }
func (b *Bridge) topics() mqttapi.Tree                  { return b.t }
func (b *Bridge) vehicleChanged(v *vehicle)             { b.publishVehicleDiscovery(v) }
func (b *Bridge) carShape(vin string) (shape, bool)     { return b.shapes.get(vin) }
func (b *Bridge) shapeChanged(vin string, sh shape)     { b.shapes.set(vin, sh) }
func (b *Bridge) streamingChanged(vin string, on bool)  { b.m.setStreaming(vin, on) }
func (b *Bridge) carStopped()                           { b.workers.Done() }
func (b *Bridge) commandContext() context.Context       { return b.cmdCtx }
func (b *Bridge) acceptingCommands() bool               { return b.accepting.Load() }
func (b *Bridge) countCommand(cmd, status string)       { b.m.command(cmd, status) }
func (b *Bridge) commandDone()                          { b.commands.Done() }
func (b *Bridge) commandResult(vin string, req CommandRequest, status, msg string, waited time.Duration) {
	b.result(vin, req, status, msg, waited)
}
