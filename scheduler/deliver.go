package scheduler

import (
	"context"
	"errors"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/leader"
	"github.com/hourglass-scheduler/hourglass/webhook"
)

// deliver is one worker: it sends deliveries, reports their outcomes, and
// tells the core when each ended.
func (s *Scheduler) deliver(ctx context.Context, term uint64, in <-chan leader.SendJob, out chan<- *fsmpb.Outcome) {
	for job := range in {
		if ctx.Err() != nil {
			return // leadership ended: the next leader fires it again
		}
		t := job.Task
		var o *fsmpb.Outcome
		var busyUntil time.Time
		if s.stillLeading(term, t) {
			o, busyUntil = s.attempt(ctx, t)
		} // else the next leader fires it again, as a later attempt
		s.finished(job, busyUntil)
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

// attempt sends t once and returns its outcome, and, when the target is
// busy (429/503), until when it asked to be left alone.
func (s *Scheduler) attempt(ctx context.Context, t *fsmpb.Task) (o *fsmpb.Outcome, busyUntil time.Time) {
	began := s.cfg.Clock.Now()
	err := s.sender.Send(ctx, t)
	s.metrics.sendDuration.Observe(s.cfg.Clock.Now().Sub(began).Seconds())
	if err == nil {
		s.metrics.attempt(t.Queue, "succeeded")
	} else {
		s.metrics.attempt(t.Queue, "failed")
	}
	var busy *webhook.BusyError
	if errors.As(err, &busy) {
		busyUntil = busy.Until
	}
	return s.decide(t, err), busyUntil
}

// finished tells the core that a delivery ended (its host busy until
// until, if set).
func (s *Scheduler) finished(job leader.SendJob, until time.Time) {
	s.tell(0, func(in *inbox) { in.finished = append(in.finished, finishedSend{job: job, until: until}) })
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
