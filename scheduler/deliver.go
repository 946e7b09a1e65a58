package scheduler

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

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

const (
	// DefaultTimeout bounds an attempt whose task names no timeout.
	DefaultTimeout = 10 * time.Second
	// maxResponseBody is how much of a response body is read (then the
	// connection is reused if the rest was small, dropped otherwise).
	maxResponseBody = 64 << 10
	// MaxErrorBodyBytes caps Config.ErrorBodyBytes.
	MaxErrorBodyBytes = 1024
)

// deliver is one dispatch worker: it sends tasks, reports outcomes, and
// tells the dispatcher when each delivery ended.
func (s *Scheduler) deliver(ctx context.Context, term uint64, in <-chan sendJob, out chan<- *fsmpb.Outcome, done chan<- sent) {
	for job := range in {
		if ctx.Err() != nil {
			return // leadership ended: the next leader fires it again
		}
		t := job.task
		finished := sent{route: job.route}
		var o *fsmpb.Outcome
		if s.stillLeading(term, t) {
			o = s.attempt(ctx, t, &finished)
		} // else the next leader fires it again, as a later attempt
		select {
		case done <- finished:
		case <-ctx.Done():
			return
		}
		if o == nil {
			continue
		}
		select {
		case out <- o:
		case <-ctx.Done():
			return
		}
	}
}

// attempt sends t once and returns its outcome; a target that is busy
// (429/503) sets until in finished, and holds its host back.
func (s *Scheduler) attempt(ctx context.Context, t *fsmpb.Task, finished *sent) *fsmpb.Outcome {
	began := s.cfg.Clock.Now()
	err := s.send(ctx, t)
	s.metrics.sendDuration.Observe(s.cfg.Clock.Now().Sub(began).Seconds())
	if err == nil {
		s.metrics.attempt(t.Queue, "succeeded")
	} else {
		s.metrics.attempt(t.Queue, "failed")
	}
	var busy *busyError
	if errors.As(err, &busy) {
		finished.until = busy.until
		if finished.until.IsZero() {
			finished.until = s.cfg.Clock.Now().Add(busyPause)
		}
		s.blockHost(finished.route.Host, finished.until)
	}
	return s.decide(t, err)
}

// send makes one delivery attempt of t.
func (s *Scheduler) send(ctx context.Context, t *fsmpb.Task) error {
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
	d := client.SignedDelivery{
		TaskID:       t.Id,
		Attempt:      strconv.FormatUint(uint64(t.Attempts), 10),
		FencingToken: fmt.Sprintf("%d.%d", t.FireTerm, t.FireIndex),
		ScheduledAt:  time.Unix(0, t.DueAt).UTC().Format(time.RFC3339Nano),
		Body:         t.Payload,
	}
	req.Header.Set(client.HeaderTaskID, d.TaskID)
	req.Header.Set(client.HeaderAttempt, d.Attempt)
	req.Header.Set(client.HeaderFencingToken, d.FencingToken)
	req.Header.Set(client.HeaderScheduledAt, d.ScheduledAt)
	if len(s.cfg.SigningKeys) > 0 {
		ts := s.cfg.Clock.Now().Unix()
		d.Timestamp = strconv.FormatInt(ts, 10)
		// v2 for every key, then v1 (deprecated) for receivers not yet
		// moved to v2.
		sigs := make([]string, 0, 2*len(s.cfg.SigningKeys))
		for _, key := range s.cfg.SigningKeys {
			sigs = append(sigs, client.SignWebhook(key, d))
		}
		for _, key := range s.cfg.SigningKeys {
			sigs = append(sigs, client.SignWebhookV1(key, t.Id, ts, t.Payload))
		}
		req.Header.Set(client.HeaderTimestamp, d.Timestamp)
		req.Header.Set(client.HeaderSignature, strings.Join(sigs, " "))
	}

	resp, err := s.cfg.HTTPClient.Do(req)
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
	if n := min(s.cfg.ErrorBodyBytes, MaxErrorBodyBytes); n > 0 {
		if len(head) > n {
			head = head[:n]
		}
		if text := bytes.TrimSpace(head); len(text) > 0 {
			msg += ": " + strings.ToValidUTF8(string(text), "?")
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		until := retryAfter(resp.Header.Get("Retry-After"), s.cfg.Clock.Now())
		if !until.IsZero() {
			msg += " (Retry-After " + resp.Header.Get("Retry-After") + ")"
		}
		return &busyError{msg: msg, until: until}
	}
	return errors.New(msg)
}

// busyError is a target's 429 or 503: it is overloaded. Until is when its
// Retry-After says to come back (zero: it said nothing).
type busyError struct {
	msg   string
	until time.Time
}

func (e *busyError) Error() string { return e.msg }

const (
	// busyPause is how long deliveries to a host that answered 429 or 503
	// without Retry-After are held back.
	busyPause = time.Second
	// maxRetryAfter caps how long a Retry-After holds a host back.
	maxRetryAfter = time.Hour
)

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

// blockHost tells the wheel loop to fire nothing more for host until
// until.
func (s *Scheduler) blockHost(host string, until time.Time) {
	s.mu.Lock()
	if s.active {
		s.inbox.hostBlocks = append(s.inbox.hostBlocks, hostBlock{host: host, until: until})
	}
	s.mu.Unlock()
	s.poke()
}

// verifiedFor is how long a confirmed leadership is trusted for stale
// deliveries before it is confirmed again.
const verifiedFor = 100 * time.Millisecond

// stillLeading decides whether t may be sent. A task fired within FireLead
// plus StaleAfter is sent at once: no other leader can have been elected
// since. An older one (this process was paused or starved) is sent only
// once a quorum confirms this node still leads.
func (s *Scheduler) stillLeading(term uint64, t *fsmpb.Task) bool {
	now := s.cfg.Clock.Now()
	if s.cfg.Leadership == nil || now.Sub(time.Unix(0, t.FiredAt)) <= s.cfg.FireLead+s.cfg.StaleAfter {
		return true
	}
	s.verifyMu.Lock()
	defer s.verifyMu.Unlock()
	if s.verifiedTerm == term && s.cfg.Clock.Now().Sub(s.verifiedAt) < verifiedFor {
		return true
	}
	if err := s.cfg.Leadership.VerifyLeader(); err != nil {
		s.log.Warn("not sending a stale delivery: leadership not confirmed", "task", t.Id, "fired", now.Sub(time.Unix(0, t.FiredAt)), "err", err)
		return false
	}
	s.verifiedAt, s.verifiedTerm = s.cfg.Clock.Now(), term
	return true
}
