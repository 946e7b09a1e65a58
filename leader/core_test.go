package leader

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// memStore is the state machine as the core reads it: the due index,
// queue settings, running tasks.
type memStore struct {
	due     map[fsm.DueKey]fsm.Route
	queues  map[string]*fsmpb.Queue
	running []*fsmpb.Task
}

func newMemStore() *memStore {
	return &memStore{due: map[fsm.DueKey]fsm.Route{}, queues: map[string]*fsmpb.Queue{}}
}

func (m *memStore) ScanDue(from *fsm.DueKey, until int64, limit int, fn func(fsm.DueKey, fsm.Route) bool) (int, error) {
	keys := make([]fsm.DueKey, 0, len(m.due))
	for k := range m.due {
		if (from == nil || from.Less(k)) && k.At <= until {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Less(keys[j]) })
	n := 0
	for _, k := range keys {
		if n == limit || !fn(k, m.due[k]) {
			break
		}
		n++
	}
	return n, nil
}

func (m *memStore) Running() ([]*fsmpb.Task, error) { return m.running, nil }

func (m *memStore) isRunning(id string) bool {
	return slices.ContainsFunc(m.running, func(t *fsmpb.Task) bool { return t.Id == id })
}

func (m *memStore) Queue(name string) (*fsm.QueueInfo, error) {
	q, ok := m.queues[name]
	if !ok {
		return nil, fsm.ErrNotFound
	}
	return &fsm.QueueInfo{Name: name, Settings: q}, nil
}

// sim drives a core through simulated time as the shell would: it keeps
// the store and the core's changes in step, fires what the core releases
// (the Fire commits at once unless the test says otherwise), and advances
// the clock to each Wake.
type sim struct {
	t       *testing.T
	store   *memStore
	core    *Core
	now     time.Time
	tasks   map[string]fsm.DueKey // scheduled, by id
	fired   map[string][]time.Time
	order   []string          // ids in release order
	created map[string]string // id → queue
	// finish, when set, ends each fired task's attempt at once
	// (succeeded), as a fast receiver would, without sending it.
	finish bool
	// urls: the target of each push task created; sent: when each
	// delivery was handed to a worker; sending: the jobs handed out and
	// not finished.
	urls    map[string]string
	sent    map[string][]time.Time
	sending []SendJob
	dues    map[string]int64 // due time of each fired task
	// expired: when the core said each lease ran out.
	expired map[string][]time.Time
}

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func newSim(t *testing.T, cfg Config) *sim {
	s := &sim{t: t, store: newMemStore(), now: t0, tasks: map[string]fsm.DueKey{}, fired: map[string][]time.Time{}, finish: true, created: map[string]string{},
		urls: map[string]string{}, sent: map[string][]time.Time{}, dues: map[string]int64{}, expired: map[string][]time.Time{}}
	s.core = New(s.store, cfg, 1, t0)
	return s
}

func (s *sim) create(id, queue string, due time.Time, pull bool) {
	url := ""
	if !pull {
		url = "http://receiver/"
	}
	s.createTo(id, queue, due, url)
}

// createTo creates a task due at due for url (empty: a pull task).
func (s *sim) createTo(id, queue string, due time.Time, url string) {
	k := fsm.DueKey{At: due.UnixNano(), ID: id}
	r := fsm.Route{Queue: queue, Pull: url == ""}
	if url != "" {
		r = fsm.RouteOf(&fsmpb.Task{Queue: queue, Target: &fsmpb.Target{Url: url}})
		s.urls[id] = url
	}
	s.store.due[k] = r
	s.tasks[id] = k
	s.created[id] = queue
	s.core.Changed([]fsm.Change{{Kind: fsm.ChangeDue, ID: id, At: k.At, Route: r}})
}

func (s *sim) cancel(id string) {
	k := s.tasks[id]
	delete(s.store.due, k)
	delete(s.tasks, id)
	s.core.Changed([]fsm.Change{{Kind: fsm.ChangeNotDue, ID: id, At: k.At}})
}

func (s *sim) setQueue(q *fsmpb.Queue) {
	s.store.queues[q.Name] = q
	s.core.Changed([]fsm.Change{{Kind: fsm.ChangeQueue, ID: q.Name}})
}

// step advances to now and carries out the core's output, as the shell
// would: Fire entries commit at once, and their tasks go to the send side
// (which pokes the loop: the core advances again). It returns the last
// output (the deliveries handed out on the way are in s.sending).
func (s *sim) step() Output {
	s.t.Helper()
	for {
		out, fired := s.stepOnce()
		if !fired {
			return out
		}
	}
}

func (s *sim) stepOnce() (Output, bool) {
	s.t.Helper()
	out := s.core.Advance(s.now)
	if len(out.Errors) > 0 {
		s.t.Fatalf("core errors: %v", out.Errors)
	}
	var stopped []fsm.Change
	var accepted []*fsmpb.Task
	for _, it := range out.Fire {
		k, ok := s.tasks[it.Id]
		if !ok || k.At != it.DueAt {
			s.t.Fatalf("at %v the core fired %s due %d, which is not scheduled so", s.now, it.Id, it.DueAt)
		}
		// A task found running when the term began is fired again at
		// once (its send still waits for its time): its fire is not early.
		if early := time.Unix(0, it.DueAt).Sub(s.now); early > s.core.cfg.FireLead+s.core.cfg.FireBatch && !s.store.isRunning(it.Id) {
			s.t.Fatalf("at %v the core fired %s %v before it is due (lead %v, batch %v)", s.now, it.Id, early, s.core.cfg.FireLead, s.core.cfg.FireBatch)
		}
		delete(s.store.due, k)
		delete(s.tasks, it.Id)
		s.dues[it.Id] = it.DueAt
		s.fired[it.Id] = append(s.fired[it.Id], s.now)
		s.order = append(s.order, it.Id)
		if s.finish {
			stopped = append(stopped, fsm.Change{Kind: fsm.ChangeStopped, ID: it.Id})
		} else {
			accepted = append(accepted, &fsmpb.Task{Id: it.Id, Queue: s.created[it.Id], DueAt: it.DueAt, Target: &fsmpb.Target{Url: s.urls[it.Id]}})
		}
	}
	for _, id := range out.Expired {
		s.expired[id] = append(s.expired[id], s.now)
	}
	for _, job := range out.Send {
		if early := time.Unix(0, job.Task.DueAt).Sub(s.now); early > 0 {
			s.t.Fatalf("at %v the core sent %s %v before it is due", s.now, job.Task.Id, early)
		}
		s.sent[job.Task.Id] = append(s.sent[job.Task.Id], s.now)
		s.sending = append(s.sending, job)
	}
	s.core.Changed(stopped)
	// The Fire commits at once: its tasks go to the send side.
	s.core.Fired(accepted)
	return out, len(accepted) > 0
}

// runUntil steps through simulated time, waking when the core asks, up
// to end.
func (s *sim) runUntil(end time.Time) {
	s.t.Helper()
	for {
		out := s.step()
		if !out.Wake.After(s.now) {
			s.t.Fatalf("at %v the core asks to wake at %v", s.now, out.Wake)
		}
		if out.Wake.After(end) {
			s.now = end
			s.step()
			return
		}
		s.now = out.Wake
	}
}

// TestNeverEarlyAlwaysOnTime: over three simulated hours, 20,000 tasks due
// at random times are each fired once, never more than the fire lead and
// batch before their time and never later than a millisecond (the wheel's
// tick) after it less the lead.
func TestNeverEarlyAlwaysOnTime(t *testing.T) {
	s := newSim(t, Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	due := map[string]time.Time{}
	for i := range 20_000 {
		id := fmt.Sprintf("t%05d", i)
		at := t0.Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
		due[id] = at
		s.create(id, "q", at, false)
	}
	s.runUntil(t0.Add(3*time.Hour + time.Second))
	lead, batch := s.core.cfg.FireLead, s.core.cfg.FireBatch
	for id, at := range due {
		times := s.fired[id]
		if len(times) != 1 {
			t.Fatalf("%s fired %d times", id, len(times))
		}
		if late := times[0].Sub(at.Add(-lead)); late < -batch || late > time.Millisecond {
			t.Fatalf("%s due %v fired at %v: %v after due less the lead", id, at, times[0], late)
		}
	}
	if s.core.Loaded() != 0 {
		t.Fatalf("%d tasks left in the wheel", s.core.Loaded())
	}
}

// TestFiresDueCloseTogetherShareAnEntry: tasks due a millisecond apart
// are fired a few at a time (FireBatch), not one Fire each, and none
// later than the fire lead before its time.
func TestFiresDueCloseTogetherShareAnEntry(t *testing.T) {
	s := newSim(t, Config{})
	due := map[string]time.Time{}
	for i := range 200 {
		id := fmt.Sprintf("t%03d", i)
		due[id] = t0.Add(time.Second + time.Duration(i)*time.Millisecond)
		s.create(id, "q", due[id], false)
	}
	s.runUntil(t0.Add(2 * time.Second))
	fires := map[time.Time]int{}
	for id, at := range due {
		times := s.fired[id]
		if len(times) != 1 {
			t.Fatalf("%s fired %d times", id, len(times))
		}
		if lead := at.Sub(times[0]); lead < s.core.cfg.FireLead {
			t.Fatalf("%s fired only %v before its time", id, lead)
		}
		fires[times[0]]++
	}
	// One Fire a FireBatch (20ms): 10, and one more for the first.
	if want := int(200*time.Millisecond/s.core.cfg.FireBatch) + 1; len(fires) > want {
		t.Fatalf("200 tasks due over 200ms fired at %d different moments", len(fires))
	}
}

// TestCancelBeforeFireWins: a task cancelled (its change applied) before
// its release is never fired, whether it was in the wheel already or
// beyond the horizon.
func TestCancelBeforeFireWins(t *testing.T) {
	s := newSim(t, Config{Horizon: time.Minute})
	s.create("soon", "q", t0.Add(time.Second), false)
	s.create("later", "q", t0.Add(time.Hour), false)
	s.create("kept", "q", t0.Add(2*time.Second), false)
	s.step() // loads the first minute
	s.now = t0.Add(500 * time.Millisecond)
	s.step()
	s.cancel("soon")
	s.cancel("later")
	s.runUntil(t0.Add(2 * time.Hour))
	if len(s.fired["soon"])+len(s.fired["later"]) != 0 || len(s.fired["kept"]) != 1 {
		t.Fatalf("fired: %v", s.fired)
	}
}

// TestRateLimitExact: a queue limited to 100/s with a burst of 10 fires
// 310 tasks all due at once exactly on its token bucket's schedule: the
// burst at once, then one every 10 ms, to the nanosecond the tokens allow
// (no tolerance: the clock is simulated).
func TestRateLimitExact(t *testing.T) {
	s := newSim(t, Config{})
	s.setQueue(&fsmpb.Queue{Name: "limited", Rate: 100, Burst: 10})
	due := t0.Add(time.Second)
	for i := range 310 {
		s.create(fmt.Sprintf("r%03d", i), "limited", due, false)
	}
	s.create("free", "other", due, false)
	s.runUntil(due.Add(5 * time.Second))
	start := due.Add(-s.core.cfg.FireLead)
	for i := range 310 {
		id := fmt.Sprintf("r%03d", i)
		want := start
		if i >= 10 {
			want = start.Add(time.Duration(i-9) * 10 * time.Millisecond)
		}
		if got := s.fired[id]; len(got) != 1 || got[0].Sub(want).Abs() > time.Microsecond {
			t.Fatalf("%s (the %dth) fired at %v, want %v", id, i, got, want)
		}
	}
	if got := s.fired["free"]; len(got) != 1 || !got[0].Equal(start) {
		t.Fatalf("a task of another queue fired at %v, want %v", got, start)
	}
}

// With the queue's tasks spread over four groups, each group's core
// enforces a quarter of its rate limit and burst, exactly.
func TestRateLimitShared(t *testing.T) {
	s := newSim(t, Config{Share: 4})
	s.setQueue(&fsmpb.Queue{Name: "limited", Rate: 100, Burst: 10})
	due := t0.Add(time.Second)
	for i := range 40 {
		s.create(fmt.Sprintf("r%03d", i), "limited", due, false)
	}
	s.runUntil(due.Add(5 * time.Second))
	start := due.Add(-s.core.cfg.FireLead)
	for i := range 40 {
		id := fmt.Sprintf("r%03d", i)
		want := start // a burst of 10/4, rounded up: 3
		if i >= 3 {
			want = start.Add(time.Duration(i-2) * 40 * time.Millisecond) // 25/s
		}
		if got := s.fired[id]; len(got) != 1 || got[0].Sub(want).Abs() > time.Microsecond {
			t.Fatalf("%s (the %dth) fired at %v, want %v", id, i, got, want)
		}
	}
}

func TestShareOfAQueuesLimits(t *testing.T) {
	q := &fsmpb.Queue{Name: "q", Rate: 10, Burst: 5, MaxConcurrent: 7}
	if got := shareOf(q, 1); got != q {
		t.Fatalf("one group's share is the whole: %v", got)
	}
	got := shareOf(q, 3)
	if got.Rate != 10.0/3 || got.Burst != 2 || got.MaxConcurrent != 3 || q.Rate != 10 {
		t.Fatalf("a third of %v: %v (and the original became %v)", q, got, q)
	}
	if got := shareOf(&fsmpb.Queue{MaxConcurrent: 1}, 4); got.MaxConcurrent != 1 {
		t.Fatalf("a cap of 1 over 4 groups: %d, want 1 each", got.MaxConcurrent)
	}
	if got := shareOf(&fsmpb.Queue{Paused: true}, 4); !got.Paused {
		t.Fatal("a paused queue is paused in every group")
	}
}

// lease asks for up to max tasks of queue as request id and returns the
// items granted at this step (none: the request waits).
func (s *sim) lease(id uint64, queue string, max int) []LeaseItem {
	s.t.Helper()
	s.core.AddWaiter(id, queue, max)
	return s.grants(id)
}

// grants steps and returns what request id was granted.
func (s *sim) grants(id uint64) []LeaseItem {
	s.t.Helper()
	out := s.step()
	var items []LeaseItem
	for _, g := range out.Grants {
		if g.Waiter == id {
			items = append(items, g.Items...)
		}
	}
	return items
}

// TestLeaseExpiryAndReoffer: a pull task goes to the first waiting
// request; when its lease runs out the core says so at that moment, and
// once the state machine has scheduled the retry, it goes to the next
// request. A lease that did not commit is given back and offered again.
func TestLeaseExpiryAndReoffer(t *testing.T) {
	s := newSim(t, Config{})
	s.create("job", "jobs", t0.Add(time.Second), true)
	if got := s.lease(1, "jobs", 10); len(got) != 0 {
		t.Fatalf("leased before its time: %v", got)
	}
	s.now = t0.Add(time.Second - s.core.cfg.FireLead)
	got := s.grants(1)
	if len(got) != 1 || got[0].Fire.Id != "job" {
		t.Fatalf("granted %v", got)
	}
	// The lease commits until +30s: the task is running, leased.
	k := s.tasks["job"]
	delete(s.store.due, k)
	until := t0.Add(31 * time.Second)
	s.core.Changed([]fsm.Change{{Kind: fsm.ChangeLeased, ID: "job", At: until.UnixNano()}})
	// Its end is noticed when the wheel next moves: never before it, and
	// at most FireBatch after it.
	noticed := until.Add(s.core.cfg.FireBatch)
	s.now = until.Add(-time.Millisecond)
	if out := s.step(); len(out.Expired) != 0 || out.Wake.After(noticed) {
		t.Fatalf("before the lease ends: expired %v, wake %v", out.Expired, out.Wake)
	}
	s.now = noticed
	if out := s.step(); len(out.Expired) != 1 || out.Expired[0] != "job" {
		t.Fatalf("FireBatch after the lease's end: expired %v", out.Expired)
	}
	// The expiry is recorded: the attempt stops, the retry is due at once.
	retry := fsm.DueKey{At: until.UnixNano(), ID: "job"}
	s.store.due[retry] = fsm.Route{Queue: "jobs", Pull: true}
	s.tasks["job"] = retry
	s.core.Changed([]fsm.Change{{Kind: fsm.ChangeStopped, ID: "job"}, {Kind: fsm.ChangeDue, ID: "job", At: retry.At, Route: fsm.Route{Queue: "jobs", Pull: true}}})
	again := s.lease(2, "jobs", 10)
	if len(again) != 1 || again[0].Fire.DueAt != retry.At {
		t.Fatalf("re-offered: %v", again)
	}
	// That lease does not commit: given back, it goes to the next request.
	s.core.GiveBack(again)
	if third := s.lease(3, "jobs", 10); len(third) != 1 || third[0].Fire.Id != "job" {
		t.Fatalf("after a give-back: %v", third)
	}
}

// TestWaitersTakeTurnsAndDrop: requests are served oldest first, each up
// to its max; one dropped before anything fell due gets nothing.
func TestWaitersTakeTurnsAndDrop(t *testing.T) {
	s := newSim(t, Config{})
	s.core.AddWaiter(1, "jobs", 2)
	s.core.AddWaiter(2, "jobs", 2)
	s.core.AddWaiter(3, "jobs", 5)
	s.core.DropWaiter(2, "jobs")
	for i := range 5 {
		s.create(fmt.Sprintf("j%d", i), "jobs", t0.Add(time.Second), true)
	}
	s.step() // loads them
	s.now = t0.Add(time.Second - s.core.cfg.FireLead)
	out := s.step()
	if len(out.Grants) != 2 || out.Grants[0].Waiter != 1 || len(out.Grants[0].Items) != 2 || out.Grants[1].Waiter != 3 || len(out.Grants[1].Items) != 3 {
		t.Fatalf("grants %+v", out.Grants)
	}
}

// TestLeaseGroupsTasksDueClose: one lease answer carries the tasks due
// within leaseGrouping of the first, never one due later (the answer
// waits for its last task's time); the next request takes the rest.
func TestLeaseGroupsTasksDueClose(t *testing.T) {
	s := newSim(t, Config{})
	step := leaseGrouping / 4
	for i := range 12 { // due over three groupings
		s.create(fmt.Sprintf("j%02d", i), "jobs", t0.Add(time.Second+time.Duration(i)*step), true)
	}
	s.step() // loads them
	s.now = t0.Add(time.Second - s.core.cfg.FireLead)
	first := s.lease(1, "jobs", 100)
	if len(first) != 5 { // due at +0 to +leaseGrouping, both ends in
		t.Fatalf("first lease carries %d tasks, want the 5 due within %v of the first: %v", len(first), leaseGrouping, first)
	}
	for _, it := range first {
		if late := time.Duration(it.Fire.DueAt - first[0].Fire.DueAt); late > leaseGrouping {
			t.Fatalf("a task due %v after the first went in the same answer", late)
		}
	}
	if next := s.lease(2, "jobs", 100); len(next) != 5 || next[0].Fire.Id != "j05" {
		t.Fatalf("second lease: %v", next)
	}
}

// TestCatchUpInDueOrderAtTheRate: 1,000 tasks that fell due during an
// outage are fired in due order, no faster than CatchUpRate allows (its
// bucket holds a tenth of a second), and all of them in the time that
// rate takes.
func TestCatchUpInDueOrderAtTheRate(t *testing.T) {
	store := newMemStore()
	var ids []string
	for i := range 1000 {
		id := fmt.Sprintf("o%04d", i)
		store.due[fsm.DueKey{At: t0.Add(-time.Hour + time.Duration(i)*time.Second).UnixNano(), ID: id}] = fsm.Route{Queue: "q", Host: "h:80"}
		ids = append(ids, id)
	}
	s := newSim(t, Config{})
	s.store = store
	for k := range store.due {
		s.tasks[k.ID] = k
	}
	const rate = 200
	s.core = New(store, Config{CatchUpRate: rate}, 2, t0) // leading after the outage
	s.runUntil(t0.Add(time.Minute))
	if len(s.order) != 1000 {
		t.Fatalf("%d of 1000 overdue tasks fired", len(s.order))
	}
	for i, id := range s.order {
		if id != ids[i] {
			t.Fatalf("fired %s %dth, want %s: not in due order", id, i, ids[i])
		}
	}
	// The bucket starts empty and holds rate/10+1 tokens: the n-th task
	// cannot go before (n - rate/10 - 1)/rate seconds, and the last goes
	// within the loader's retry interval of 1000/rate seconds.
	for n, id := range s.order {
		if min := time.Duration(float64(n-rate/10-1) / rate * float64(time.Second)); s.fired[id][0].Sub(t0) < min {
			t.Fatalf("the %dth overdue task fired %v after the start, before the rate allows (%v)", n, s.fired[id][0].Sub(t0), min)
		}
	}
	if last := s.fired[s.order[999]][0].Sub(t0); last > time.Duration(1000/rate)*time.Second+retryBehind {
		t.Fatalf("catching up took %v at %d/s", last, rate)
	}
}

// TestTakesOverRunningTasks: tasks found running when the term starts
// are fired again (reclaimed if an earlier Fire of this term or a later
// one took them), and leased ones expire at their lease's end.
func TestTakesOverRunningTasks(t *testing.T) {
	store := newMemStore()
	store.running = []*fsmpb.Task{
		{Id: "old", Queue: "q", DueAt: 5, FireTerm: 1, Target: &fsmpb.Target{Url: "http://h/"}},
		{Id: "restored", Queue: "q", DueAt: 6, FireTerm: 3, Target: &fsmpb.Target{Url: "http://h/"}},
		{Id: "leased", Queue: "jobs", DueAt: 7, FireTerm: 1, LeaseExpiresAt: t0.Add(time.Minute).UnixNano()},
	}
	c := New(store, Config{}, 2, t0)
	out := c.Advance(t0)
	if len(out.Fire) != 2 || out.Refired != 2 || out.Fire[0].Id != "old" || out.Fire[0].Reclaim || out.Fire[1].Id != "restored" || !out.Fire[1].Reclaim {
		t.Fatalf("fired %+v (refired %d)", out.Fire, out.Refired)
	}
	if out := c.Advance(t0.Add(time.Minute)); len(out.Expired) != 1 || out.Expired[0] != "leased" {
		t.Fatalf("expired %v", out.Expired)
	}
}

// TestGatesMatchReference runs random histories of creates, cancels,
// finished attempts and queue changes (pause, max_concurrent) against a
// simple model of the queue gates, and checks after every step: nothing
// fires early, nothing fires from a paused queue or one at its
// max_concurrent, and nothing stays unfired that is due and that every
// gate would let go.
func TestGatesMatchReference(t *testing.T) {
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 7))
		s := newSim(t, Config{})
		s.finish = false
		queues := []string{"a", "b", "c"}
		settings := map[string]*fsmpb.Queue{}
		running := map[string]string{} // id → queue
		runningIn := func(q string) int {
			n := 0
			for _, rq := range running {
				if rq == q {
					n++
				}
			}
			return n
		}
		s.step()
		for i := range 400 {
			switch op := rng.IntN(10); {
			case op < 4:
				id := fmt.Sprintf("s%d-%d", seed, i)
				s.create(id, queues[rng.IntN(3)], s.now.Add(time.Duration(rng.IntN(500))*time.Millisecond), false)
			case op < 5 && len(s.tasks) > 0:
				for id := range s.tasks {
					s.cancel(id)
					break
				}
			case op < 8 && len(running) > 0:
				for id := range running {
					delete(running, id)
					s.core.Changed([]fsm.Change{{Kind: fsm.ChangeStopped, ID: id}})
					break
				}
			case op < 9:
				q := &fsmpb.Queue{Name: queues[rng.IntN(3)], Paused: rng.IntN(3) == 0, MaxConcurrent: uint32(rng.IntN(4))}
				settings[q.Name] = q
				s.setQueue(q)
			}
			// Time passes, the shell waking when asked.
			end := s.now.Add(time.Duration(rng.IntN(40)) * time.Millisecond)
			for {
				before := len(s.order)
				out := s.step()
				for _, id := range s.order[before:] {
					q := queueOf(s, id)
					if set := settings[q]; set != nil && (set.Paused || set.MaxConcurrent > 0 && runningIn(q) >= int(set.MaxConcurrent)) {
						t.Fatalf("seed %d: %s fired from queue %s (%+v) with %d running", seed, id, q, set, runningIn(q))
					}
					running[id] = q
				}
				if out.Wake.After(end) {
					break
				}
				s.now = out.Wake
			}
			s.now = end
			s.step()
			for id, k := range s.tasks {
				q := s.store.due[k].Queue
				set := settings[q]
				open := set == nil || !set.Paused && (set.MaxConcurrent == 0 || runningIn(q) < int(set.MaxConcurrent))
				if open && time.Unix(0, k.At).Add(-s.core.cfg.FireLead).Before(s.now.Add(-time.Millisecond)) {
					t.Fatalf("seed %d step %d: %s (queue %s, %+v, %d running) is due and every gate is open, but it waits", seed, i, id, q, set, runningIn(q))
				}
			}
		}
	}
}

// queueOf is the queue a fired task was created in.
func queueOf(s *sim, id string) string { return s.created[id] }

// finishSend ends the delivery of id (until: its host's Retry-After).
func (s *sim) finishSend(id string, until time.Time) {
	s.t.Helper()
	for i, job := range s.sending {
		if job.Task.Id == id {
			s.sending = append(s.sending[:i], s.sending[i+1:]...)
			s.core.Finished(job, until)
			s.core.Changed([]fsm.Change{{Kind: fsm.ChangeStopped, ID: id}})
			return
		}
	}
	s.t.Fatalf("%s is not being sent", id)
}

// TestSentExactlyOnTime: over an hour of simulated time, 5,000 webhook
// tasks due at random nanoseconds are each handed to a worker once, at
// exactly their due time: never before, and not a nanosecond after when
// nothing holds them back.
func TestSentExactlyOnTime(t *testing.T) {
	s := newSim(t, Config{})
	s.finish = false
	rng := rand.New(rand.NewPCG(3, 4))
	due := map[string]time.Time{}
	for i := range 5000 {
		id := fmt.Sprintf("w%04d", i)
		due[id] = t0.Add(time.Second + time.Duration(rng.Int64N(int64(time.Hour))))
		s.create(id, "q", due[id], false)
	}
	for s.now.Before(t0.Add(time.Hour + 2*time.Second)) {
		out := s.step()
		for _, job := range slices.Clone(s.sending) {
			s.finishSend(job.Task.Id, time.Time{}) // a fast receiver
		}
		s.now = out.Wake
	}
	for id, at := range due {
		if got := s.sent[id]; len(got) != 1 || !got[0].Equal(at) {
			t.Fatalf("%s due %v was sent at %v", id, at, got)
		}
	}
}

// TestHangingQueueLeavesOthersTheirWorkers is issue 17's probe, in the
// core: one queue's deliveries go to an endpoint that never answers,
// spelled four ways; they take no more than the host's share, and another
// queue's deliveries go at their time.
func TestHangingQueueLeavesOthersTheirWorkers(t *testing.T) {
	s := newSim(t, Config{Workers: 256, TargetConcurrency: 64, QueueConcurrency: 128})
	s.finish = false
	spellings := []string{"http://127.0.0.1:18003/", "http://127.0.0.1:018003/", "http://127.0.0.1:0018003/", "http://[::ffff:127.0.0.1]:18003/"}
	due := t0.Add(time.Second)
	for i := range 400 {
		s.createTo(fmt.Sprintf("hang%03d", i), "slow", due, spellings[i%4])
	}
	for i := range 100 {
		s.createTo(fmt.Sprintf("ok%03d", i), "fine", due.Add(time.Duration(i)*time.Millisecond), "http://127.0.0.1:18004/")
	}
	for s.now.Before(due.Add(time.Second)) {
		out := s.step()
		for _, job := range slices.Clone(s.sending) {
			if job.Route.Queue == "fine" {
				s.finishSend(job.Task.Id, time.Time{}) // the healthy receiver answers at once
			}
		}
		s.now = out.Wake
	}
	hanging := 0
	for _, job := range s.sending {
		if job.Route.Queue == "slow" {
			hanging++
		}
	}
	if hanging != 64 {
		t.Fatalf("the hanging endpoint holds %d workers, want the host cap of 64", hanging)
	}
	for i := range 100 {
		id := fmt.Sprintf("ok%03d", i)
		if got := s.sent[id]; len(got) != 1 || !got[0].Equal(due.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("%s of the healthy queue was sent at %v", id, got)
		}
	}
}

// TestRetryAfterHoldsTheHostBack: a host that answered with Retry-After
// gets nothing more, fired or sent, until then; other hosts go on; at the
// end of the block its deliveries go at once.
func TestRetryAfterHoldsTheHostBack(t *testing.T) {
	s := newSim(t, Config{})
	s.finish = false
	due := t0.Add(time.Second)
	s.createTo("first", "q", due, "http://busy/")
	s.runUntil(due)
	until := due.Add(30 * time.Second)
	s.finishSend("first", until)
	s.createTo("second", "q", due.Add(time.Second), "http://busy/")
	s.createTo("other", "q", due.Add(time.Second), "http://other/")
	s.runUntil(until.Add(-time.Millisecond))
	if len(s.fired["second"])+len(s.sent["second"]) != 0 || len(s.sent["other"]) != 1 {
		t.Fatalf("inside the Retry-After: fired %v sent %v", s.fired, s.sent)
	}
	s.runUntil(until.Add(time.Second))
	if got := s.sent["second"]; len(got) != 1 || got[0].Sub(until) > time.Millisecond {
		t.Fatalf("after the Retry-After: sent at %v, want %v", got, until)
	}
}

// TestSendGatesMatchReference runs random histories of deliveries to
// three hosts from three queues, with endings and Retry-Afters at random,
// and checks after every step: no gate exceeded (workers, host, queue),
// nothing sent to a host inside its Retry-After or before its time, and
// no delivery due and waiting while every send gate would let it go.
func TestSendGatesMatchReference(t *testing.T) {
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 11))
		cfg := Config{Workers: 1 + rng.IntN(8), TargetConcurrency: 1 + rng.IntN(4), QueueConcurrency: 1 + rng.IntN(4)}
		s := newSim(t, cfg)
		s.finish = false
		blocked := map[string]time.Time{} // host → Retry-After end
		s.step()
		for i := range 300 {
			if rng.IntN(2) == 0 {
				host := fmt.Sprintf("h%d", rng.IntN(3))
				s.createTo(fmt.Sprintf("d%d", i), fmt.Sprintf("q%d", rng.IntN(3)), s.now.Add(time.Duration(rng.IntN(200))*time.Millisecond), "http://"+host+"/")
			} else if len(s.sending) > 0 {
				job := s.sending[rng.IntN(len(s.sending))]
				var until time.Time
				if rng.IntN(5) == 0 {
					until = s.now.Add(time.Duration(rng.IntN(500)) * time.Millisecond)
					if until.After(blocked[job.Route.Host]) {
						blocked[job.Route.Host] = until
					}
				}
				s.finishSend(job.Task.Id, until)
			}
			end := s.now.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
			for {
				before := len(s.sending)
				out := s.step()
				for _, job := range s.sending[before:] {
					if s.now.Before(blocked[job.Route.Host]) {
						t.Fatalf("seed %d: sent to %s inside its Retry-After", seed, job.Route.Host)
					}
				}
				if out.Wake.After(end) {
					break
				}
				s.now = out.Wake
			}
			s.now = end
			s.step()
			hosts, queues := map[string]int{}, map[string]int{}
			for _, job := range s.sending {
				hosts[job.Route.Host]++
				queues[job.Route.Queue]++
			}
			if len(s.sending) > cfg.Workers {
				t.Fatalf("seed %d: %d sending, %d workers", seed, len(s.sending), cfg.Workers)
			}
			for h, n := range hosts {
				if n > cfg.TargetConcurrency {
					t.Fatalf("seed %d: %d sending to %s, cap %d", seed, n, h, cfg.TargetConcurrency)
				}
			}
			for q, n := range queues {
				if n > cfg.QueueConcurrency {
					t.Fatalf("seed %d: %d sending of %s, cap %d", seed, n, q, cfg.QueueConcurrency)
				}
			}
			// Work-conserving: a fired delivery that is due waits only
			// behind a full gate or a Retry-After.
			for id, firedAt := range s.fired {
				if len(s.sent[id]) > 0 || len(firedAt) == 0 {
					continue
				}
				host := fsm.RouteOf(&fsmpb.Task{Target: &fsmpb.Target{Url: s.urls[id]}}).Host
				q := s.created[id]
				due := time.Unix(0, s.dueOf(id))
				if !due.After(s.now) && len(s.sending) < cfg.Workers && hosts[host] < cfg.TargetConcurrency && queues[q] < cfg.QueueConcurrency && !s.now.Before(blocked[host]) {
					t.Fatalf("seed %d step %d: %s (due %v) waits with every send gate open", seed, i, id, due)
				}
			}
		}
	}
}

// dueOf is the due time of fired task id.
func (s *sim) dueOf(id string) int64 { return s.dues[id] }
