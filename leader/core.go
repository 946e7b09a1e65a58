package leader

import (
	"fmt"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/wheel"
	"google.golang.org/protobuf/proto"
)

// Store is what the core reads of the state machine.
type Store interface {
	ScanDue(from *fsm.DueKey, until int64, limit int, fn func(fsm.DueKey, fsm.Route) bool) (int, error)
	Running() ([]*fsmpb.Task, error)
	Queue(name string) (*fsm.QueueInfo, error)
}

// Config tunes the core. Zero values take the defaults named.
type Config struct {
	// Horizon is how far ahead tasks are loaded into the wheel (1m).
	Horizon time.Duration
	// MaxLoaded caps the tasks held in the wheel (1,000,000).
	MaxLoaded int
	// FireLead is how long before its time a task is fired, so the Fire
	// entry is committed when the time comes (20ms).
	FireLead time.Duration
	// FireBatch lets tasks falling due close together share a Fire entry
	// (and its raft commit): a task is fired between FireLead and
	// FireLead+FireBatch before its time, with those due within FireBatch
	// after it (20ms). A lease's end is noticed up to FireBatch late.
	FireBatch time.Duration
	// CatchUpRate is how many overdue tasks per second are loaded after
	// leadership starts (5,000).
	CatchUpRate int
	// MaxInFlight caps the webhook deliveries fired and not yet finished
	// (16,384), and a quarter of it those of one host or one queue:
	// beyond it, due tasks wait, still scheduled.
	MaxInFlight int
	// Workers is the number of deliveries sent at once (256).
	Workers int
	// TargetConcurrency caps the deliveries sent at once to one target
	// host (64), so that a slow receiver cannot take every worker. A host
	// is the URL's host and port however they are spelled (fsm.Route).
	TargetConcurrency int
	// QueueConcurrency caps the deliveries of one queue sent at once
	// (half of Workers), so that one queue's slow targets, under any
	// number of names, leave the other queues their workers. Keep it
	// above TargetConcurrency, or one slow host holds all of its queue.
	QueueConcurrency int
	// Share is how many groups a queue's tasks are spread over (1): each
	// group's core enforces its share of the queue's rate limit, burst
	// and concurrency cap, so that together they enforce the whole.
	Share int
}

// SetDefaults fills in the zero values.
func (c *Config) SetDefaults() {
	if c.Horizon <= 0 {
		c.Horizon = time.Minute
	}
	if c.MaxLoaded <= 0 {
		c.MaxLoaded = 1_000_000
	}
	if c.FireLead <= 0 {
		c.FireLead = 20 * time.Millisecond
	}
	if c.FireBatch <= 0 {
		c.FireBatch = 20 * time.Millisecond
	}
	if c.CatchUpRate <= 0 {
		c.CatchUpRate = 5000
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 16_384
	}
	if c.Workers <= 0 {
		c.Workers = 256
	}
	if c.TargetConcurrency <= 0 {
		c.TargetConcurrency = 64
	}
	if c.QueueConcurrency <= 0 {
		c.QueueConcurrency = max(c.Workers/2, 1)
	}
	if c.Share <= 0 {
		c.Share = 1
	}
}

// Output is what the shell is to do after an Advance.
type Output struct {
	// Fire is the push tasks to fire now (a FireTasks entry of the core's
	// term), in release order.
	Fire []*fsmpb.FireItem
	// Expired is the ids of leased tasks whose lease ran out: record the
	// failure of their attempt.
	Expired []string
	// Grants answers lease requests: propose each lease, then answer.
	Grants []Grant
	// Send is the deliveries to start now; there are never more in
	// flight than Workers, so each finds a worker at once.
	Send []SendJob
	// Refired counts the tasks found running under an earlier leader and
	// fired again as their next attempt (in Fire).
	Refired int
	// Errors are reads of the state machine that failed (logged; the core
	// tries again).
	Errors []error
	// Wake is when to Advance next at the latest, if nothing else
	// happens meanwhile.
	Wake time.Time
}

// Core is one group leader's duties for one term. Every method runs on
// the shell's one goroutine.
type Core struct {
	cfg   Config
	store Store
	now   time.Time // of the last Advance (or New)

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

	gates
	waiters map[string][]waiter // lease requests by queue, oldest first

	// The send side (send.go).
	pace     paceQueue // fired, waiting for their due time
	sendSeq  uint64
	active   int                    // deliveries being sent
	sendFull parkList               // send routes waiting for a worker
	blocked  map[*hostGate]struct{} // hosts with routes parked inside a Retry-After

	out Output
}

// New returns the core of a leader of term that starts at now, and takes
// over the tasks found running: leased ones keep their lease (they expire
// at its end); the others were being delivered by an earlier leader,
// which is gone, so they are fired again as their next attempt. After a
// restore from a snapshot they may even carry this term, or a later one
// (a backup of another cluster); those are reclaimed, since whatever was
// in flight for them belongs to a state that was replaced.
func New(store Store, cfg Config, term uint64, now time.Time) *Core {
	cfg.SetDefaults()
	now = now.Round(0) // the wall clock alone (clock.go)
	c := &Core{
		cfg: cfg, store: store, now: now,
		wheel: newWheel(now), entries: map[string]*wheel.Entry[item]{}, lastRefill: now,
		gates: newGates(), waiters: map[string][]waiter{}, blocked: map[*hostGate]struct{}{},
	}
	tasks, err := store.Running()
	if err != nil {
		c.out.Errors = append(c.out.Errors, fmt.Errorf("list running tasks: %w", err))
		return c
	}
	for _, t := range tasks {
		key := packID(t.Id)
		c.reserve(key, c.routeOf(fsm.RouteOf(t)))
		if t.LeaseExpiresAt != 0 {
			c.addLeaseEnd(key, t.LeaseExpiresAt)
			continue
		}
		c.out.Fire = append(c.out.Fire, &fsmpb.FireItem{Id: t.Id, DueAt: t.DueAt, Reclaim: t.FireTerm >= term})
		c.out.Refired++
	}
	return c
}

// newWheel is an empty wheel whose clock starts at now: millisecond
// ticks, 512 buckets a level.
func newWheel(now time.Time) *wheel.Wheel[item] {
	w, err := wheel.New[item](time.Millisecond, 512, now)
	if err != nil {
		panic(err) // constant, valid parameters
	}
	return w
}

// Loaded is the number of tasks held in the wheel: bounded by what falls
// due within the horizon and by MaxLoaded, not by the tasks pending.
func (c *Core) Loaded() int { return len(c.entries) }

// Advance does what is due at now: loads the due index up to the
// horizon, releases what falls due (FireLead to FireLead+FireBatch early)
// through the gates, serves the lease requests, and says what to do and
// when to look next.
func (c *Core) Advance(now time.Time) Output {
	// The wall clock alone, which may step back (clock.go); by less than
	// a tick of the wheel changes nothing.
	now = now.Round(0)
	if c.now.Sub(now) >= time.Millisecond {
		c.stepBack(now)
	}
	c.now = now
	// Deliveries due now first: the rest may take a while (a load).
	sendAt := c.releaseSends(now)
	if !now.Before(c.nextLoad) {
		c.load(now)
	}
	// The wheel moves once its first entry has waited FireBatch: with it
	// go all due by then, in one Fire.
	if next, ok := c.wheel.Next(); ok && !now.Before(next.Add(c.cfg.FireBatch)) {
		c.wheel.Advance(now, c.release)
	}
	wake := c.dispatch(now)
	if !sendAt.IsZero() && sendAt.Before(wake) {
		wake = sendAt
	}
	if c.nextLoad.Before(wake) {
		wake = c.nextLoad
	}
	if next, ok := c.wheel.Next(); ok && next.Add(c.cfg.FireBatch).Before(wake) {
		wake = next.Add(c.cfg.FireBatch)
	}
	out := c.out
	c.out = Output{}
	out.Wake = wake
	return out
}

// Changed hears of committed changes to the due index, the leases and the
// queue settings.
func (c *Core) Changed(changes []fsm.Change) {
	for _, ch := range changes {
		c.change(ch)
	}
}

func (c *Core) change(ch fsm.Change) {
	switch ch.Kind {
	case fsm.ChangeQueue:
		c.queueChanged(ch.ID, c.settings(ch.ID))
		return
	case fsm.ChangeSchedule:
		return // the schedules' own loop hears of these
	}
	key := packID(ch.ID)
	c.forget(key)
	switch ch.Kind {
	case fsm.ChangeDue:
		if c.frontier != nil && !c.frontier.Less(fsm.DueKey{At: ch.At, ID: ch.ID}) {
			c.add(key, ch.At, c.routeOf(ch.Route))
		}
	case fsm.ChangeLeased:
		c.addLeaseEnd(key, ch.At)
	case fsm.ChangeStopped:
		c.unreserve(key)
	}
}

// NotAccepted hears which tasks handed out a fire or lease did not take
// (cancelled or changed meanwhile, expired): they no longer count against
// their queue and host.
func (c *Core) NotAccepted(ids []string) {
	for _, id := range ids {
		c.unreserve(packID(id))
	}
}

// Refire releases again tasks whose Fire failed while this term leads
// (they stay reserved; the fire reclaims any whose Fire did commit).
func (c *Core) Refire(items []*fsmpb.FireItem) {
	c.out.Fire = append(c.out.Fire, items...)
}

// forget takes the task's entry out of the wheel, or marks it gone in the
// ready list that holds it.
func (c *Core) forget(key string) {
	e, ok := c.entries[key]
	if !ok {
		return
	}
	delete(c.entries, key)
	if c.wheel.Cancel(e) {
		c.recycle(e)
		return
	}
	e.Value.gone = true // in a ready list, which recycles it
}

func (c *Core) entry(v item) *wheel.Entry[item] {
	var e *wheel.Entry[item]
	if n := len(c.free); n > 0 {
		e, c.free = c.free[n-1], c.free[:n-1]
	} else {
		e = new(wheel.Entry[item])
	}
	e.Value = v
	return e
}

func (c *Core) recycle(e *wheel.Entry[item]) {
	e.Value = item{}
	c.free = append(c.free, e)
}

// add puts a scheduled task in the wheel, to be released FireLead (to
// FireLead+FireBatch) before it is due: its Fire (or lease) is committed
// by then, and the send (or the answer to the worker) waits for the due
// time. A moment already passed releases it at once, or with the wheel's
// next move (within FireBatch: Advance).
func (c *Core) add(key string, due int64, route uint32) {
	e := c.entry(item{key: key, due: due, route: route, kind: itemDue})
	c.entries[key] = e
	if !c.wheel.Add(e, c.releaseAt(e.Value)) {
		c.routes[route].push(e)
	}
}

// addLeaseEnd puts a leased task in the wheel, to be released when its
// lease ends.
func (c *Core) addLeaseEnd(key string, until int64) {
	e := c.entry(item{key: key, due: until, kind: itemLeaseEnd})
	c.entries[key] = e
	if !c.wheel.Add(e, c.releaseAt(e.Value)) {
		c.release(e)
	}
}

func (c *Core) release(e *wheel.Entry[item]) {
	if e.Value.kind == itemLeaseEnd {
		c.out.Expired = append(c.out.Expired, unpackID(e.Value.key))
		delete(c.entries, e.Value.key)
		c.recycle(e)
		return
	}
	c.routes[e.Value.route].push(e)
}

// load scans the due index from the cursor up to now+Horizon into the
// wheel. Overdue tasks spend catch-up tokens; when those run out, or the
// wheel holds MaxLoaded tasks, the scan stops and resumes shortly.
func (c *Core) load(now time.Time) {
	rate := float64(c.cfg.CatchUpRate)
	c.tokens = min(rate/10+1, c.tokens+now.Sub(c.lastRefill).Seconds()*rate)
	c.lastRefill = now

	limit := min(scanBatch, c.cfg.MaxLoaded-len(c.entries))
	if limit <= 0 {
		c.nextLoad = now.Add(retryBehind)
		return
	}
	until := now.Add(c.cfg.Horizon).UnixNano()
	nowNs := now.UnixNano()
	stopped := false
	n, err := c.store.ScanDue(c.cursor, until, limit, func(k fsm.DueKey, r fsm.Route) bool {
		if k.At <= nowNs {
			if c.tokens < 1 {
				stopped = true
				return false
			}
			c.tokens--
		}
		c.cursor = &k
		if key := packID(k.ID); c.entries[key] == nil {
			c.add(key, k.At, c.routeOf(r))
		}
		return true
	})
	if err != nil {
		c.out.Errors = append(c.out.Errors, fmt.Errorf("scan due index: %w", err))
		c.nextLoad = now.Add(time.Second)
		return
	}
	if stopped || n == limit {
		c.frontier = c.cursor
		c.nextLoad = now.Add(retryBehind)
		return
	}
	c.frontier = &fsm.DueKey{At: until, ID: maxKeyID}
	c.nextLoad = now.Add(c.cfg.Horizon / 4)
}

// settings reads a queue's settings (nil: the defaults).
func (c *Core) settings(name string) *fsmpb.Queue {
	info, err := c.store.Queue(name)
	if err != nil {
		if !isNotFound(err) {
			c.out.Errors = append(c.out.Errors, fmt.Errorf("read the settings of queue %q: %w", name, err))
		}
		return nil
	}
	return shareOf(info.Settings, c.cfg.Share)
}

// shareOf is the part of a queue's limits one of share groups enforces:
// the rate, burst and concurrency cap divided among them (each at least
// one task, so a small cap can be exceeded up to share times).
func shareOf(s *fsmpb.Queue, share int) *fsmpb.Queue {
	if share <= 1 || s.GetRate() <= 0 && s.GetMaxConcurrent() == 0 {
		return s
	}
	s = proto.Clone(s).(*fsmpb.Queue)
	n := uint32(share)
	s.Rate /= float64(share)
	if s.Burst > 0 {
		s.Burst = max(1, (s.Burst+n-1)/n)
	}
	if s.MaxConcurrent > 0 {
		s.MaxConcurrent = max(1, (s.MaxConcurrent+n-1)/n)
	}
	return s
}
