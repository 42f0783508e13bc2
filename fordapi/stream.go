package fordapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Stream timing. Ford's socket sends a frame at least every 50 s (heartbeats
// included); a quiet socket is treated as dead.
const (
	streamStallAfter   = 50 * time.Second
	streamTokenCheck   = 15 * time.Second
	streamFillAfter    = 10 * time.Second
	streamMaxFrame     = 1 << 20
	streamWriteTimeout = 10 * time.Second
	// socketRecordWait is how long a one-off read of the socket waits
	// for the car's record.
	socketRecordWait = 30 * time.Second
)

var writePool sync.Pool

// ErrStreamStalled is returned when the socket was silent for too long.
var ErrStreamStalled = errors.New("telemetry stream stalled: no frame for 50 s")

// StreamOptions tune Stream (zero values are Ford's).
type StreamOptions struct {
	StallAfter time.Duration
	TokenCheck time.Duration
	// FillAfter: when the socket has sent no record (a _data frame with
	// metrics) this long after it opened, the REST record is fetched once
	// to fill in, where Ford still serves it. A failed fill-in is logged
	// and the socket kept. Zero means 10 s; negative, never.
	FillAfter time.Duration
}

// Stream opens the telemetry websocket of a vehicle and calls onUpdate with
// the vehicle's telemetry after every frame that carries data. The car's
// state comes from the socket: its record is built from the frames, the
// first of which carries the whole record as the FordPass app expects (see
// StreamOptions.FillAfter for a socket that does not send it). The
// opening counts in the budget class of ctx (WithClass). The Autonomic
// token is rotated over the open socket before it expires. Stream returns
// when ctx ends (nil), or with the error that closed the socket: every such
// error is transient except budget, rate-limit and re-authorization errors.
//
// The calling goroutine reads the socket; the token check runs on a timer,
// and each frame is handled (decoded, merged, onUpdate) on a short-lived
// goroutine of its own while the reader waits for it. A fleet holds a socket
// per car, so a socket costs one goroutine, not two, and the one that waits
// on the socket keeps a small stack (see handleOffStack).
func (c *Client) Stream(ctx context.Context, vin string, opts StreamOptions, onUpdate func(*Telemetry)) error {
	if opts.StallAfter <= 0 {
		opts.StallAfter = streamStallAfter
	}
	if opts.TokenCheck <= 0 {
		opts.TokenCheck = streamTokenCheck
	}
	if opts.FillAfter == 0 {
		opts.FillAfter = streamFillAfter
	}
	conn, tok, err := c.dialStream(ctx, vin)
	if conn == nil {
		return err
	}
	return c.readStream(ctx, conn, tok, vin, c.now(), opts, onUpdate)
}

// dialStream opens the socket. A nil conn with a nil error means ctx ended.
func (c *Client) dialStream(ctx context.Context, vin string) (*websocket.Conn, string, error) {
	tok, err := c.autonomicToken(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("opening telemetry stream: %w", err)
	}
	if err := c.take(ctx, classOf(ctx)); err != nil {
		var be *BudgetError
		if errors.As(err, &be) {
			c.observe("stream", "budget")
			return nil, "", be
		}
	}
	u := c.hosts.autonomicAPI + PathStream(vin)
	u = "ws" + strings.TrimPrefix(u, "http")
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	h.Set("User-Agent", userAgent)
	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second, Proxy: http.ProxyFromEnvironment,
		// Frames are small deltas and the client only ever sends a token:
		// a read buffer just above a control frame's 125 bytes (a larger
		// frame is read past it, straight into the message), and write
		// buffers borrowed only while writing (a fleet holds a thousand of
		// these sockets open).
		ReadBufferSize: 256, WriteBufferSize: 2048, WriteBufferPool: &writePool}
	conn, resp, err := dialer.DialContext(ctx, u, h)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", nil
		}
		if resp != nil {
			defer resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusTooManyRequests:
				c.observe("stream", "rate_limited")
				return nil, "", &RateLimitError{Endpoint: "stream", RetryAt: retryAfter(resp.Header.Get("Retry-After"), nil, c.now())}
			case http.StatusUnauthorized:
				c.mu.Lock()
				c.auto = nil
				c.mu.Unlock()
			}
			c.observe("stream", fmt.Sprintf("http_%d", resp.StatusCode))
			return nil, "", &StatusError{Endpoint: "stream", Status: resp.StatusCode, Message: "websocket upgrade refused"}
		}
		c.observe("stream", "network")
		return nil, "", fmt.Errorf("opening telemetry stream: %w", scrubURLError(err))
	}
	c.observe("stream", "ok")
	c.socketOpened(vin)
	return conn, tok, nil
}

// streamRecord is the record a socket builds, shared by the reader and a
// fill-in.
type streamRecord struct {
	mu     sync.Mutex // held while a frame or the fill-in is merged and published
	rec    *Record
	filled bool // a frame or the fill-in brought the car's metrics
	// stopFill, set by fillLater, stops the fill-in's timer once a frame
	// brought the metrics: a fleet's sockets all open at once, and their
	// timers would otherwise all fire at once, each on a goroutine whose
	// descriptor the runtime keeps for good.
	stopFill func()
}

// readStream reads the open socket until it closes or ctx ends.
func (c *Client) readStream(ctx context.Context, conn *websocket.Conn, tok, vin string, openedAt time.Time, opts StreamOptions, onUpdate func(*Telemetry)) error {
	defer conn.Close()
	conn.SetReadLimit(streamMaxFrame)
	sr := &streamRecord{rec: NewRecord(nil)}
	if opts.FillAfter > 0 {
		stop := c.fillLater(ctx, vin, sr, opts.FillAfter, onUpdate)
		defer stop()
	}

	// Closing the socket is how the reader below is told to stop: by ctx,
	// or by the token renewal when it fails (its error is kept).
	stopped := context.AfterFunc(ctx, func() {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = conn.Close()
	})
	defer stopped()
	renew := c.renewOver(ctx, conn, tok, opts.TokenCheck)
	defer renew.stop()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(opts.StallAfter))
		_, data, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if rerr := renew.stop(); rerr != nil {
				return rerr
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				return ErrStreamStalled
			}
			if c.socketClosed(vin, openedAt) {
				return fmt.Errorf("telemetry stream closed: %w (%w)", ErrStreamDisplaced, err)
			}
			return fmt.Errorf("telemetry stream closed: %w", err)
		}
		if err := handleOffStack(func() error { return c.handleFrame(vin, sr, data, onUpdate) }); err != nil {
			return err
		}
	}
}

// fillLater fetches the REST record after wait when the socket has not
// brought the car's metrics by then, and Ford still serves REST telemetry.
// It never closes the socket: a failure is logged. stop cancels it and
// waits for it. Until the wait is over it holds only a timer (a fleet holds
// a socket per car).
func (c *Client) fillLater(ctx context.Context, vin string, sr *streamRecord, wait time.Duration, onUpdate func(*Telemetry)) (stop func()) {
	var mu sync.Mutex // guards stopped and cancel
	stopped, cancel := false, context.CancelFunc(nil)
	done := make(chan struct{})
	timer := time.AfterFunc(wait, func() {
		defer close(done)
		sr.mu.Lock()
		filled := sr.filled
		sr.mu.Unlock()
		if filled || c.restGone() {
			return
		}
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		fctx, fcancel := context.WithCancel(ctx)
		cancel = fcancel
		mu.Unlock()
		defer fcancel()
		doc, err := c.restDocument(fctx, vin)
		if err != nil {
			if fctx.Err() == nil {
				c.log.Debug("the socket sent no record and the REST fill-in failed; the socket stays open", zap.String("vin", ShortVIN(vin)), zap.Error(err))
			}
			return
		}
		sr.mu.Lock()
		defer sr.mu.Unlock()
		if sr.filled || fctx.Err() != nil {
			return
		}
		sr.rec.apply(doc, false)
		sr.filled = true
		onUpdate(sr.rec.Telemetry())
	})
	sr.mu.Lock()
	sr.stopFill = func() {
		if timer.Stop() {
			close(done) // it never runs
		}
	}
	sr.mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		if cancel != nil {
			cancel()
		}
		mu.Unlock()
		if timer.Stop() {
			return // it never ran
		}
		<-done
	}
}

// socketRecord reads a car's record from a socket opened for it alone: the
// first frame that carries metrics. It is how the client polls when Ford no
// longer serves REST telemetry.
func (c *Client) socketRecord(ctx context.Context, vin string) (*Telemetry, error) {
	conn, _, err := c.dialStream(ctx, vin)
	if conn == nil {
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("reading telemetry from the websocket: %w", err)
	}
	defer conn.Close()
	stopped := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stopped()
	conn.SetReadLimit(streamMaxFrame)
	_ = conn.SetReadDeadline(time.Now().Add(socketRecordWait))
	sr := &streamRecord{rec: NewRecord(nil)}
	for !sr.filled {
		_, data, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("reading telemetry from the websocket: no record within %s: %w", socketRecordWait, err)
		}
		// As on a stream: garbage and Ford's error frames end the read.
		if err := c.handleFrame(vin, sr, data, func(*Telemetry) {}); err != nil {
			return nil, fmt.Errorf("reading telemetry from the websocket: %w", err)
		}
	}
	return sr.rec.Telemetry(), nil
}

// handleOffStack runs f off the socket's goroutine and waits for it.
// Decoding JSON and publishing take a deep stack; on the socket's goroutine
// that stack would stay grown (16 KB) for as long as the car streams,
// because a stack only shrinks when most of it is unused at a collection
// and the next frame grows it again: at a thousand cars, about 10 MB. A
// fresh goroutine per frame avoids that but grows a fresh stack each
// time: a CPU profile of a burst of unchanged frames spent 29 % of the
// bridge's CPU in runtime.newstack. So a few frame workers, shared by every
// socket, keep their grown stacks and take the frames; when all are busy a
// frame gets a goroutine of its own, so a slow car never holds another's,
// but at most maxFrameExtras at once: beyond them a frame waits for the
// first worker or extra to come free. A fleet's sockets all send their
// first record at once, and a goroutine for each decoded a thousand
// records at once: RSS peaked at 120-135 MB at the start of 1,000 cars
// (55 MB bounded), and the runtime keeps a thousand goroutine descriptors
// for good.
func handleOffStack(f func() error) error {
	job := frameJob{f: f, done: make(chan error, 1)}
	select {
	case frameWork <- job: // an idle worker takes it
	default:
		if frameWorkers.Add(1) <= maxFrameWorkers {
			go frameWorker(job)
			break
		}
		frameWorkers.Add(-1)
		select {
		case frameWork <- job:
		case frameExtras <- struct{}{}:
			go func() {
				job.done <- job.f()
				<-frameExtras
			}()
		}
	}
	return <-job.done
}

// frameJob is a frame's work and where its outcome goes.
type frameJob struct {
	f    func() error
	done chan error
}

var (
	frameWork    = make(chan frameJob) // unbuffered: only an idle worker takes a job
	frameWorkers atomic.Int32
	// maxFrameWorkers: the workers, one per CPU (at least two); they stay
	// for the life of the process.
	maxFrameWorkers = int32(max(runtime.GOMAXPROCS(0), 2))
	// frameExtras holds a slot for each frame on a goroutine of its own.
	frameExtras = make(chan struct{}, maxFrameExtras)
)

// maxFrameExtras bounds the frames run beside the workers: enough that a
// few slow cars (a broker that takes seconds to acknowledge a device
// config) leave the others' frames running.
const maxFrameExtras = 16

// frameWorker runs its first job, then any job an idle worker is handed.
func frameWorker(first frameJob) {
	first.done <- first.f()
	for job := range frameWork {
		job.done <- job.f()
	}
}

// tokenRenewal checks the Autonomic token every so often and sends the new
// one over the socket when it changed; when that fails it closes the socket
// and keeps the error.
type tokenRenewal struct {
	mu      sync.Mutex // held while a check runs
	timer   *time.Timer
	cancel  context.CancelFunc
	err     error
	stopped bool
}

func (c *Client) renewOver(ctx context.Context, conn *websocket.Conn, tok string, every time.Duration) *tokenRenewal {
	r := &tokenRenewal{}
	ctx, r.cancel = context.WithCancel(ctx)
	var check func()
	check = func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.stopped {
			return
		}
		next, err := c.autonomicToken(ctx)
		if err == nil && next != tok {
			tok = next
			msg, _ := json.Marshal(map[string]string{"accessToken": tok})
			_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if werr := conn.WriteMessage(websocket.TextMessage, msg); werr != nil {
				err = fmt.Errorf("sending the renewed token: %w", werr)
			}
		} else if err != nil {
			err = fmt.Errorf("renewing the stream's token: %w", err)
		}
		if err != nil {
			if ctx.Err() == nil {
				r.err = err
			}
			_ = conn.Close()
			return
		}
		r.timer.Reset(every)
	}
	r.mu.Lock()
	r.timer = time.AfterFunc(every, check)
	r.mu.Unlock()
	return r
}

// stop ends the checks (waiting for one that runs) and returns the error
// that closed the socket, if a check closed it.
func (r *tokenRenewal) stop() error {
	r.cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.timer.Stop()
	return r.err
}

// handleFrame merges one frame into the socket's record. Garbage ends the
// stream (the caller falls back to polling); nothing in a frame can panic.
func (c *Client) handleFrame(vin string, sr *streamRecord, data []byte, onUpdate func(*Telemetry)) error {
	msg, err := ParseFrame(data)
	if err != nil {
		return err
	}
	switch {
	case msg.Error != nil:
		if msg.Error.Code == http.StatusUnauthorized {
			c.mu.Lock()
			c.auto = nil
			c.mu.Unlock()
		}
		if msg.Error.Code == http.StatusUnauthorized {
			return fmt.Errorf("telemetry stream error from Ford: %d %s: %w", msg.Error.Code, msg.Error.Message, ErrStreamUnauthorized)
		}
		return fmt.Errorf("telemetry stream error from Ford: %d %s", msg.Error.Code, msg.Error.Message)
	case msg.Data != nil:
		sr.mu.Lock()
		defer sr.mu.Unlock()
		if len(msg.Data) == 1 && msg.Data["updateTime"] != nil {
			c.log.Debug("stream heartbeat", zap.String("vin", ShortVIN(vin)))
			sr.rec.Apply(msg.Data) // Ford's timestamp, and nothing a user sees
			return nil
		}
		changed := sr.rec.ApplyChanged(msg.Data)
		if _, ok := msg.Data["metrics"]; ok && !sr.filled {
			sr.filled = true
			if sr.stopFill != nil {
				sr.stopFill()
			}
		}
		if !changed {
			// Ford resent what the car had: like a heartbeat, nothing a
			// user sees, so no telemetry is made for it.
			return nil
		}
		onUpdate(sr.rec.Telemetry())
	}
	return nil
}

// Frame is one decoded websocket message.
type Frame struct {
	Data       Document
	HTTPStatus int
	Error      *FrameError
}

// FrameError is the body of an "_error" frame.
type FrameError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// ParseFrame decodes a websocket frame. An empty frame or object is a
// housekeeping tick (a zero Frame).
func ParseFrame(data []byte) (Frame, error) {
	var f Frame
	if len(strings.TrimSpace(string(data))) == 0 {
		return f, nil
	}
	// One pass over the frame: the delta is decoded where it lies.
	var raw struct {
		Data       Document        `json:"_data"`
		HTTPStatus json.RawMessage `json:"_httpStatus"`
		Error      json.RawMessage `json:"_error"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "_data" {
			return f, fmt.Errorf("telemetry stream sent a _data frame that is not an object (a JSON %s)", te.Value)
		}
		return f, fmt.Errorf("telemetry stream sent a frame that is not a JSON object (%d bytes)", len(data))
	}
	f.Data = raw.Data
	if raw.HTTPStatus != nil {
		_ = json.Unmarshal(raw.HTTPStatus, &f.HTTPStatus)
	}
	if raw.Error != nil {
		f.Error = &FrameError{}
		if json.Unmarshal(raw.Error, f.Error) != nil {
			f.Error.Message = "unreadable error"
		}
	}
	return f, nil
}

// ShortVIN shortens a VIN for logs: the last six characters.
func ShortVIN(vin string) string {
	if len(vin) <= 6 {
		return vin
	}
	return "…" + vin[len(vin)-6:]
}
