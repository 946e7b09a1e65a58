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
	"github.com/valyala/fasthttp"
)

const (
	// DefaultTimeout bounds an attempt whose task names no timeout.
	DefaultTimeout = 10 * time.Second
	// MaxErrorBodyBytes caps Sender.ErrorBodyBytes.
	MaxErrorBodyBytes = 1024
	// maxResponseBody is the longest response body read (from a longer
	// one only the status, and the connection is dropped).
	maxResponseBody = 64 << 10
	// maxResponseHeader is the largest response header read.
	maxResponseHeader = 64 << 10
	// busyPause is how long a host that answered 429 or 503 without
	// Retry-After is left alone.
	busyPause = time.Second
	// maxRetryAfter caps how long a Retry-After holds a host back.
	maxRetryAfter = time.Hour
)

// Sender sends deliveries.
type Sender struct {
	// Client holds the connections (NewClient).
	Client *Client
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

// header is one request header.
type header struct{ name, value string }

// answer is what a delivery's response says.
type answer struct {
	status     int
	retryAfter string
	body       []byte // its start, when not 2xx: what judge may quote
}

// Send makes one delivery attempt of t: nil when the target answered 2xx,
// a *BusyError for 429 and 503, another error otherwise (its text is what
// last_error keeps). Without a proxy, ctx is only looked at before the
// request is sent: Client.Abort ends one in progress.
func (s *Sender) Send(ctx context.Context, t *fsmpb.Task) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not sent: %w", err)
	}
	target := t.GetTarget()
	timeout := time.Duration(target.GetTimeout())
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	method := target.GetMethod()
	if method == "" {
		method = http.MethodPost
	}
	headers := s.headers(t)
	var a answer
	var err error
	if s.Client.proxied != nil {
		a, err = s.sendProxied(ctx, method, target.GetUrl(), headers, t.Payload, timeout)
	} else {
		a, err = s.sendDirect(method, target.GetUrl(), headers, t.Payload, timeout)
	}
	if err != nil {
		return err
	}
	return s.judge(a)
}

// sendDirect sends on fasthttp's client, on this goroutine.
func (s *Sender) sendDirect(method, url string, headers []header, body []byte, timeout time.Duration) (answer, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	req.Header.SetNoDefaultContentType(true)
	for _, h := range headers {
		req.Header.Set(h.name, h.value)
	}
	if len(body) > 0 {
		req.SetBodyRaw(body)
	}
	err := s.Client.direct.DoTimeout(req, resp, timeout)
	a := answer{status: resp.StatusCode(), retryAfter: string(resp.Header.Peek("Retry-After"))}
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		// The status was read; the body is longer than is ever kept, and
		// was not read.
		return a, nil
	case err != nil && s.Client.isAborted():
		return answer{}, ErrAborted
	case errors.Is(err, fasthttp.ErrTimeout):
		return answer{}, fmt.Errorf("no response within the %v timeout", timeout)
	case err != nil:
		return answer{}, err
	}
	if a.status < 200 || a.status >= 300 {
		// resp is released on return: keep what judge may quote.
		b := resp.Body()
		a.body = append([]byte(nil), b[:min(len(b), MaxErrorBodyBytes)]...)
	}
	return a, nil
}

// sendProxied sends on net/http's client, through the proxy.
func (s *Sender) sendProxied(ctx context.Context, method, url string, headers []header, body []byte, timeout time.Duration) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var r io.Reader
	if len(body) > 0 {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return answer{}, fmt.Errorf("build request: %w", err)
	}
	for _, h := range headers {
		req.Header.Set(h.name, h.value)
	}
	resp, err := s.Client.proxied.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return answer{}, fmt.Errorf("no response within the %v timeout", timeout)
		}
		return answer{}, err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	return answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: head}, nil
}

// judge turns an answer into Send's result.
func (s *Sender) judge(a answer) error {
	if a.status >= 200 && a.status < 300 {
		return nil
	}
	msg := fmt.Sprintf("HTTP %d %s", a.status, http.StatusText(a.status))
	if n := min(s.ErrorBodyBytes, MaxErrorBodyBytes); n > 0 {
		head := a.body
		if len(head) > n {
			head = head[:n]
		}
		if text := bytes.TrimSpace(head); len(text) > 0 {
			msg += ": " + strings.ToValidUTF8(string(text), "?")
		}
	}
	if a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable {
		now := s.Now()
		until := retryAfter(a.retryAfter, now)
		if until.IsZero() {
			until = now.Add(busyPause)
		} else {
			msg += " (Retry-After " + a.retryAfter + ")"
		}
		return &BusyError{Msg: msg, Until: until}
	}
	return errors.New(msg)
}

// headers are the request headers of t's delivery: the target's own
// (but never those that frame the request), a JSON Content-Type unless
// the target set one, and the Hourglass-* headers with, when there are
// signing keys, its timestamp and signatures.
func (s *Sender) headers(t *fsmpb.Task) []header {
	target := t.GetTarget()
	hs := make([]header, 0, len(target.GetHeaders())+8)
	hasType := false
	for k, v := range target.GetHeaders() {
		switch http.CanonicalHeaderKey(k) {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // the client frames the request
		case "Content-Type":
			hasType = true
		}
		hs = append(hs, header{k, v})
	}
	if len(t.Payload) > 0 && !hasType {
		hs = append(hs, header{"Content-Type", "application/json"})
	}
	hs = append(hs, header{"User-Agent", "Hourglass"})
	d := wire.SignedDelivery{
		TaskID:       t.Id,
		Attempt:      strconv.FormatUint(uint64(t.Attempts), 10),
		FencingToken: strconv.FormatUint(t.FireTerm, 10) + "." + strconv.FormatUint(t.FireIndex, 10),
		ScheduledAt:  time.Unix(0, t.DueAt).UTC().Format(time.RFC3339Nano),
		Body:         t.Payload,
	}
	hs = append(hs,
		header{wire.HeaderTaskID, d.TaskID},
		header{wire.HeaderAttempt, d.Attempt},
		header{wire.HeaderFencingToken, d.FencingToken},
		header{wire.HeaderScheduledAt, d.ScheduledAt})
	if len(s.SigningKeys) == 0 {
		return hs
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
	return append(hs, header{wire.HeaderTimestamp, d.Timestamp}, header{wire.HeaderSignature, strings.Join(sigs, " ")})
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
