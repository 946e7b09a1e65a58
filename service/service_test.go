package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// recorder is a Proposer that keeps the commands and answers with answer.
type recorder struct {
	cmds   []*fsmpb.Command
	answer func(*fsmpb.Command) any
}

func (r *recorder) Propose(_ context.Context, cmd *fsmpb.Command) (any, error) {
	r.cmds = append(r.cmds, cmd)
	return r.answer(cmd), nil
}

var now = time.Unix(1_800_000_000, 0)

func newTest(answer func(*fsmpb.Command) any) (*Service, *recorder) {
	r := &recorder{answer: answer}
	return New(r, nil, Config{Retention: time.Hour, Now: func() time.Time { return now }}), r
}

// A state machine answer of the wrong type is an error, never a panic.
func TestWrongAnswerIsAnError(t *testing.T) {
	s, _ := newTest(func(*fsmpb.Command) any { return &fsm.CountResult{} })
	if _, err := s.CancelTask(context.Background(), "a"); err == nil || !strings.Contains(err.Error(), "*fsm.CountResult") {
		t.Fatalf("cancel answered with a count: %v", err)
	}
}

// Every write that can finish a task says until when it is kept: the
// retention from the time it carries (a push fire once set none, so a
// webhook task that expired was purged at the next purge, not kept).
func TestRetentionIsStampedOnEveryFinishingWrite(t *testing.T) {
	s, r := newTest(func(cmd *fsmpb.Command) any {
		switch cmd.Kind.(type) {
		case *fsmpb.Command_Fire:
			return &fsm.FireResult{}
		case *fsmpb.Command_Outcomes:
			return &fsm.OutcomeResult{}
		}
		return &fsm.TaskResult{Task: &fsmpb.Task{}}
	})
	ctx := context.Background()
	at := now.Add(time.Minute)
	want := at.Add(time.Hour).UnixNano()
	if _, err := s.Fire(ctx, 2, at, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lease(ctx, 2, at, at.Add(time.Second), nil); err != nil {
		t.Fatal(err)
	}
	outcomes := []*fsmpb.Outcome{{Id: "a"}, {Id: "b"}}
	if _, err := s.RecordOutcomes(ctx, at, outcomes); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CancelTask(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := r.cmds[0].GetFire().RetainUntil; got != want {
		t.Errorf("fire: retain_until %d, want %d", got, want)
	}
	if got := r.cmds[1].GetFire().RetainUntil; got != want {
		t.Errorf("lease: retain_until %d, want %d", got, want)
	}
	for _, o := range r.cmds[2].GetOutcomes().Outcomes {
		if o.RetainUntil != want {
			t.Errorf("outcome %s: retain_until %d, want %d", o.Id, o.RetainUntil, want)
		}
	}
	if c := r.cmds[3].GetCancel(); c.At != now.UnixNano() || c.RetainUntil != now.Add(time.Hour).UnixNano() {
		t.Errorf("cancel: %+v", c)
	}
}

// A create's fingerprint is the service's to set: a delay counts as
// written, execute_at as the time.
func TestCreateSetsTheFingerprint(t *testing.T) {
	s, r := newTest(func(cmd *fsmpb.Command) any {
		items := make([]fsm.CreateItem, len(cmd.GetCreate().Tasks))
		for i, task := range cmd.GetCreate().Tasks {
			items[i] = fsm.CreateItem{Task: task}
		}
		return &fsm.CreateResult{Items: items}
	})
	delay := "1m"
	created, err := s.CreateTasks(context.Background(), []NewTask{
		{Task: &fsmpb.Task{Id: "a", ExecuteAt: 5}, Delay: &delay},
		{Task: &fsmpb.Task{Id: "a", ExecuteAt: 6}, Delay: &delay},
		{Task: &fsmpb.Task{Id: "a", ExecuteAt: 5}},
	})
	if err != nil || len(created) != 3 {
		t.Fatalf("%v %v", created, err)
	}
	fps := r.cmds[0].GetCreate().Tasks
	if string(fps[0].Fingerprint) != string(fps[1].Fingerprint) {
		t.Error("the same delay, resolved to another time, changed the fingerprint")
	}
	if string(fps[0].Fingerprint) == string(fps[2].Fingerprint) || len(fps[0].Fingerprint) != 32 {
		t.Error("a delay and an execute_at hashed alike")
	}
}

// A bulk operation goes in chunks and stops at the first failure, saying
// how far it got.
func TestBulkChunksAndStops(t *testing.T) {
	store := &selectStore{ids: 2*BulkChunk + 10}
	calls := 0
	p := proposerFunc(func(cmd *fsmpb.Command) (any, error) {
		calls++
		if calls == 3 {
			return nil, errors.New("raft is gone")
		}
		return &fsm.CountResult{Changed: len(cmd.GetCancelMany().Ids)}, nil
	})
	s := New(p, store, Config{})
	res, err := s.CancelSelected(context.Background(), fsm.Selector{Queue: "q"}, false)
	if err == nil || !strings.Contains(err.Error(), "after changing 2000 tasks") || res.Changed != 2*BulkChunk {
		t.Fatalf("%+v %v", res, err)
	}
	dry, err := New(p, store, Config{}).CancelSelected(context.Background(), fsm.Selector{Queue: "q"}, true)
	if err != nil || dry.Matched != 2*BulkChunk+10 || dry.Changed != 0 || calls != 3 {
		t.Fatalf("dry run: %+v %v (%d proposals)", dry, err, calls)
	}
}

type proposerFunc func(*fsmpb.Command) (any, error)

func (f proposerFunc) Propose(_ context.Context, cmd *fsmpb.Command) (any, error) { return f(cmd) }

// selectStore selects ids "00000", "00001", ... up to ids of them, in
// order.
type selectStore struct{ ids int }

func (s *selectStore) Get(string) (*fsmpb.Task, error)          { return nil, fsm.ErrNotFound }
func (s *selectStore) Schedule(string) (*fsmpb.Schedule, error) { return nil, fsm.ErrNotFound }

func (s *selectStore) SelectScheduled(_ fsm.Selector, after string, limit int) ([]string, bool, error) {
	var out []string
	for i := 0; i < s.ids && len(out) < limit; i++ {
		if id := fmt.Sprintf("%05d", i); id > after {
			out = append(out, id)
		}
	}
	last := fmt.Sprintf("%05d", s.ids-1)
	return out, len(out) > 0 && out[len(out)-1] != last, nil
}

// lingerRecorder is a recorder that can let commands linger, and keeps
// how long each one was allowed to (0: proposed without).
type lingerRecorder struct {
	recorder
	lingers []time.Duration
}

func (r *lingerRecorder) Propose(ctx context.Context, cmd *fsmpb.Command) (any, error) {
	r.lingers = append(r.lingers, 0)
	return r.recorder.Propose(ctx, cmd)
}

func (r *lingerRecorder) ProposeWithin(ctx context.Context, cmd *fsmpb.Command, linger time.Duration) (any, error) {
	r.lingers = append(r.lingers, linger)
	return r.recorder.Propose(ctx, cmd)
}

// TestWorkerCommandsLinger: a lease may wait for other commands a quarter
// of the time before its first task is due, at most workerLinger, and
// not at all once one is due; outcomes workers reported may wait
// workerLinger, a webhook's not; a create never waits.
func TestWorkerCommandsLinger(t *testing.T) {
	r := &lingerRecorder{recorder: recorder{answer: func(cmd *fsmpb.Command) any {
		switch cmd.Kind.(type) {
		case *fsmpb.Command_Fire:
			return &fsm.FireResult{}
		case *fsmpb.Command_Outcomes:
			return &fsm.OutcomeResult{}
		default:
			return &fsm.CreateResult{Items: []fsm.CreateItem{{Task: &fsmpb.Task{}}}}
		}
	}}}
	s := New(r, nil, Config{Now: func() time.Time { return now }})
	ctx := context.Background()
	lease := func(dueIn ...time.Duration) {
		items := make([]*fsmpb.FireItem, len(dueIn))
		for i, d := range dueIn {
			items[i] = &fsmpb.FireItem{Id: fmt.Sprint(i), DueAt: now.Add(d).UnixNano()}
		}
		if _, err := s.Lease(ctx, 1, now, now.Add(time.Minute), items); err != nil {
			t.Fatal(err)
		}
	}
	lease(20*time.Millisecond, 21*time.Millisecond)
	lease(8*time.Millisecond, 30*time.Millisecond)
	lease(time.Millisecond, -time.Millisecond)
	if _, err := s.RecordOutcomes(ctx, now, []*fsmpb.Outcome{{Id: "a", Attempt: 1, Kind: fsmpb.Outcome_SUCCEEDED, Worker: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordOutcomes(ctx, now, []*fsmpb.Outcome{{Id: "b", Attempt: 1, Kind: fsmpb.Outcome_SUCCEEDED}}); err != nil {
		t.Fatal(err) // a webhook's: lingered in the scheduler already
	}
	if _, err := s.CreateTasks(ctx, []NewTask{{Task: &fsmpb.Task{Id: "n", Queue: "default", ExecuteAt: 1}}}); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{workerLinger, 2 * time.Millisecond, 0, workerLinger, 0, 0}
	if len(r.lingers) != len(want) || fmt.Sprint(r.lingers) != fmt.Sprint(want) {
		t.Fatalf("lingers %v, want %v", r.lingers, want)
	}
}
