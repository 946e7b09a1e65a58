package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

func pullTask(id string, at int64) *fsmpb.Task {
	t := newTask(id, at)
	t.Target = nil
	t.Queue = "work"
	return t
}

func lease(at, until int64, items ...*fsmpb.FireItem) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_Fire{Fire: &fsmpb.FireTasks{Term: 1, At: at, LeaseUntil: until, RetainUntil: at + 1000, Items: items}}}
}

func outcomesAt(at int64, os ...*fsmpb.Outcome) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_Outcomes{Outcomes: &fsmpb.RecordOutcomes{At: at, Outcomes: os}}}
}

func extendCmd(id string, attempt uint32, at, until int64) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_Extend{Extend: &fsmpb.ExtendLease{Id: id, Attempt: attempt, At: at, Until: until}}}
}

func TestLeaseOnlyPullTasksAndPushOnlyTargets(t *testing.T) {
	h := newHarness(t)
	h.apply(create(pullTask("p", 100), newTask("w", 100)))
	if acc := h.apply(lease(100, 200, &fsmpb.FireItem{Id: "w", DueAt: 100}))[0].(*FireResult).Accepted; len(acc) != 0 {
		t.Fatal("a webhook task was leased")
	}
	if acc := h.apply(fire(1, &fsmpb.FireItem{Id: "p", DueAt: 100}))[0].(*FireResult).Accepted; len(acc) != 0 {
		t.Fatal("a pull task was fired for push delivery")
	}
	acc := h.apply(lease(100, 200, &fsmpb.FireItem{Id: "p", DueAt: 100}))[0].(*FireResult).Accepted
	if len(acc) != 1 || acc[0].LeaseExpiresAt != 200 || acc[0].Attempts != 1 || acc[0].State != fsmpb.State_RUNNING {
		t.Fatalf("lease accepted %v", acc)
	}
	// A new term never fires a leased task again: its lease runs out.
	if acc := h.applyTerm(2, lease(110, 300, &fsmpb.FireItem{Id: "p", DueAt: 100}))[0].(*FireResult).Accepted; len(acc) != 0 {
		t.Fatal("a leased task was leased twice")
	}
	h.checkRecords()
}

func TestWorkerOutcomesCheckAttemptAndLease(t *testing.T) {
	h := newHarness(t)
	h.apply(create(pullTask("p", 100)))
	h.apply(lease(100, 200, &fsmpb.FireItem{Id: "p", DueAt: 100}))

	res := h.apply(outcomesAt(150, &fsmpb.Outcome{Id: "p", Attempt: 2, Kind: fsmpb.Outcome_SUCCEEDED, Worker: true}))[0].(*OutcomeResult)
	if res.Applied != 0 || !errors.Is(res.Errs[0], ErrConflict) {
		t.Fatalf("stale attempt: %+v", res)
	}
	if r := h.apply(extendCmd("p", 1, 150, 400))[0].(*TaskResult); r.Err != nil || r.Task.LeaseExpiresAt != 400 {
		t.Fatalf("extend: %+v", r)
	}
	// The expiry of the old lease no longer applies.
	res = h.apply(outcomesAt(250, &fsmpb.Outcome{Id: "p", Attempt: 1, Kind: fsmpb.Outcome_FAILED, LeaseExpired: true}))[0].(*OutcomeResult)
	if res.Applied != 0 {
		t.Fatal("a lease that was extended expired")
	}
	// After the lease ran out a worker's ack is refused...
	res = h.apply(outcomesAt(400, &fsmpb.Outcome{Id: "p", Attempt: 1, Kind: fsmpb.Outcome_SUCCEEDED, Worker: true}))[0].(*OutcomeResult)
	if res.Applied != 0 || !errors.Is(res.Errs[0], ErrConflict) {
		t.Fatalf("ack after the lease ran out: %+v", res)
	}
	// ...and the expiry retries it.
	res = h.apply(outcomesAt(400, &fsmpb.Outcome{Id: "p", Attempt: 1, Kind: fsmpb.Outcome_FAILED, LeaseExpired: true, Error: "lease expired", Jitter: 0}))[0].(*OutcomeResult)
	if res.Applied != 1 || res.Tasks[0].State != fsmpb.State_SCHEDULED || res.Tasks[0].DueAt != 400 || res.Tasks[0].LeaseExpiresAt != 0 {
		t.Fatalf("lease expiry: %+v", res.Tasks[0])
	}
	h.apply(lease(400, 500, &fsmpb.FireItem{Id: "p", DueAt: 400}))
	res = h.apply(outcomesAt(450, &fsmpb.Outcome{Id: "p", Attempt: 2, Kind: fsmpb.Outcome_SUCCEEDED, Worker: true, Result: "ok", RetainUntil: 999}))[0].(*OutcomeResult)
	if res.Applied != 1 || res.Tasks[0].State != fsmpb.State_SUCCEEDED || res.Tasks[0].Result != "ok" {
		t.Fatalf("ack: %+v", res)
	}
	h.checkRecords()
}

// TestLeaseTokenDecides: a lease's token, drawn by the leader, is what a
// worker's ack, nack and extend must show (issue 17: any worker token could
// finish any lease by its attempt number, which a 409 told). A wrong or
// missing token is refused with a 409 that names neither the attempt nor
// the task's state; the attempt, when given, must match too; the token of
// an earlier lease of the same task no longer works; a finished task keeps
// no token.
func TestLeaseTokenDecides(t *testing.T) {
	h := newHarness(t)
	h.apply(create(pullTask("p", 100)))
	first := []byte("0123456789abcdef")
	acc := h.apply(lease(100, 200, &fsmpb.FireItem{Id: "p", DueAt: 100, LeaseToken: first}))[0].(*FireResult).Accepted
	if len(acc) != 1 || string(acc[0].LeaseToken) != string(first) {
		t.Fatalf("lease: %+v", acc)
	}
	refused := func(o *fsmpb.Outcome) {
		t.Helper()
		res := h.apply(outcomesAt(150, o))[0].(*OutcomeResult)
		if res.Applied != 0 || !errors.Is(res.Errs[0], ErrConflict) {
			t.Fatalf("%+v applied: %+v", o, res)
		}
		msg := res.Errs[0].Error()
		if strings.Contains(msg, "attempt") || strings.Contains(msg, "running") {
			t.Fatalf("a refusal tells more than it should: %q", msg)
		}
	}
	refused(&fsmpb.Outcome{Id: "p", Attempt: 1, Kind: fsmpb.Outcome_SUCCEEDED, Worker: true})
	refused(&fsmpb.Outcome{Id: "p", Attempt: 1, Kind: fsmpb.Outcome_SUCCEEDED, Worker: true, LeaseToken: []byte("0123456789abcdeX")})
	refused(&fsmpb.Outcome{Id: "p", Attempt: 2, Kind: fsmpb.Outcome_SUCCEEDED, Worker: true, LeaseToken: first})
	ext := &fsmpb.Command{Kind: &fsmpb.Command_Extend{Extend: &fsmpb.ExtendLease{Id: "p", At: 150, Until: 86_400_000, LeaseToken: []byte("guess")}}}
	if r := h.apply(ext)[0].(*TaskResult); !errors.Is(r.Err, ErrConflict) {
		t.Fatalf("extend with a wrong token: %+v", r)
	}
	// The holder extends, then lets the lease run out; its retry's lease
	// has a token of its own, and the first one is dead.
	ext.GetExtend().LeaseToken = first
	if r := h.apply(ext)[0].(*TaskResult); r.Err != nil || r.Task.LeaseExpiresAt != 86_400_000 {
		t.Fatalf("extend by the holder: %+v", r)
	}
	h.apply(outcomesAt(86_400_000, &fsmpb.Outcome{Id: "p", Attempt: 1, Kind: fsmpb.Outcome_FAILED, LeaseExpired: true}))
	second := []byte("fedcba9876543210")
	h.apply(lease(86_400_000, 86_500_000, &fsmpb.FireItem{Id: "p", DueAt: 86_400_000, LeaseToken: second}))
	res := h.apply(outcomesAt(86_400_001, &fsmpb.Outcome{Id: "p", Kind: fsmpb.Outcome_SUCCEEDED, Worker: true, LeaseToken: first}))[0].(*OutcomeResult)
	if res.Applied != 0 {
		t.Fatal("the token of an earlier lease acked the task")
	}
	res = h.apply(outcomesAt(86_400_001, &fsmpb.Outcome{Id: "p", Kind: fsmpb.Outcome_SUCCEEDED, Worker: true, LeaseToken: second, RetainUntil: 1 << 62}))[0].(*OutcomeResult)
	if res.Applied != 1 || res.Tasks[0].State != fsmpb.State_SUCCEEDED || res.Tasks[0].LeaseToken != nil {
		t.Fatalf("ack by the holder: %+v", res)
	}
	h.checkRecords()
}

func TestFailedFollowsQueuePolicy(t *testing.T) {
	h := newHarness(t)
	h.apply(&fsmpb.Command{Kind: &fsmpb.Command_PutQueue{PutQueue: &fsmpb.PutQueue{At: 1, Queue: &fsmpb.Queue{
		Name: "work", MaxAttempts: 2, MinBackoff: int64(time.Second), MaxBackoff: int64(4 * time.Second),
	}}}})
	task := pullTask("p", 100)
	task.MaxAttempts = 0 // the queue's
	h.apply(create(task))
	h.apply(lease(100, 200, &fsmpb.FireItem{Id: "p", DueAt: 100}))
	res := h.apply(outcomesAt(150, &fsmpb.Outcome{Id: "p", Attempt: 1, Kind: fsmpb.Outcome_FAILED, Worker: true, Jitter: 0.5, Error: "boom"}))[0].(*OutcomeResult)
	if got := res.Tasks[0]; got.State != fsmpb.State_SCHEDULED || got.DueAt != 150+int64(time.Second/2) || got.LastError != "boom" {
		t.Fatalf("first failure: %+v", got)
	}
	due := res.Tasks[0].DueAt
	h.apply(lease(due, due+100, &fsmpb.FireItem{Id: "p", DueAt: due}))
	res = h.apply(outcomesAt(due+1, &fsmpb.Outcome{Id: "p", Attempt: 2, Kind: fsmpb.Outcome_FAILED, Worker: true, Jitter: 0.5, Error: "boom", RetainUntil: 5}))[0].(*OutcomeResult)
	if got := res.Tasks[0]; got.State != fsmpb.State_DEAD {
		t.Fatalf("second failure with max_attempts 2: %v", got.State)
	}
	h.checkRecords()
}

func TestBackoffIsBoundedAndGrows(t *testing.T) {
	p := RetryPolicy{Initial: time.Second, Max: 10 * time.Second, Multiplier: 2}
	for _, c := range []struct {
		n    uint32
		u    float64
		want time.Duration
	}{{1, 1, time.Second}, {2, 1, 2 * time.Second}, {3, 0.5, 2 * time.Second}, {5, 1, 10 * time.Second}, {1000, 1, 10 * time.Second}, {3, 0, 0}} {
		if got := p.Backoff(c.n, c.u); got != c.want {
			t.Errorf("Backoff(%d, %v) = %v, want %v", c.n, c.u, got, c.want)
		}
	}
	// A task's own backoff beats its queue's, which beats the defaults.
	q := &fsmpb.Queue{MinBackoff: int64(2 * time.Second), MaxAttempts: 9}
	task := &fsmpb.Task{Backoff: &fsmpb.Backoff{Max: int64(time.Minute), Multiplier: 3}}
	got := PolicyFor(task, q)
	if want := (RetryPolicy{MaxAttempts: 9, Initial: 2 * time.Second, Max: time.Minute, Multiplier: 3}); got != want {
		t.Fatalf("policy %+v, want %+v", got, want)
	}
	if d := got.Backoff(3, 1); d != 18*time.Second {
		t.Fatalf("third backoff %v, want 18s", d)
	}
}

func TestRetryNotBeforeAndMaxRetryDuration(t *testing.T) {
	h := newHarness(t)
	h.apply(&fsmpb.Command{Kind: &fsmpb.Command_PutQueue{PutQueue: &fsmpb.PutQueue{At: 1, Queue: &fsmpb.Queue{Name: "default", MaxRetryDuration: 1000}}}})
	h.apply(create(newTask("a", 100)))
	h.apply(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100}))
	res := h.apply(outcomesAt(60, &fsmpb.Outcome{Id: "a", Attempt: 1, Kind: fsmpb.Outcome_FAILED, NotBefore: 900}))[0].(*OutcomeResult)
	if got := res.Tasks[0]; got.State != fsmpb.State_SCHEDULED || got.DueAt != 900 {
		t.Fatalf("retry not before 900: %v at %d", got.State, got.DueAt)
	}
	h.apply(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 900}))
	res = h.apply(outcomesAt(950, &fsmpb.Outcome{Id: "a", Attempt: 2, Kind: fsmpb.Outcome_FAILED, NotBefore: 2000}))[0].(*OutcomeResult)
	if got := res.Tasks[0]; got.State != fsmpb.State_DEAD {
		t.Fatalf("retry past max_retry_duration: %v", got.State)
	}
}

func TestMaxLatenessExpires(t *testing.T) {
	h := newHarness(t)
	late := newTask("late", 100)
	late.MaxLateness = 10
	ok := newTask("ok", 100)
	ok.MaxLateness = 10
	h.apply(create(late, ok))
	res := h.apply(&fsmpb.Command{Kind: &fsmpb.Command_Fire{Fire: &fsmpb.FireTasks{Term: 1, At: 110, Items: []*fsmpb.FireItem{{Id: "ok", DueAt: 100}}}}})[0].(*FireResult)
	if len(res.Accepted) != 1 {
		t.Fatal("a task fired within its max_lateness was not accepted")
	}
	res = h.apply(&fsmpb.Command{Kind: &fsmpb.Command_Fire{Fire: &fsmpb.FireTasks{Term: 1, At: 111, RetainUntil: 500, Items: []*fsmpb.FireItem{{Id: "late", DueAt: 100}}}}})[0].(*FireResult)
	if len(res.Accepted) != 0 || len(res.Expired) != 1 || h.get("late").State != fsmpb.State_EXPIRED || h.get("late").RetainUntil != 500 {
		t.Fatalf("a task past its max_lateness: %+v", res)
	}
	// Cancelling or updating it says what it is (issue 18: it said "is in
	// an unknown state").
	r := h.apply(cancel("late", 120))[0].(*TaskResult)
	if !errors.Is(r.Err, ErrConflict) || !strings.Contains(r.Err.Error(), "expired") {
		t.Fatalf("cancel of an expired task: %v", r.Err)
	}
	upd := &fsmpb.Command{Kind: &fsmpb.Command_Update{Update: &fsmpb.UpdateTask{Id: "late", At: 120, ExecuteAt: proto.Int64(200)}}}
	if r := h.apply(upd)[0].(*TaskResult); !errors.Is(r.Err, ErrConflict) || !strings.Contains(r.Err.Error(), "expired") {
		t.Fatalf("update of an expired task: %v", r.Err)
	}
	h.checkRecords()
}

func TestQueuesCountsAndDelete(t *testing.T) {
	h := newHarness(t)
	h.apply(create(pullTask("a", 100), pullTask("b", 100)))
	info, err := h.f.Queue("work")
	if err != nil || info.Counts["scheduled"] != 2 || info.Settings.CreatedAt != 1 {
		t.Fatalf("queue created on first use: %+v, %v", info, err)
	}
	del := &fsmpb.Command{Kind: &fsmpb.Command_DeleteQueue{DeleteQueue: &fsmpb.DeleteQueue{Name: "work"}}}
	if r := h.apply(del)[0].(*QueueResult); !errors.Is(r.Err, ErrConflict) {
		t.Fatalf("deleting a queue with scheduled tasks: %v", r.Err)
	}
	cm := &fsmpb.Command{Kind: &fsmpb.Command_CancelMany{CancelMany: &fsmpb.CancelTasks{Ids: []string{"a", "b", "nope"}, At: 5, RetainUntil: 6}}}
	if n := h.apply(cm)[0].(*CountResult).Changed; n != 2 {
		t.Fatalf("bulk cancel changed %d", n)
	}
	if r := h.apply(del)[0].(*QueueResult); r.Err != nil {
		t.Fatalf("delete: %v", r.Err)
	}
	if _, err := h.f.Queue("work"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted queue: %v", err)
	}
	h.checkRecords()
}

func TestRedriveAndShift(t *testing.T) {
	h := newHarness(t)
	h.apply(create(pullTask("a", 100), pullTask("b", 100), pullTask("c", 100)))
	for _, id := range []string{"a", "b"} {
		h.apply(lease(100, 200, &fsmpb.FireItem{Id: id, DueAt: 100}))
		h.apply(outcomesAt(150, &fsmpb.Outcome{Id: id, Attempt: 1, Kind: fsmpb.Outcome_DEAD, Worker: true, RetainUntil: 7}))
	}
	one := &fsmpb.Command{Kind: &fsmpb.Command_Redrive{Redrive: &fsmpb.RedriveTasks{Queue: "work", Ids: []string{"a", "c"}, At: 300}}}
	if n := h.apply(one)[0].(*CountResult).Changed; n != 1 {
		t.Fatalf("redrive of a (dead) and c (scheduled) changed %d", n)
	}
	if a := h.get("a"); a.State != fsmpb.State_SCHEDULED || a.Attempts != 0 || a.DueAt != 300 {
		t.Fatalf("redriven: %+v", a)
	}
	all := &fsmpb.Command{Kind: &fsmpb.Command_Redrive{Redrive: &fsmpb.RedriveTasks{Queue: "work", At: 310, Limit: 100}}}
	if n := h.apply(all)[0].(*CountResult).Changed; n != 1 || h.get("b").State != fsmpb.State_SCHEDULED {
		t.Fatalf("redrive all changed %d", n)
	}
	sh := &fsmpb.Command{Kind: &fsmpb.Command_Shift{Shift: &fsmpb.ShiftTasks{Ids: []string{"a", "c"}, By: 50, At: 320}}}
	if n := h.apply(sh)[0].(*CountResult).Changed; n != 2 || h.get("c").ExecuteAt != 150 || h.get("a").DueAt != 350 {
		t.Fatalf("shift changed %d", n)
	}
	ids, more, err := h.f.SelectScheduled(Selector{Queue: "work", From: 350, To: 351}, "", 10)
	if err != nil || more || len(ids) != 1 || ids[0] != "a" {
		t.Fatalf("select due in [350,351): %v %v %v", ids, more, err)
	}
	h.checkRecords()
}

func TestMigrateFromSchema1(t *testing.T) {
	h := newHarness(t)
	h.apply(create(pullTask("a", 100), newTask("b", 200)))
	h.apply(cancel("b", 5))
	// Make it a schema 1 file: no queues or counts, due values empty.
	err := h.f.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketQueues, bucketCounts} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketDue).Put(timeKey(100, "a"), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaSchema, u64(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	h.f.Close()
	f, err := Open(h.path)
	if err != nil {
		t.Fatal(err)
	}
	h.f = f
	t.Cleanup(func() { f.Close() })
	h.checkRecords()
	var routes []Route
	if _, err := f.ScanDue(nil, 1<<62, 10, func(_ DueKey, r Route) bool { routes = append(routes, r); return true }); err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || routes[0] != (Route{Queue: "work", Pull: true}) {
		t.Fatalf("migrated routes %v", routes)
	}
	if info, err := f.Queue("default"); err != nil || info.Counts["cancelled"] != 1 {
		t.Fatalf("migrated queue default: %+v %v", info, err)
	}
}

// TestPauseQueueChangesOnlyPaused: a pause keeps every other setting, and
// makes a queue not seen before with the defaults.
func TestPauseQueueChangesOnlyPaused(t *testing.T) {
	h := newHarness(t)
	h.apply(&fsmpb.Command{Kind: &fsmpb.Command_PutQueue{PutQueue: &fsmpb.PutQueue{At: 1, Queue: &fsmpb.Queue{Name: "q", MaxAttempts: 4, Rate: 5}}}})
	pause := func(name string, paused bool, at int64) *fsmpb.Queue {
		t.Helper()
		r := h.apply(&fsmpb.Command{Kind: &fsmpb.Command_PauseQueue{PauseQueue: &fsmpb.PauseQueue{Name: name, Paused: paused, At: at}}})[0].(*QueueResult)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Queue
	}
	if q := pause("q", true, 2); !q.Paused || q.MaxAttempts != 4 || q.Rate != 5 || q.CreatedAt != 1 || q.UpdatedAt != 2 {
		t.Fatalf("paused: %+v", q)
	}
	if q := pause("q", false, 3); q.Paused || q.Rate != 5 {
		t.Fatalf("resumed: %+v", q)
	}
	if q := pause("new", true, 4); !q.Paused || q.MaxAttempts != 0 || q.CreatedAt != 4 {
		t.Fatalf("a new queue paused: %+v", q)
	}
	if r := h.apply(&fsmpb.Command{Kind: &fsmpb.Command_PauseQueue{PauseQueue: &fsmpb.PauseQueue{}}})[0].(*QueueResult); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("pause without a name: %+v", r)
	}
	h.checkRecords()
}

// TestMigrateFromSchema2 opens, and restores as a raft snapshot, a schema 2
// file (one with the running index): both come out at this schema, the
// running task still listed as running.
func TestMigrateFromSchema2(t *testing.T) {
	h := newHarness(t)
	h.apply(create(pullTask("a", 100), pullTask("b", 200)))
	h.apply(lease(100, 500, &fsmpb.FireItem{Id: "a", DueAt: 100}))
	err := h.f.db.Update(func(tx *bolt.Tx) error {
		running, err := tx.CreateBucket(bucketRunning)
		if err != nil {
			return err
		}
		if err := running.Put([]byte("a"), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaSchema, u64(2))
	})
	if err != nil {
		t.Fatal(err)
	}
	h.f.Close()
	old, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := CheckStateFile(h.path); err != nil || info.Schema != 2 {
		t.Fatalf("a schema 2 file does not check: %+v %v", info, err)
	}

	checkMigrated := func(f *FSM) {
		t.Helper()
		err := f.view(func(tx *bolt.Tx) error {
			if tx.Bucket(bucketRunning) != nil {
				return errors.New("the running index is still there")
			}
			if got := metaUint(tx, metaSchema); got != SchemaVersion {
				return fmt.Errorf("schema %d after opening", got)
			}
			_, err := checkRecords(tx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if running, err := f.Running(); err != nil || len(running) != 1 || running[0].Id != "a" {
			t.Fatalf("running after the migration: %v %v", running, err)
		}
	}
	f, err := Open(h.path)
	if err != nil {
		t.Fatal(err)
	}
	h.f = f
	t.Cleanup(func() { f.Close() })
	checkMigrated(f)

	other := newHarness(t)
	if err := other.f.Restore(io.NopCloser(bytes.NewReader(old))); err != nil {
		t.Fatalf("restore a schema 2 snapshot: %v", err)
	}
	checkMigrated(other.f)
	if got := other.f.AppliedIndex(); got != 2 {
		t.Fatalf("applied index %d after restoring, want 2", got)
	}
}
