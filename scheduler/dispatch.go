package scheduler

import (
	"context"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// sent is a worker's report that a delivery to host finished; until, if
// set, is when the host asked to be left alone till (429/503).
type sent struct {
	host  string
	until time.Time
}

// hostQueue is the deliveries of one target host waiting for a worker.
type hostQueue struct {
	active       int
	waiting      []*fsmpb.Task
	blockedUntil time.Time
}

// dispatch hands due tasks to the workers, at most TargetConcurrency at a
// time per target host: the others wait in their host's queue, holding no
// worker, so a slow host delays only its own deliveries. A host that
// answered 429 or 503 gets nothing until its Retry-After.
func (s *Scheduler) dispatch(ctx context.Context, in <-chan *fsmpb.Task, work chan<- *fsmpb.Task, done <-chan sent) {
	defer close(work)
	hosts := map[string]*hostQueue{}
	var ready []*fsmpb.Task // may go now, waiting for a worker
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// promote moves what a host may now send to ready.
	promote := func(name string, h *hostQueue, now time.Time) {
		for h.active < s.cfg.TargetConcurrency && len(h.waiting) > 0 && !now.Before(h.blockedUntil) {
			ready = append(ready, h.waiting[0])
			h.waiting[0] = nil
			h.waiting = h.waiting[1:]
			h.active++
		}
		if h.active == 0 && len(h.waiting) == 0 {
			delete(hosts, name)
		}
	}
	for {
		var next *fsmpb.Task
		var to chan<- *fsmpb.Task
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
			name := fsm.RouteOf(t).Host
			h := hosts[name]
			if h == nil {
				h = &hostQueue{}
				hosts[name] = h
			}
			h.waiting = append(h.waiting, t)
			promote(name, h, s.cfg.Clock.Now())
		case to <- next:
			ready[0] = nil
			ready = ready[1:]
		case d := <-done:
			now := s.cfg.Clock.Now()
			h := hosts[d.host]
			if h == nil {
				continue
			}
			h.active--
			if d.until.After(h.blockedUntil) {
				h.blockedUntil = d.until
			}
			promote(d.host, h, now)
			if !d.until.IsZero() {
				rearm(timer, hosts, now)
			}
		case <-timer.C:
			now := s.cfg.Clock.Now()
			for name, h := range hosts {
				promote(name, h, now)
			}
			rearm(timer, hosts, now)
		}
	}
}

// rearm sets timer for the earliest end of a block of a host with
// deliveries waiting.
func rearm(timer *time.Timer, hosts map[string]*hostQueue, now time.Time) {
	var wake time.Time
	for _, h := range hosts {
		if len(h.waiting) > 0 && now.Before(h.blockedUntil) && (wake.IsZero() || h.blockedUntil.Before(wake)) {
			wake = h.blockedUntil
		}
	}
	if !wake.IsZero() {
		timer.Reset(wake.Sub(now))
	}
}
