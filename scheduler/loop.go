package scheduler

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/wheel"
)

// itemKind says what a wheel entry stands for.
type itemKind uint8

const (
	// itemDue: a scheduled task, released when it may be dispatched.
	itemDue itemKind = iota
	// itemLeaseEnd: a leased task, released when its lease runs out.
	itemLeaseEnd
)

// item is what the wheel holds for a task: enough to dispatch it. With
// the wheel's own fields it fills a 64-byte allocation exactly.
type item struct {
	key   string // the task id, packed (packID)
	due   int64  // unix ns
	route uint32 // index into loop.routes
	kind  itemKind
	// gone: cancelled while waiting in a ready list; skipped there.
	gone bool
}

// packID shortens an id in canonical UUID form (the ids the server makes)
// to a NUL byte and the UUID's 16 bytes: the wheel and its index then hold
// 24 bytes of heap for it instead of 48. Other ids are kept as they are;
// they are printable ASCII, so never start with NUL.
func packID(id string) string {
	if len(id) != 36 || strings.ContainsAny(id, "ABCDEF") {
		return id // upper case: unpacking would change it
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return id
	}
	var key [17]byte
	copy(key[1:], u[:])
	return string(key[:])
}

// unpackID is the id packID packed.
func unpackID(key string) string {
	if len(key) != 1+len(uuid.UUID{}) || key[0] != 0 {
		return key
	}
	var u uuid.UUID
	copy(u[:], key[1:])
	return u.String()
}

const (
	// scanBatch caps the due-index entries read per load.
	scanBatch = 10_000
	// retryBehind is how soon the loader looks again when it stopped early
	// (catch-up rate, MaxLoaded, or scanBatch).
	retryBehind = 10 * time.Millisecond
	// maxKeyID sorts after every task id (ids are printable ASCII).
	maxKeyID = "\xff"
)

// loop owns the wheel and the dispatch gates. Everything in it runs on the
// scheduler's Run goroutine.
type loop struct {
	gates // its s is the scheduler

	run     uint64
	term    uint64
	wheel   *wheel.Wheel[item]
	entries map[string]*wheel.Entry[item]
	free    []*wheel.Entry[item]

	// cursor is the last due-index key the loader visited; frontier the
	// key up to which every scheduled task is in the wheel (or was
	// released): a change at or before it goes into the wheel, a later
	// one is left for the loader. nil: nothing loaded yet.
	cursor, frontier *fsm.DueKey
	nextLoad         time.Time

	tokens     float64 // catch-up budget: overdue tasks that may load now
	lastRefill time.Time

	released []*fsmpb.FireItem    // push tasks to fire
	expired  []string             // packed keys of leases that ran out
	waiters  map[string][]*waiter // lease requests, by queue, oldest first
}

func (s *Scheduler) newLoop(run, term uint64, now time.Time) *loop {
	w, err := wheel.New[item](time.Millisecond, 512, now)
	if err != nil {
		panic(err) // constant, valid parameters
	}
	return &loop{
		gates: newGates(s),
		run:   run, term: term, wheel: w, entries: map[string]*wheel.Entry[item]{}, lastRefill: now,
		waiters: map[string][]*waiter{},
	}
}

func (s *Scheduler) loop(ctx context.Context, run, term uint64, fires chan<- []*fsmpb.FireItem, expiries chan<- []string) {
	defer close(fires)
	defer close(expiries)
	defer s.loaded.Store(0)
	clock := s.cfg.Clock
	l := s.newLoop(run, term, clock.Now())
	l.resumeRunning()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := clock.Now()
		in := s.take()
		if in.reset {
			s.log.Info("state restored from a snapshot: rebuilding the wheel")
			l.failWaiters()
			l = s.newLoop(run, term, now)
			l.resumeRunning()
		}
		for _, c := range in.changes {
			l.change(c)
		}
		for _, key := range in.unreserve {
			l.unreserve(key)
		}
		for _, g := range in.giveBack {
			l.giveBack(g)
		}
		for _, b := range in.hostBlocks {
			l.blockHost(b.host, b.until)
		}
		for _, w := range in.waiters {
			l.waiters[w.queue] = append(l.waiters[w.queue], w)
		}
		l.released = append(l.released, in.retries...)
		if !now.Before(l.nextLoad) {
			l.load(now)
		}
		l.wheel.Advance(now, l.release)
		wakeAt := l.dispatch(now)
		if len(l.released) > 0 {
			select {
			case fires <- l.released:
			case <-ctx.Done():
				l.failWaiters()
				return
			}
			l.released = nil
		}
		if len(l.expired) > 0 {
			select {
			case expiries <- l.expired:
			case <-ctx.Done():
				l.failWaiters()
				return
			}
			l.expired = nil
		}
		s.loaded.Store(int64(len(l.entries)))
		if l.nextLoad.Before(wakeAt) {
			wakeAt = l.nextLoad
		}
		if next, ok := l.wheel.Next(); ok && next.Before(wakeAt) {
			wakeAt = next
		}
		timer.Reset(max(0, wakeAt.Sub(clock.Now())))
		select {
		case <-ctx.Done():
			l.failWaiters()
			return
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// resumeRunning takes over the tasks found running when the wheel is
// built. Leased ones keep their lease: they are put in the wheel to expire
// at its end. The others were being delivered by an earlier leader, which
// is gone, so whether it delivered them is unknown: they are fired again
// as their next attempt. After a restore from a snapshot they may even
// carry this term, or a later one (a backup of another cluster); those are
// reclaimed, since whatever was in flight for them belongs to a state that
// was replaced.
func (l *loop) resumeRunning() {
	tasks, err := l.s.store.Running()
	if err != nil {
		l.s.log.Error("list running tasks", "err", err)
		return
	}
	refired := 0
	for _, t := range tasks {
		key := packID(t.Id)
		l.reserve(key, l.routeOf(fsm.RouteOf(t)))
		if t.LeaseExpiresAt != 0 {
			l.addLeaseEnd(key, t.LeaseExpiresAt)
			continue
		}
		l.released = append(l.released, &fsmpb.FireItem{Id: t.Id, DueAt: t.DueAt, Reclaim: t.FireTerm >= l.term})
		refired++
	}
	if refired > 0 {
		l.s.log.Info("firing again tasks left running by an earlier leader", "tasks", refired)
	}
}

func (l *loop) atOrBeforeFrontier(k fsm.DueKey) bool {
	return l.frontier != nil && !l.frontier.Less(k)
}

func (l *loop) change(c fsm.Change) {
	if c.Kind == fsm.ChangeQueue {
		l.queueChanged(c.ID)
		return
	}
	key := packID(c.ID)
	l.forget(key)
	switch c.Kind {
	case fsm.ChangeDue:
		if l.atOrBeforeFrontier(fsm.DueKey{At: c.At, ID: c.ID}) {
			l.add(key, c.At, l.routeOf(c.Route))
		}
	case fsm.ChangeLeased:
		l.addLeaseEnd(key, c.At)
	case fsm.ChangeStopped:
		l.unreserve(key)
	}
}

// forget takes the task's entry out of the wheel, or marks it gone in the
// ready list that holds it.
func (l *loop) forget(key string) {
	e, ok := l.entries[key]
	if !ok {
		return
	}
	delete(l.entries, key)
	if l.wheel.Cancel(e) {
		l.recycle(e)
		return
	}
	e.Value.gone = true // in a ready list, which recycles it
}

func (l *loop) entry(v item) *wheel.Entry[item] {
	var e *wheel.Entry[item]
	if n := len(l.free); n > 0 {
		e, l.free = l.free[n-1], l.free[:n-1]
	} else {
		e = new(wheel.Entry[item])
	}
	e.Value = v
	return e
}

func (l *loop) recycle(e *wheel.Entry[item]) {
	e.Value = item{}
	l.free = append(l.free, e)
}

// add puts a scheduled task in the wheel, to be released FireLead before
// it is due: its Fire (or lease) is committed by then, and the send (or
// the answer to the worker) waits for the due time. A moment already
// passed releases it at once.
func (l *loop) add(key string, due int64, route uint32) {
	e := l.entry(item{key: key, due: due, route: route, kind: itemDue})
	l.entries[key] = e
	if !l.wheel.Add(e, time.Unix(0, due).Add(-l.s.cfg.FireLead)) {
		l.routes[route].push(e)
	}
}

// addLeaseEnd puts a leased task in the wheel, to be released when its
// lease ends.
func (l *loop) addLeaseEnd(key string, until int64) {
	e := l.entry(item{key: key, due: until, kind: itemLeaseEnd})
	l.entries[key] = e
	if !l.wheel.Add(e, time.Unix(0, until)) {
		l.release(e)
	}
}

func (l *loop) release(e *wheel.Entry[item]) {
	if e.Value.kind == itemLeaseEnd {
		l.expired = append(l.expired, e.Value.key)
		delete(l.entries, e.Value.key)
		l.recycle(e)
		return
	}
	l.routes[e.Value.route].push(e)
}

// load scans the due index from the cursor up to now+Horizon into the
// wheel. Overdue tasks spend catch-up tokens; when those run out, or the
// wheel holds MaxLoaded tasks, the scan stops and resumes shortly.
func (l *loop) load(now time.Time) {
	cfg := l.s.cfg
	rate := float64(cfg.CatchUpRate)
	l.tokens = min(rate/10+1, l.tokens+now.Sub(l.lastRefill).Seconds()*rate)
	l.lastRefill = now

	limit := min(scanBatch, cfg.MaxLoaded-len(l.entries))
	if limit <= 0 {
		l.nextLoad = now.Add(retryBehind)
		return
	}
	until := now.Add(cfg.Horizon).UnixNano()
	nowNs := now.UnixNano()
	stopped := false
	n, err := l.s.store.ScanDue(l.cursor, until, limit, func(k fsm.DueKey, r fsm.Route) bool {
		if k.At <= nowNs {
			if l.tokens < 1 {
				stopped = true
				return false
			}
			l.tokens--
		}
		l.cursor = &k
		if key := packID(k.ID); l.entries[key] == nil {
			l.add(key, k.At, l.routeOf(r))
		}
		return true
	})
	if err != nil {
		l.s.log.Error("scan due index", "err", err)
		l.nextLoad = now.Add(time.Second)
		return
	}
	if stopped || n == limit {
		l.frontier = l.cursor
		l.nextLoad = now.Add(retryBehind)
		return
	}
	l.frontier = &fsm.DueKey{At: until, ID: maxKeyID}
	l.nextLoad = now.Add(cfg.Horizon / 4)
}
