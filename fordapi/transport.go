package fordapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// request is one HTTP call to Ford.
type request struct {
	endpoint string // short name for logs and metrics
	class    *Class // the budget class, when the endpoint decides it (else the context does)
	method   string
	url      string
	header   http.Header
	body     []byte
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (c *Client) observe(endpoint, outcome string) {
	if c.onCall != nil {
		c.onCall(endpoint, outcome)
	}
}

// do makes one call: budget first, then HTTP, then the classification of
// errors every endpoint shares (429, network faults, oversized bodies).
// Status codes other than 429 are left to the caller.
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	k := classOf(ctx)
	if r.class != nil {
		k = *r.class
	}
	err := c.take(ctx, k)
	if k == ClassSnapshot && errors.As(err, new(*BudgetError)) {
		err = c.take(ctx, ClassTelemetry)
	}
	if err != nil {
		var be *BudgetError
		if errors.As(err, &be) {
			c.observe(r.endpoint, "budget")
			return nil, be
		}
		c.log.Warn("call budget not saved", zap.Error(err))
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, bytes.NewReader(r.body))
	if err != nil {
		return nil, fmt.Errorf("%s: building request: %w", r.endpoint, err)
	}
	req.Header = r.header.Clone()
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept-Encoding", "gzip")
	start := c.now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.observe(r.endpoint, "network")
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: %w", r.endpoint, scrubURLError(err))
	}
	defer resp.Body.Close()
	var body io.Reader = io.LimitReader(resp.Body, maxBody+1)
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(body)
		if err != nil {
			c.observe(r.endpoint, "bad_body")
			return nil, &StatusError{Endpoint: r.endpoint, Status: resp.StatusCode, Message: "gzip body could not be read"}
		}
		defer gz.Close()
		body = io.LimitReader(gz, maxBody+1)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		c.observe(r.endpoint, "network")
		return nil, fmt.Errorf("%s: reading response: %w", r.endpoint, scrubURLError(err))
	}
	if len(data) > maxBody {
		c.observe(r.endpoint, "bad_body")
		return nil, &StatusError{Endpoint: r.endpoint, Status: resp.StatusCode, Message: fmt.Sprintf("response larger than %d bytes", maxBody)}
	}
	c.log.Debug("ford call", zap.String("endpoint", r.endpoint), zap.Int("status", resp.StatusCode),
		zap.Duration("took", c.now().Sub(start)), zap.Int("bytes", len(data)))
	if resp.StatusCode == http.StatusTooManyRequests {
		c.observe(r.endpoint, "rate_limited")
		until := retryAfter(resp.Header.Get("Retry-After"), data, c.now())
		c.budget.NoteRateLimit(until)
		return nil, &RateLimitError{Endpoint: r.endpoint, RetryAt: until}
	}
	outcome := "ok"
	if resp.StatusCode >= 300 {
		outcome = "http_" + strconv.Itoa(resp.StatusCode)
	}
	c.observe(r.endpoint, outcome)
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// scrubURLError drops the URL from a *url.Error: query strings can carry
// codes, and the endpoint name already says where the call went.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// RetryAfter is when a 429 says to ask again: Retry-After in seconds or as
// an HTTP date, else "N second(s)" in the body (ioBroker.ford reads all
// three from Ford), else fallback from now.
func RetryAfter(header string, body []byte, now time.Time, fallback time.Duration) time.Time {
	h := strings.TrimSpace(header)
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return now.Add(time.Duration(s) * time.Second)
	}
	if t, err := http.ParseTime(h); err == nil {
		return t
	}
	if m := secondsInBody.FindSubmatch(body); m != nil {
		if s, err := strconv.Atoi(string(m[1])); err == nil && s < 7*24*3600 {
			return now.Add(time.Duration(s) * time.Second)
		}
	}
	return now.Add(fallback)
}

// secondsInBody finds "42 seconds" or "1 second" in a 429's body.
var secondsInBody = regexp.MustCompile(`(?i)\b(\d{1,9})\s*seconds?\b`)

// retryAfter is RetryAfter for FordPass, which is given 15 minutes when it
// does not say.
func retryAfter(h string, body []byte, now time.Time) time.Time {
	return RetryAfter(h, body, now, 15*time.Minute)
}

// fordError makes the error for a non-success answer from Ford.
func fordError(endpoint string, r *response) error {
	msg := errorMessage(r.body)
	if r.status == http.StatusForbidden && strings.Contains(strings.ToUpper(msg), "NOT AUTHORIZED TO PERFORM") {
		return fmt.Errorf("%s: %w: %s", endpoint, ErrVehicleNotAuthorized, msg)
	}
	return &StatusError{Endpoint: endpoint, Status: r.status, Message: msg}
}

// errorMessage extracts Ford's message from an error body, without ever
// echoing an unknown body (which could hold anything).
func errorMessage(body []byte) string {
	var m struct {
		Message     string `json:"message"`
		Description string `json:"error_description"`
		Error       any    `json:"error"`
		ErrorCode   any    `json:"errorCode"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return ""
	}
	if trimmed[0] == '<' {
		return "HTML error page"
	}
	if json.Unmarshal(trimmed, &m) != nil {
		return fmt.Sprintf("unreadable body (%d bytes)", len(body))
	}
	parts := make([]string, 0, 3)
	if s, ok := m.Error.(string); ok && s != "" {
		parts = append(parts, s)
	}
	for _, s := range []string{m.Message, m.Description} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if m.ErrorCode != nil {
		parts = append(parts, "errorCode "+toString(m.ErrorCode))
	}
	s := strings.Join(parts, ": ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// fordHeaders are the headers every call to Ford's own hosts carries.
func (c *Client) fordHeaders() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Application-Id", c.region.AppID)
	return h
}
