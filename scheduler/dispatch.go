package scheduler

import (
	"context"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// sent is a worker's report that a delivery by route ended; until, if
// set, is when its host asked to be left alone till (429/503).
type sent struct {
	route fsm.Route
	until time.Time
}

// dispatch hands fired deliveries to the workers as the send gates let
// them go (sendGates: per host, per queue, Retry-After, and no more than
// there are workers), so a delivery handed out never waits for a worker
// and one held back holds none.
func (s *Scheduler) dispatch(ctx context.Context, in <-chan *fsmpb.Task, work chan<- sendJob, done <-chan sent) {
	defer close(work)
	gates := newSendGates(s.cfg.Workers, s.cfg.TargetConcurrency, s.cfg.QueueConcurrency)
	var ready []sendJob
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var wakeAt time.Time // when the timer fires; zero: not armed
	arm := func(at, now time.Time) {
		if at.IsZero() || !wakeAt.IsZero() && !at.Before(wakeAt) {
			return
		}
		wakeAt = at
		timer.Reset(max(0, at.Sub(now)))
	}
	for {
		var next sendJob
		var to chan<- sendJob
		if len(ready) > 0 {
			next, to = ready[0], work
		}
		select {
		case <-ctx.Done():
			return
		case t, ok := <-in:
			if !ok {
				return
			}
			gates.add(t, fsm.RouteOf(t), s.cfg.Clock.Now())
		case to <- next:
			ready[0] = sendJob{}
			ready = ready[1:]
		case d := <-done:
			now := s.cfg.Clock.Now()
			gates.finished(d.route, d.until, now)
			arm(d.until, now)
		case <-timer.C:
			now := s.cfg.Clock.Now()
			wakeAt = time.Time{}
			gates.tick(now)
			arm(gates.next(now), now)
		}
		ready = append(ready, gates.take()...)
	}
}
