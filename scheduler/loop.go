package scheduler

import (
	"context"
	"maps"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/leader"
)

// loop runs the leader core (package leader) for term: it feeds it what
// the inbox holds and the time, carries out what it returns (fires to
// propose, deliveries to send, lease ends to record, lease requests to
// answer) and sleeps until it asks to be woken, or something arrives.
func (s *Scheduler) loop(ctx context.Context, run, term uint64, fires chan<- []*fsmpb.FireItem, expiries chan<- []string, work chan<- leader.SendJob) {
	defer close(fires)
	defer close(expiries)
	defer s.loaded.Store(0)
	clock := s.cfg.Clock
	core := leader.New(s.store, s.cfg.core(), term, clock.Now())
	waiting := map[uint64]*waiter{} // the lease requests the core holds
	defer func() { failAll(maps.Values(waiting)) }()
	// unsent holds deliveries no worker took at once: only after a
	// restore, when the old core's deliveries still hold workers that the
	// new core does not know of; the loop never blocks on them.
	var unsent []leader.SendJob
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := clock.Now()
		in := s.take()
		if in.reset {
			s.log.Info("state restored from a snapshot: rebuilding the wheel")
			core = leader.New(s.store, s.cfg.core(), term, now)
			for _, w := range waiting { // nothing was handed to them yet
				core.AddWaiter(w.id, w.queue, w.max)
			}
		}
		core.Changed(in.changes)
		core.NotAccepted(in.unreserve)
		core.GiveBack(in.giveBack)
		for _, tasks := range in.fired {
			core.Fired(tasks)
		}
		for _, f := range in.finished {
			core.Finished(f.job, f.until)
		}
		for _, w := range in.waiters {
			waiting[w.id] = w
			core.AddWaiter(w.id, w.queue, w.max)
		}
		for _, w := range in.dropped {
			delete(waiting, w.id)
			core.DropWaiter(w.id, w.queue)
		}
		core.Refire(in.retries)

		out := core.Advance(now)
		for _, err := range out.Errors {
			s.log.Error("leader core", "err", err)
		}
		if out.Refired > 0 {
			s.log.Info("firing again tasks left running by an earlier leader", "tasks", out.Refired)
		}
		wake := out.Wake
		for _, g := range out.Grants {
			w := waiting[g.Waiter]
			delete(waiting, g.Waiter)
			if w != nil && w.peek {
				w.saw()
				core.GiveBack(g.Items) // a peek leases nothing
				wake = now
				continue
			}
			if w == nil || !w.grant(g.Items, term, run) {
				core.GiveBack(g.Items) // its requester gave up meanwhile
				wake = now
			}
		}
		for _, w := range in.waiters {
			if w.once && waiting[w.id] == w { // nothing due for it: answered empty
				delete(waiting, w.id)
				core.DropWaiter(w.id, w.queue)
				w.grant(nil, term, run)
			}
		}
		unsent = append(unsent, out.Send...)
		for len(unsent) > 0 && offer(work, unsent[0]) {
			unsent[0] = leader.SendJob{}
			unsent = unsent[1:]
		}
		if len(out.Fire) > 0 {
			select {
			case fires <- out.Fire:
			case <-ctx.Done():
				return
			}
		}
		if len(out.Expired) > 0 {
			select {
			case expiries <- out.Expired:
			case <-ctx.Done():
				return
			}
		}
		s.loaded.Store(int64(core.Loaded()))
		// Timers run on the monotonic clock: a wall clock stepped
		// forward is noticed at the next look, at most a second away.
		timer.Reset(min(max(0, wake.Sub(clock.Now())), maxSleep))
		var next leader.SendJob
		var to chan<- leader.SendJob
		if len(unsent) > 0 {
			next, to = unsent[0], work
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		case to <- next:
			unsent[0] = leader.SendJob{}
			unsent = unsent[1:]
		}
	}
}

// maxSleep bounds how long the loop sleeps with nothing to do.
const maxSleep = time.Second

// offer hands job to a free worker, if there is one now.
func offer(work chan<- leader.SendJob, job leader.SendJob) bool {
	select {
	case work <- job:
		return true
	default:
		return false
	}
}
