package scheduler

import (
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// sendGates decides which fired deliveries may be sent now: at most
// workers at once, perHost to one target host, perQueue of one queue, and
// nothing to a host inside its Retry-After. A delivery that may not go
// waits in its route (its queue and host) and holds no worker. A route
// held back waits on the one gate that holds it (a host, a queue, or the
// worker cap) and is looked at again when that gate opens, so a slow host
// or queue delays only its own deliveries, and routes held back by the
// worker cap take turns.
//
// It is pure: no goroutines, no clock; the dispatcher feeds it events
// with their time and sends what take returns.
type sendGates struct {
	workers, perHost, perQueue int

	active int      // deliveries handed out, not finished
	full   parkList // routes held back by the worker cap
	routes map[fsm.Route]*sendRoute
	hosts  map[string]*sendHost
	queues map[string]*sendQueue
	out    []sendJob
}

// sendJob is a delivery that may go now.
type sendJob struct {
	task  *fsmpb.Task
	route fsm.Route
}

// sendRoute is the deliveries of one queue to one host, waiting.
type sendRoute struct {
	key      fsm.Route
	host     *sendHost
	queue    *sendQueue
	waiting  []*fsmpb.Task
	head     int       // waiting[:head] are taken
	parkedOn *parkList // the gate list it waits on; nil when none
}

type sendHost struct {
	active       int // deliveries handed out, not finished
	routes       int // routes with deliveries waiting
	blockedUntil time.Time
	parked       parkList
}

type sendQueue struct {
	active, routes int
	parked         parkList
}

// parkList is the routes waiting on one gate, first come first served.
type parkList struct {
	routes []*sendRoute
	head   int
}

func (p *parkList) len() int { return len(p.routes) - p.head }

func (p *parkList) push(r *sendRoute) {
	r.parkedOn = p
	p.routes = append(p.routes, r)
}

func (p *parkList) pop() *sendRoute {
	r := p.routes[p.head]
	p.routes[p.head] = nil
	p.head++
	if p.head == len(p.routes) {
		p.routes, p.head = p.routes[:0], 0
	}
	r.parkedOn = nil
	return r
}

func newSendGates(workers, perHost, perQueue int) *sendGates {
	return &sendGates{
		workers: max(workers, 1), perHost: max(perHost, 1), perQueue: max(perQueue, 1),
		routes: map[fsm.Route]*sendRoute{}, hosts: map[string]*sendHost{}, queues: map[string]*sendQueue{},
	}
}

// add queues a fired delivery of t by route r.
func (g *sendGates) add(t *fsmpb.Task, r fsm.Route, now time.Time) {
	rt := g.routes[r]
	if rt == nil {
		rt = &sendRoute{key: r, host: g.host(r.Host), queue: g.queue(r.Queue)}
		rt.host.routes++
		rt.queue.routes++
		g.routes[r] = rt
	}
	rt.waiting = append(rt.waiting, t)
	if rt.parkedOn == nil {
		g.try(rt, now)
	}
}

// finished records that a delivery by route r ended; until, if set, holds
// the host back till then (429/503).
func (g *sendGates) finished(r fsm.Route, until, now time.Time) {
	h, q := g.hosts[r.Host], g.queues[r.Queue]
	if h == nil || q == nil {
		return // not handed out here
	}
	g.active--
	h.active--
	q.active--
	if until.After(h.blockedUntil) {
		h.blockedUntil = until
	}
	g.wakeHost(h, now)
	g.wake(&q.parked, func() bool { return q.active < g.perQueue }, now)
	g.wake(&g.full, func() bool { return g.active < g.workers }, now)
	g.forget(r, now)
}

// tick opens the hosts whose Retry-After has passed.
func (g *sendGates) tick(now time.Time) {
	for name, h := range g.hosts {
		if !now.Before(h.blockedUntil) {
			g.wakeHost(h, now)
			g.forget(fsm.Route{Host: name}, now)
		}
	}
}

// next is when tick next has something to do: the earliest end of a
// block still to come (zero: none). It looks at every host, so the
// dispatcher asks only after a tick; finished's until is a block's end
// too.
func (g *sendGates) next(now time.Time) time.Time {
	var at time.Time
	for _, h := range g.hosts {
		if now.Before(h.blockedUntil) && (at.IsZero() || h.blockedUntil.Before(at)) {
			at = h.blockedUntil
		}
	}
	return at
}

// take returns the deliveries that may go now.
func (g *sendGates) take() []sendJob {
	out := g.out
	g.out = nil
	return out
}

// try hands out r's deliveries while every gate lets them go, then parks
// r on the gate that holds it, or forgets it when nothing is left.
func (g *sendGates) try(r *sendRoute, now time.Time) {
	for r.head < len(r.waiting) {
		if gate := g.heldBy(r, now); gate != nil {
			gate.push(r)
			return
		}
		t := r.waiting[r.head]
		r.waiting[r.head] = nil
		r.head++
		if r.head > 1024 && r.head*2 > len(r.waiting) {
			r.waiting = append(r.waiting[:0], r.waiting[r.head:]...)
			r.head = 0
		}
		g.active++
		r.host.active++
		r.queue.active++
		g.out = append(g.out, sendJob{task: t, route: r.key})
	}
	delete(g.routes, r.key)
	r.host.routes--
	r.queue.routes--
	g.forget(r.key, now)
}

// heldBy is the gate that holds r back now, nil when none does.
func (g *sendGates) heldBy(r *sendRoute, now time.Time) *parkList {
	switch {
	case g.active >= g.workers:
		return &g.full
	case r.host.active >= g.perHost || now.Before(r.host.blockedUntil):
		return &r.host.parked
	case r.queue.active >= g.perQueue:
		return &r.queue.parked
	}
	return nil
}

// wake tries the routes parked on a gate while it has room: each either
// takes the room or moves on to the gate that still holds it.
func (g *sendGates) wake(p *parkList, room func() bool, now time.Time) {
	for p.len() > 0 && room() {
		g.try(p.pop(), now)
	}
}

func (g *sendGates) wakeHost(h *sendHost, now time.Time) {
	g.wake(&h.parked, func() bool { return h.active < g.perHost && !now.Before(h.blockedUntil) }, now)
}

// forget drops the state of r's host and queue once nothing refers to it
// (a host's only while no Retry-After holds it).
func (g *sendGates) forget(r fsm.Route, now time.Time) {
	if h := g.hosts[r.Host]; h != nil && h.active == 0 && h.routes == 0 && !now.Before(h.blockedUntil) {
		delete(g.hosts, r.Host)
	}
	if q := g.queues[r.Queue]; q != nil && q.active == 0 && q.routes == 0 {
		delete(g.queues, r.Queue)
	}
}

func (g *sendGates) host(name string) *sendHost {
	h := g.hosts[name]
	if h == nil {
		h = &sendHost{}
		g.hosts[name] = h
	}
	return h
}

func (g *sendGates) queue(name string) *sendQueue {
	q := g.queues[name]
	if q == nil {
		q = &sendQueue{}
		g.queues[name] = q
	}
	return q
}
