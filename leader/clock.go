package leader

import (
	"time"

	"github.com/hourglass-scheduler/hourglass/wheel"
)

// The core keeps time by the wall clock it is given (due times are wall
// times, stamped by whichever leader wrote them), and that clock may step:
// an NTP step, a VM resumed, an operator. A step forward needs nothing:
// what is due by the new time is released at once, and nothing is early
// by the clock that fires it. A step back would leave the wheel ahead of
// the clock, so that a task added afterwards, due before where the wheel
// had got to, would be released at once, early by the clock's own
// reading; and tasks already released to their ready lists may no longer
// be within FireLead of their time. stepBack puts all of it on the new
// time.

// stepBack rebuilds, for a clock that now reads now, before the last
// Advance: a new wheel at now holding every entry not yet due by it (from
// the old wheel and the ready lists), and the gates' clocks moved back by
// the step, so that a rate limit, a Retry-After or the loader's schedule
// keeps the time it had left rather than waiting out the step.
func (c *Core) stepBack(now time.Time) {
	step := c.now.Sub(now)
	old := c.wheel
	c.wheel = newWheel(now)
	for _, e := range c.entries {
		if old.Cancel(e) {
			c.wheel.Add(e, c.releaseAt(e.Value)) // after now: it was after the old time
		}
	}
	for _, r := range c.routes {
		var keep fifo[*wheel.Entry[item]]
		for r.ready.len() > 0 {
			e := r.ready.pop()
			if !e.Value.gone && c.wheel.Add(e, c.releaseAt(e.Value)) {
				continue // back to waiting
			}
			keep.push(e)
		}
		r.ready = keep
	}
	c.nextLoad = c.nextLoad.Add(-step)
	c.lastRefill = c.lastRefill.Add(-step)
	for _, q := range c.queues {
		q.refilled = q.refilled.Add(-step)
	}
	for _, h := range c.hosts {
		if !h.blockedUntil.IsZero() {
			h.blockedUntil = h.blockedUntil.Add(-step)
		}
	}
}

// releaseAt is when an entry becomes ready to leave the wheel: a
// scheduled task FireLead+FireBatch before it is due, a lease at its end.
// The wheel moves FireBatch after its first entry is ready (Advance).
func (c *Core) releaseAt(v item) time.Time {
	if v.kind == itemLeaseEnd {
		return time.Unix(0, v.due)
	}
	return time.Unix(0, v.due).Add(-c.cfg.FireLead - c.cfg.FireBatch)
}
