package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/wire"
)

const (
	// DefaultTimeout bounds an attempt whose task names no timeout.
	DefaultTimeout = 10 * time.Second
	// MaxErrorBodyBytes caps Sender.ErrorBodyBytes.
	MaxErrorBodyBytes = 1024
	// maxResponseBody is how much of a response body is read (then the
	// connection is reused if the rest was small, dropped otherwise).
	maxResponseBody = 64 << 10
	// busyPause is how long a host that answered 429 or 503 without
	// Retry-After is left alone.
	busyPause = time.Second
	// maxRetryAfter caps how long a Retry-After holds a host back.
	maxRetryAfter = time.Hour
)

// Sender sends deliveries.
type Sender struct {
	// Client sends the requests (NewHTTPClient: its policy, no
	// redirects, no proxy from the environment).
	Client *http.Client
	// SigningKeys, when set, sign every delivery with each key, v2 then
	// v1 (deprecated): more than one while keys are rotated.
	SigningKeys [][]byte
	// ErrorBodyBytes is how much of a failed response's body goes into
	// the error after its status line (0: none; at most
	// MaxErrorBodyBytes). A receiver's error body may hold what readers of
	// the task (tasks:read) should not see.
	ErrorBodyBytes int
	// Now tells the time of the signatures and of Retry-After.
	Now func() time.Time
}

// BusyError is a target's 429 or 503: it is overloaded and asked to be
// left alone until Until (its Retry-After, or busyPause from now).
type BusyError struct {
	Msg   string
	Until time.Time
}

func (e *BusyError) Error() string { return e.Msg }

// Send makes one delivery attempt of t: nil when the target answered 2xx,
// a *BusyError for 429 and 503, another error otherwise (its text is what
// last_error keeps).
func (s *Sender) Send(ctx context.Context, t *fsmpb.Task) error {
	target := t.GetTarget()
	timeout := time.Duration(target.GetTimeout())
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	method := target.GetMethod()
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if len(t.Payload) > 0 {
		body = bytes.NewReader(t.Payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.GetUrl(), body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	for k, v := range target.GetHeaders() {
		req.Header.Set(k, v)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "Hourglass")
	s.sign(req.Header, t)

	resp, err := s.Client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("no response within the %v timeout", timeout)
		}
		return err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if n := min(s.ErrorBodyBytes, MaxErrorBodyBytes); n > 0 {
		if len(head) > n {
			head = head[:n]
		}
		if text := bytes.TrimSpace(head); len(text) > 0 {
			msg += ": " + strings.ToValidUTF8(string(text), "?")
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		now := s.Now()
		until := retryAfter(resp.Header.Get("Retry-After"), now)
		if until.IsZero() {
			until = now.Add(busyPause)
		} else {
			msg += " (Retry-After " + resp.Header.Get("Retry-After") + ")"
		}
		return &BusyError{Msg: msg, Until: until}
	}
	return errors.New(msg)
}

// sign sets the delivery's Hourglass-* headers and, with signing keys,
// its timestamp and signatures.
func (s *Sender) sign(h http.Header, t *fsmpb.Task) {
	d := wire.SignedDelivery{
		TaskID:       t.Id,
		Attempt:      strconv.FormatUint(uint64(t.Attempts), 10),
		FencingToken: fmt.Sprintf("%d.%d", t.FireTerm, t.FireIndex),
		ScheduledAt:  time.Unix(0, t.DueAt).UTC().Format(time.RFC3339Nano),
		Body:         t.Payload,
	}
	h.Set(wire.HeaderTaskID, d.TaskID)
	h.Set(wire.HeaderAttempt, d.Attempt)
	h.Set(wire.HeaderFencingToken, d.FencingToken)
	h.Set(wire.HeaderScheduledAt, d.ScheduledAt)
	if len(s.SigningKeys) == 0 {
		return
	}
	ts := s.Now().Unix()
	d.Timestamp = strconv.FormatInt(ts, 10)
	// v2 for every key, then v1 (deprecated) for receivers not yet moved
	// to v2.
	sigs := make([]string, 0, 2*len(s.SigningKeys))
	for _, key := range s.SigningKeys {
		sigs = append(sigs, wire.SignWebhook(key, d))
	}
	for _, key := range s.SigningKeys {
		sigs = append(sigs, wire.SignWebhookV1(key, t.Id, ts, t.Payload))
	}
	h.Set(wire.HeaderTimestamp, d.Timestamp)
	h.Set(wire.HeaderSignature, strings.Join(sigs, " "))
}

// retryAfter reads a Retry-After header (seconds, or an HTTP date) as a
// time after now, capped at maxRetryAfter; zero when absent or unreadable.
func retryAfter(v string, now time.Time) time.Time {
	if v == "" {
		return time.Time{}
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(max(secs, 0)) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	} else {
		return time.Time{}
	}
	return now.Add(min(max(d, 0), maxRetryAfter))
}
