package leader

import (
	"math"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/wheel"
)

// A released task waits in its route's ready list until the gates let it
// go: its queue's (paused, rate limit, concurrency) and, for push
// delivery, its target host's (concurrency, Retry-After) and the
// scheduler's cap on deliveries in flight. Only then is it fired (or
// leased), so a task held back stays scheduled: a new leader finds it in
// the due index, and memory holds no more than the wheel did.

// route is the tasks of one queue going to one host (or to pull workers).
type route struct {
	key   fsm.Route
	index uint32
	queue *queueGate
	host  *hostGate // nil for pull
	pull  bool
	ready fifo[*wheel.Entry[item]] // released, in release order

	// The send side (push routes): deliveries whose Fire committed and
	// whose time came, waiting for the send gates (send.go).
	sending  fifo[*fsmpb.Task]
	parkedOn *parkList // the send gate it waits on; nil when none
}

func (r *route) push(e *wheel.Entry[item]) { r.ready.push(e) }

func (r *route) waiting() int { return r.ready.len() }

// pop takes the oldest ready entry.
func (r *route) pop() *wheel.Entry[item] { return r.ready.pop() }

// queueGate applies a queue's settings, and its share of the workers.
type queueGate struct {
	settings *fsmpb.Queue
	running  int
	pushing  int // of running, the webhook deliveries
	tokens   float64
	refilled time.Time
	pull     *route // the queue's pull route, if any

	active int      // deliveries being sent (QueueConcurrency)
	parked parkList // send routes waiting for active to drop
}

// allow reports whether one more task of the queue may start at now
// (spend then takes its token). When it may not, retry says when to look
// again (zero: when a running task stops or the settings change).
func (q *queueGate) allow(now time.Time) (ok bool, retry time.Time) {
	s := q.settings
	if s.GetPaused() || s.GetMaxConcurrent() > 0 && q.running >= int(s.GetMaxConcurrent()) {
		return false, time.Time{}
	}
	rate := s.GetRate()
	if rate <= 0 {
		return true, time.Time{}
	}
	burst := fsm.Burst(s)
	q.tokens = min(burst, q.tokens+now.Sub(q.refilled).Seconds()*rate)
	q.refilled = now
	if q.tokens < 1 {
		// Rounded up, and at least a nanosecond: rounded down, the
		// token may still be short of 1 then, and the wait zero.
		wait := max(1, time.Duration(math.Ceil((1-q.tokens)/rate*float64(time.Second))))
		return false, now.Add(wait)
	}
	return true, time.Time{}
}

func (q *queueGate) spend() {
	if q.settings.GetRate() > 0 {
		q.tokens--
	}
	q.running++
}

// hostGate is one target host's state, for firing and for sending alike:
// the deliveries fired and not finished (a quarter of MaxInFlight), those
// being sent (TargetConcurrency), and the host's Retry-After (429/503),
// which holds back both its firing and its sending.
type hostGate struct {
	running      int
	active       int
	blockedUntil time.Time
	parked       parkList // send routes waiting for active to drop
}

// gates is the core's dispatch state.
type gates struct {
	routes     []*route
	routeIndex map[fsm.Route]uint32
	queues     map[string]*queueGate
	hosts      map[string]*hostGate
	// reserved maps each task handed out (fired or leased) and not yet
	// stopped to its route; inFlight counts the push ones.
	reserved map[string]uint32
	inFlight int
	capped   bool // see full
}

func newGates() gates {
	return gates{
		routeIndex: map[fsm.Route]uint32{}, queues: map[string]*queueGate{},
		hosts: map[string]*hostGate{}, reserved: map[string]uint32{},
	}
}

// routeOf returns the index of route r, making it on first sight.
func (c *Core) routeOf(r fsm.Route) uint32 {
	g := &c.gates
	if i, ok := g.routeIndex[r]; ok {
		return i
	}
	q := c.queue(r.Queue)
	rt := &route{key: r, index: uint32(len(g.routes)), queue: q, pull: r.Pull}
	if r.Pull {
		q.pull = rt
	} else {
		h := g.hosts[r.Host]
		if h == nil {
			h = &hostGate{}
			g.hosts[r.Host] = h
		}
		rt.host = h
	}
	g.routes = append(g.routes, rt)
	g.routeIndex[r] = rt.index
	return rt.index
}

func (c *Core) queue(name string) *queueGate {
	q := c.queues[name]
	if q == nil {
		q = &queueGate{settings: c.settings(name), refilled: c.now}
		q.tokens = fsm.Burst(q.settings)
		c.queues[name] = q
	}
	return q
}

func (g *gates) queueChanged(name string, settings *fsmpb.Queue) {
	if q := g.queues[name]; q != nil {
		q.settings = settings
		q.tokens = min(q.tokens, fsm.Burst(q.settings))
	}
}

// reserve counts a task handed out against its queue and host.
func (g *gates) reserve(key string, route uint32) {
	if _, ok := g.reserved[key]; ok {
		return
	}
	g.reserved[key] = route
	r := g.routes[route]
	r.queue.spend()
	if r.host != nil {
		r.host.running++
		r.queue.pushing++
		g.inFlight++
	}
}

// unreserve releases what reserve counted, once the task stopped running
// (or its fire or lease was not accepted).
func (g *gates) unreserve(key string) {
	route, ok := g.reserved[key]
	if !ok {
		return
	}
	delete(g.reserved, key)
	r := g.routes[route]
	r.queue.running--
	if r.host != nil {
		r.host.running--
		r.queue.pushing--
		g.inFlight--
	}
}

// dispatch fires what the gates let go from the push routes and serves
// the lease requests, and returns when it next needs to look (far in the
// future when only a change can open a gate).
func (c *Core) dispatch(now time.Time) time.Time {
	wake := now.Add(time.Hour)
	later := func(t time.Time) {
		if !t.IsZero() && t.Before(wake) {
			wake = t
		}
	}
	for _, r := range c.routes {
		if r.pull || r.waiting() == 0 {
			continue
		}
		for r.waiting() > 0 {
			if e := r.ready.peek(); e.Value.gone {
				c.recycle(r.pop())
				continue
			}
			if c.full(r) {
				break
			}
			if now.Before(r.host.blockedUntil) {
				later(r.host.blockedUntil)
				break
			}
			ok, retry := r.queue.allow(now)
			if !ok {
				later(retry)
				break
			}
			e := r.pop()
			c.hand(e)
			c.out.Fire = append(c.out.Fire, &fsmpb.FireItem{Id: unpackID(e.Value.key), DueAt: e.Value.due})
			c.recycle(e)
		}
	}
	for queue, ws := range c.waiters {
		later(c.serveWaiters(queue, ws, now))
	}
	return wake
}

// full reports whether no more webhook deliveries may be fired for now,
// in all or by route r: its host and its queue may each have a quarter of
// the cap, so that the tasks of one host or queue waiting for a slow
// target never take it all. Once the cap on all is reached, firing
// resumes only when an eighth of it is free again: it goes out in large
// Fire entries, not one task per delivery that finished.
func (c *Core) full(r *route) bool {
	cap := c.cfg.MaxInFlight
	if c.inFlight >= cap {
		c.capped = true
	} else if c.capped && c.inFlight <= cap-cap/8 {
		c.capped = false
	}
	share := max(cap/4, 1)
	return c.capped || r.host.running >= share || r.queue.pushing >= share
}

// hand reserves a ready entry's task, which leaves the wheel's keeping.
func (c *Core) hand(e *wheel.Entry[item]) {
	delete(c.entries, e.Value.key)
	c.reserve(e.Value.key, e.Value.route)
}
