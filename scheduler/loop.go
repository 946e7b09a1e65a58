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

// item is what the wheel holds for a task: enough to fire it.
type item struct {
	key string // the task id, packed (packID)
	due int64  // unix ns
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

// loop owns the wheel. Everything in it runs on the scheduler's Run
// goroutine.
type loop struct {
	s       *Scheduler
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

	released []*fsmpb.FireItem
}

func (s *Scheduler) newLoop(term uint64, now time.Time) *loop {
	w, err := wheel.New[item](time.Millisecond, 512, now)
	if err != nil {
		panic(err) // constant, valid parameters
	}
	return &loop{s: s, term: term, wheel: w, entries: map[string]*wheel.Entry[item]{}, lastRefill: now}
}

func (s *Scheduler) loop(ctx context.Context, term uint64, fires chan<- []*fsmpb.FireItem) {
	defer close(fires)
	defer s.loaded.Store(0)
	clock := s.cfg.Clock
	l := s.newLoop(term, clock.Now())
	l.refireRunning()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := clock.Now()
		changes, retries, reset := s.takeChanges()
		if reset {
			s.log.Info("state restored from a snapshot: rebuilding the wheel")
			l = s.newLoop(term, now)
			l.refireRunning()
		}
		for _, c := range changes {
			l.change(c)
		}
		l.released = append(l.released, retries...)
		if !now.Before(l.nextLoad) {
			l.load(now)
		}
		l.wheel.Advance(now, l.release)
		if len(l.released) > 0 {
			select {
			case fires <- l.released:
			case <-ctx.Done():
				return
			}
			l.released = nil
		}
		s.loaded.Store(int64(l.wheel.Len()))
		wakeAt := l.nextLoad
		if next, ok := l.wheel.Next(); ok && next.Before(wakeAt) {
			wakeAt = next
		}
		timer.Reset(max(0, wakeAt.Sub(clock.Now())))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// refireRunning fires again, as their next attempt, the tasks found
// running when the wheel is built: at the start of a term they were left by
// an earlier leader, which is gone, so whether it delivered them is
// unknown. After a restore from a snapshot they may even carry this term,
// or a later one (a backup of another cluster); those are reclaimed, since
// whatever was in flight for them belongs to a state that was replaced.
func (l *loop) refireRunning() {
	tasks, err := l.s.store.Running()
	if err != nil {
		l.s.log.Error("list running tasks", "err", err)
		return
	}
	for _, t := range tasks {
		l.released = append(l.released, &fsmpb.FireItem{Id: t.Id, DueAt: t.DueAt, Reclaim: t.FireTerm >= l.term})
	}
	if len(l.released) > 0 {
		l.s.log.Info("firing again tasks left running by an earlier leader", "tasks", len(l.released))
	}
}

func (l *loop) atOrBeforeFrontier(k fsm.DueKey) bool {
	return l.frontier != nil && !l.frontier.Less(k)
}

func (l *loop) change(c fsm.Change) {
	key := packID(c.ID)
	if e, ok := l.entries[key]; ok {
		l.wheel.Cancel(e)
		l.drop(e)
	}
	if c.Due && l.atOrBeforeFrontier(fsm.DueKey{At: c.DueAt, ID: c.ID}) {
		l.add(key, c.DueAt)
	}
}

// add puts a task in the wheel, to be released FireLead before it is due,
// or releases it at once if that moment has passed.
func (l *loop) add(key string, due int64) {
	var e *wheel.Entry[item]
	if n := len(l.free); n > 0 {
		e, l.free = l.free[n-1], l.free[:n-1]
	} else {
		e = new(wheel.Entry[item])
	}
	e.Value = item{key: key, due: due}
	if l.wheel.Add(e, time.Unix(0, due).Add(-l.s.cfg.FireLead)) {
		l.entries[key] = e
		return
	}
	l.released = append(l.released, &fsmpb.FireItem{Id: unpackID(key), DueAt: due})
	e.Value = item{}
	l.free = append(l.free, e)
}

func (l *loop) drop(e *wheel.Entry[item]) {
	delete(l.entries, e.Value.key)
	e.Value = item{}
	l.free = append(l.free, e)
}

func (l *loop) release(e *wheel.Entry[item]) {
	l.released = append(l.released, &fsmpb.FireItem{Id: unpackID(e.Value.key), DueAt: e.Value.due})
	l.drop(e)
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
	n, err := l.s.store.ScanDue(l.cursor, until, limit, func(k fsm.DueKey) bool {
		if k.At <= nowNs {
			if l.tokens < 1 {
				stopped = true
				return false
			}
			l.tokens--
		}
		l.cursor = &k
		if key := packID(k.ID); l.entries[key] == nil {
			l.add(key, k.At)
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
