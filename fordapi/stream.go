package fordapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Stream timing. Ford's socket sends a frame at least every 50 s (heartbeats
// included); a quiet socket is treated as dead.
const (
	streamStallAfter   = 50 * time.Second
	streamTokenCheck   = 15 * time.Second
	streamMaxFrame     = 1 << 20
	streamWriteTimeout = 10 * time.Second
)

var writePool sync.Pool

// ErrStreamStalled is returned when the socket was silent for too long.
var ErrStreamStalled = errors.New("telemetry stream stalled: no frame for 50 s")

// StreamOptions tune Stream (zero values are Ford's).
type StreamOptions struct {
	StallAfter time.Duration
	TokenCheck time.Duration
	// Resync fetches a REST snapshot once the socket is open (one call), so
	// no change made before the socket opened is missed; deltas then merge
	// on top of it. Without it, doc must be a recent snapshot.
	Resync bool
	// ResyncClass is the budget class of the resync snapshot (telemetry
	// unless set: ClassSnapshot for the first one after a sign-in).
	ResyncClass Class
}

// Stream opens the telemetry websocket of a vehicle and calls onUpdate with
// the merged document after every delta. doc is the snapshot to merge into
// (from Telemetry, or fetched by Stream itself with opts.Resync); Stream
// owns it until it returns. The Autonomic token is
// rotated over the open socket before it expires. Stream returns when ctx
// ends (nil), or with the error that closed the socket: every such error is
// transient except budget, rate-limit and re-authorization errors.
func (c *Client) Stream(ctx context.Context, vin string, doc Document, opts StreamOptions, onUpdate func(Document, *Telemetry)) error {
	if opts.StallAfter <= 0 {
		opts.StallAfter = streamStallAfter
	}
	if opts.TokenCheck <= 0 {
		opts.TokenCheck = streamTokenCheck
	}
	if doc == nil {
		doc = Document{}
	}
	tok, err := c.autonomicToken(ctx)
	if err != nil {
		return fmt.Errorf("opening telemetry stream: %w", err)
	}
	if err := c.budget.Take(classOf(ctx)); err != nil {
		var be *BudgetError
		if errors.As(err, &be) {
			c.observe("stream", "budget")
			return be
		}
	}
	u := c.hosts.autonomicAPI + PathStream(vin)
	u = "ws" + strings.TrimPrefix(u, "http")
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	h.Set("User-Agent", userAgent)
	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second, Proxy: http.ProxyFromEnvironment,
		// Frames are small deltas and the client only ever sends a token:
		// small read buffers, and write buffers borrowed only while writing
		// (a fleet holds a thousand of these sockets open).
		ReadBufferSize: 2048, WriteBufferSize: 2048, WriteBufferPool: &writePool}
	conn, resp, err := dialer.DialContext(ctx, u, h)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if resp != nil {
			defer resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusTooManyRequests:
				c.observe("stream", "rate_limited")
				return &RateLimitError{Endpoint: "stream", RetryAt: retryAfter(resp.Header.Get("Retry-After"), c.now())}
			case http.StatusUnauthorized:
				c.mu.Lock()
				c.auto = nil
				c.mu.Unlock()
			}
			c.observe("stream", fmt.Sprintf("http_%d", resp.StatusCode))
			return &StatusError{Endpoint: "stream", Status: resp.StatusCode, Message: "websocket upgrade refused"}
		}
		c.observe("stream", "network")
		return fmt.Errorf("opening telemetry stream: %w", scrubURLError(err))
	}
	c.observe("stream", "ok")
	defer conn.Close()
	conn.SetReadLimit(streamMaxFrame)
	if opts.Resync {
		// Frames that arrive meanwhile wait in the socket's buffer.
		fresh, tel, err := c.Telemetry(WithClass(ctx, opts.ResyncClass), vin)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		doc = fresh
		onUpdate(doc, tel)
	}

	frames := make(chan []byte)
	readErr := make(chan error, 1)
	go func() {
		for {
			_ = conn.SetReadDeadline(time.Now().Add(opts.StallAfter))
			_, data, err := conn.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case frames <- data:
			case <-ctx.Done():
				return
			}
		}
	}()
	check := time.NewTicker(opts.TokenCheck)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return nil
		case err := <-readErr:
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				return ErrStreamStalled
			}
			return fmt.Errorf("telemetry stream closed: %w", err)
		case <-check.C:
			next, err := c.autonomicToken(ctx)
			if err != nil {
				return fmt.Errorf("renewing the stream's token: %w", err)
			}
			if next != tok {
				tok = next
				msg, _ := json.Marshal(map[string]string{"accessToken": tok})
				_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
				if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
					return fmt.Errorf("sending the renewed token: %w", err)
				}
			}
		case data := <-frames:
			if err := c.handleFrame(vin, doc, data, onUpdate); err != nil {
				return err
			}
		}
	}
}

// handleFrame merges one frame into doc. Garbage ends the stream (the
// caller falls back to polling); nothing in a frame can panic.
func (c *Client) handleFrame(vin string, doc Document, data []byte, onUpdate func(Document, *Telemetry)) error {
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
		return fmt.Errorf("telemetry stream error from Ford: %d %s", msg.Error.Code, msg.Error.Message)
	case msg.Data != nil:
		if len(msg.Data) == 1 && msg.Data["updateTime"] != nil {
			c.log.Debug("stream heartbeat", zap.String("vin", ShortVIN(vin)))
			doc["updateTime"] = msg.Data["updateTime"]
			return nil
		}
		MergeDelta(doc, msg.Data)
		onUpdate(doc, Normalize(doc))
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
	// A struct rather than a map of raw messages: fewer allocations a frame.
	var raw struct {
		Data       json.RawMessage `json:"_data"`
		HTTPStatus json.RawMessage `json:"_httpStatus"`
		Error      json.RawMessage `json:"_error"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return f, fmt.Errorf("telemetry stream sent a frame that is not a JSON object (%d bytes)", len(data))
	}
	if raw.Data != nil {
		if err := json.Unmarshal(raw.Data, &f.Data); err != nil || f.Data == nil {
			return Frame{}, fmt.Errorf("telemetry stream sent a _data frame that is not an object")
		}
	}
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
