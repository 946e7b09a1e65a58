package leader

import (
	"container/heap"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// The send side. A push task whose Fire committed (Fired) waits for its
// due time (it is never sent early), then for the send gates: at most
// Workers deliveries at once, TargetConcurrency to one host, and
// QueueConcurrency of one queue, nothing to a host inside its
// Retry-After. A delivery held back waits in its route and holds no
// worker; a route held back waits on the one gate that holds it (a host,
// a queue, or the worker cap) and is tried again when that gate opens, so
// a slow host or queue delays only its own deliveries, and the routes held
// back by the worker cap take turns.

// SendJob is a delivery that may start now: hand it to a worker, and
// report its end with Finished.
type SendJob struct {
	Task  *fsmpb.Task
	Route fsm.Route
	route uint32
	from  *Core // a job of an earlier core (before a restore) is not counted here
}

// pendingSend is a fired delivery waiting for its due time.
type pendingSend struct {
	task  *fsmpb.Task
	route uint32
	seq   uint64 // ties keep the order Fired was told
}

// paceQueue is a min-heap of fired deliveries on their due time. It holds
// only what was fired within the last FireLead (or is overdue), so it
// stays small.
type paceQueue []pendingSend

func (h paceQueue) Len() int { return len(h) }
func (h paceQueue) Less(i, j int) bool {
	return h[i].task.DueAt < h[j].task.DueAt || h[i].task.DueAt == h[j].task.DueAt && h[i].seq < h[j].seq
}
func (h paceQueue) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *paceQueue) Push(x any)   { *h = append(*h, x.(pendingSend)) }
func (h *paceQueue) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = pendingSend{}
	*h = old[:len(old)-1]
	return p
}

// parkList is the send routes waiting on one gate, first come first
// served.
type parkList struct{ routes fifo[*route] }

func (p *parkList) len() int { return p.routes.len() }

func (p *parkList) push(r *route) {
	r.parkedOn = p
	p.routes.push(r)
}

func (p *parkList) pop() *route {
	r := p.routes.pop()
	r.parkedOn = nil
	return r
}

// Fired hears of push tasks whose Fire committed (the accepted tasks, as
// stored), in the order they were released.
func (c *Core) Fired(tasks []*fsmpb.Task) {
	for _, t := range tasks {
		c.sendSeq++
		heap.Push(&c.pace, pendingSend{task: t, route: c.routeOf(fsm.RouteOf(t)), seq: c.sendSeq})
	}
}

// Finished hears that delivery job ended; until, if set, holds its host
// back till then (429/503: its Retry-After), for firing and sending alike.
func (c *Core) Finished(job SendJob, until time.Time) {
	if job.from != c {
		return
	}
	r := c.routes[job.route]
	c.active--
	r.host.active--
	r.queue.active--
	if until.After(r.host.blockedUntil) {
		r.host.blockedUntil = until
	}
	if r.host.parked.len() > 0 && c.now.Before(r.host.blockedUntil) {
		c.blocked[r.host] = struct{}{} // woken when the block ends
	}
	c.wakeSends(&r.host.parked, func() bool { return r.host.active < c.cfg.TargetConcurrency && !c.now.Before(r.host.blockedUntil) })
	c.wakeSends(&r.queue.parked, func() bool { return r.queue.active < c.cfg.QueueConcurrency })
	c.wakeSends(&c.sendFull, func() bool { return c.active < c.cfg.Workers })
}

// releaseSends moves the fired deliveries whose time has come to their
// routes' send queues, opens the hosts whose Retry-After ended, and says
// when it next has something to do (zero: nothing timed).
func (c *Core) releaseSends(now time.Time) time.Time {
	for len(c.pace) > 0 && c.pace[0].task.DueAt <= now.UnixNano() {
		p := heap.Pop(&c.pace).(pendingSend)
		r := c.routes[p.route]
		r.sending.push(p.task)
		if r.parkedOn == nil {
			c.trySend(r)
		}
	}
	var wake time.Time
	if len(c.pace) > 0 {
		wake = time.Unix(0, c.pace[0].task.DueAt)
	}
	for h := range c.blocked {
		switch {
		case h.parked.len() == 0:
			delete(c.blocked, h)
		case !now.Before(h.blockedUntil):
			delete(c.blocked, h)
			c.wakeSends(&h.parked, func() bool { return h.active < c.cfg.TargetConcurrency && !now.Before(h.blockedUntil) })
		case wake.IsZero() || h.blockedUntil.Before(wake):
			wake = h.blockedUntil
		}
	}
	return wake
}

// trySend hands out r's deliveries while every send gate lets them go,
// then parks r on the gate that holds it.
func (c *Core) trySend(r *route) {
	for r.sending.len() > 0 {
		if gate := c.sendHeldBy(r); gate != nil {
			gate.push(r)
			if gate == &r.host.parked && c.now.Before(r.host.blockedUntil) {
				c.blocked[r.host] = struct{}{} // woken when the block ends
			}
			return
		}
		t := r.sending.pop()
		c.active++
		r.host.active++
		r.queue.active++
		c.out.Send = append(c.out.Send, SendJob{Task: t, Route: r.key, route: r.index, from: c})
	}
}

// sendHeldBy is the send gate that holds r back now, nil when none does.
func (c *Core) sendHeldBy(r *route) *parkList {
	switch {
	case c.active >= c.cfg.Workers:
		return &c.sendFull
	case r.host.active >= c.cfg.TargetConcurrency || c.now.Before(r.host.blockedUntil):
		return &r.host.parked
	case r.queue.active >= c.cfg.QueueConcurrency:
		return &r.queue.parked
	}
	return nil
}

// wakeSends tries the routes parked on a gate while it has room: each
// either takes the room or moves on to the gate that still holds it.
func (c *Core) wakeSends(p *parkList, room func() bool) {
	for p.len() > 0 && room() {
		c.trySend(p.pop())
	}
}
