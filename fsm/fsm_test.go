package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

type harness struct {
	t     testing.TB
	f     *FSM
	path  string
	index uint64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &harness{t: t, f: f, path: path}
}

// apply applies one entry at the next index in term 1.
func (h *harness) apply(cmds ...*fsmpb.Command) []any {
	h.t.Helper()
	return h.applyTerm(1, cmds...)
}

func (h *harness) applyTerm(term uint64, cmds ...*fsmpb.Command) []any {
	h.t.Helper()
	data, err := EncodeEntry(cmds...)
	if err != nil {
		h.t.Fatal(err)
	}
	h.index++
	out, _ := h.f.Apply(&raft.Log{Index: h.index, Term: term, Type: raft.LogCommand, Data: data}).([]any)
	if len(out) != len(cmds) {
		h.t.Fatalf("apply returned %d results for %d commands", len(out), len(cmds))
	}
	return out
}

func newTask(id string, at int64) *fsmpb.Task {
	return &fsmpb.Task{
		Id: id, Queue: "default", ExecuteAt: at, CreatedAt: 1, UpdatedAt: 1,
		MaxAttempts: 3, Fingerprint: []byte("fp-" + id),
		Target: &fsmpb.Target{Url: "http://127.0.0.1:1/"},
	}
}

func create(tasks ...*fsmpb.Task) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_Create{Create: &fsmpb.CreateTasks{Tasks: tasks}}}
}

func cancel(id string, at int64) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_Cancel{Cancel: &fsmpb.CancelTask{Id: id, At: at, RetainUntil: at + 100}}}
}

func fire(term uint64, items ...*fsmpb.FireItem) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_Fire{Fire: &fsmpb.FireTasks{Term: term, At: 50, Items: items}}}
}

func outcome(o *fsmpb.Outcome) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_Outcomes{Outcomes: &fsmpb.RecordOutcomes{At: 60, Outcomes: []*fsmpb.Outcome{o}}}}
}

func (h *harness) get(id string) *fsmpb.Task {
	h.t.Helper()
	task, err := h.f.Get(id)
	if err != nil {
		h.t.Fatal(err)
	}
	return task
}

// checkRecords checks the indexes and counts against the tasks.
func (h *harness) checkRecords() {
	h.t.Helper()
	if err := h.f.view(func(tx *bolt.Tx) error { _, err := checkRecords(tx); return err }); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) due() []DueKey {
	h.t.Helper()
	var keys []DueKey
	if _, err := h.f.ScanDue(nil, 1<<62, 1<<30, func(k DueKey, _ Route) bool { keys = append(keys, k); return true }); err != nil {
		h.t.Fatal(err)
	}
	return keys
}

func TestCreateIsIdempotentByFingerprint(t *testing.T) {
	h := newHarness(t)
	r := h.apply(create(newTask("a", 100)))[0].(*CreateResult).Items[0]
	if r.Err != nil || r.Existed || r.Task.State != fsmpb.State_SCHEDULED || r.Task.Version != 1 {
		t.Fatalf("first create: %+v", r)
	}
	again := h.apply(create(newTask("a", 100)))[0].(*CreateResult).Items[0]
	if again.Err != nil || !again.Existed || again.Task.Version != 1 {
		t.Fatalf("repeat create: %+v", again)
	}
	other := newTask("a", 200)
	other.Fingerprint = []byte("else")
	conflict := h.apply(create(other))[0].(*CreateResult).Items[0]
	if !errors.Is(conflict.Err, ErrConflict) {
		t.Fatalf("different body: err %v, want ErrConflict", conflict.Err)
	}
	if got := h.get("a"); got.ExecuteAt != 100 || got.Version != 1 {
		t.Fatalf("conflicting create changed the task: %+v", got)
	}
	if keys := h.due(); len(keys) != 1 || keys[0] != (DueKey{At: 100, ID: "a"}) {
		t.Fatalf("due index %v", keys)
	}
}

func TestLifecycleRetryThenSuccess(t *testing.T) {
	h := newHarness(t)
	h.apply(create(newTask("a", 100)))
	acc := h.apply(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100}))[0].(*FireResult).Accepted
	if len(acc) != 1 || acc[0].Attempts != 1 || acc[0].State != fsmpb.State_RUNNING || acc[0].FireIndex != 2 {
		t.Fatalf("fire accepted %v", acc)
	}
	if len(h.due()) != 0 {
		t.Fatal("a running task is still in the due index")
	}
	if running, _ := h.f.Running(); len(running) != 1 {
		t.Fatalf("running index has %d tasks", len(running))
	}
	h.apply(outcome(&fsmpb.Outcome{Id: "a", Attempt: 1, Kind: fsmpb.Outcome_RETRY, Error: "HTTP 500", RetryAt: 300}))
	got := h.get("a")
	if got.State != fsmpb.State_SCHEDULED || got.DueAt != 300 || got.ExecuteAt != 100 || got.LastError != "HTTP 500" {
		t.Fatalf("after retry: %+v", got)
	}
	if keys := h.due(); len(keys) != 1 || keys[0].At != 300 {
		t.Fatalf("due index after retry %v", keys)
	}
	// A fire that names the old due time is stale and skipped.
	if acc := h.apply(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100}))[0].(*FireResult).Accepted; len(acc) != 0 {
		t.Fatal("fire with a stale due time accepted")
	}
	h.apply(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 300}))
	// An outcome for attempt 1 is stale now.
	if n := h.apply(outcome(&fsmpb.Outcome{Id: "a", Attempt: 1, Kind: fsmpb.Outcome_SUCCEEDED}))[0].(*OutcomeResult).Applied; n != 0 {
		t.Fatal("stale outcome applied")
	}
	h.apply(outcome(&fsmpb.Outcome{Id: "a", Attempt: 2, Kind: fsmpb.Outcome_SUCCEEDED, RetainUntil: 1000}))
	got = h.get("a")
	if got.State != fsmpb.State_SUCCEEDED || got.Attempts != 2 || got.CompletedAt != 60 {
		t.Fatalf("after success: %+v", got)
	}
	if running, _ := h.f.Running(); len(running) != 0 {
		t.Fatal("finished task still in the running index")
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t)
	h.apply(create(newTask("a", 100), newTask("b", 100)))
	r := h.apply(cancel("a", 10))[0].(*TaskResult)
	if r.Err != nil || r.Task.State != fsmpb.State_CANCELLED {
		t.Fatalf("cancel: %+v", r)
	}
	if r := h.apply(cancel("a", 11))[0].(*TaskResult); r.Err != nil {
		t.Fatalf("second cancel: %v", r.Err)
	}
	if acc := h.apply(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100}))[0].(*FireResult).Accepted; len(acc) != 0 {
		t.Fatal("cancelled task fired")
	}
	if r := h.apply(cancel("nope", 10))[0].(*TaskResult); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("cancel of a missing task: %v", r.Err)
	}
	h.apply(fire(1, &fsmpb.FireItem{Id: "b", DueAt: 100}))
	if r := h.apply(cancel("b", 10))[0].(*TaskResult); !errors.Is(r.Err, ErrConflict) {
		t.Fatalf("cancel of a running task: %v", r.Err)
	}
}

func TestFireUnderNewTermRetakesRunningTasks(t *testing.T) {
	h := newHarness(t)
	h.apply(create(newTask("a", 100)))
	h.applyTerm(1, fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100}))
	if acc := h.applyTerm(1, fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100}))[0].(*FireResult).Accepted; len(acc) != 0 {
		t.Fatal("same-term refire of a running task accepted")
	}
	acc := h.applyTerm(2, fire(2, &fsmpb.FireItem{Id: "a", DueAt: 100}))[0].(*FireResult).Accepted
	if len(acc) != 1 || acc[0].Attempts != 2 || acc[0].FireTerm != 2 {
		t.Fatalf("new-term refire: %v", acc)
	}
	// A leader that never learned whether its Fire committed reclaims the
	// task under its own term, as a new attempt.
	acc = h.applyTerm(2, fire(2, &fsmpb.FireItem{Id: "a", DueAt: 100, Reclaim: true}))[0].(*FireResult).Accepted
	if len(acc) != 1 || acc[0].Attempts != 3 {
		t.Fatalf("same-term reclaim: %v", acc)
	}
	// A plain Fire of an older term never takes a running task.
	if acc := h.applyTerm(2, fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100}))[0].(*FireResult).Accepted; len(acc) != 0 {
		t.Fatal("an older term refired a running task")
	}
	// A backup of another cluster can hold a task running under a term
	// this cluster has not reached: its leader reclaims it.
	acc = h.applyTerm(3, fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100, Reclaim: true}))[0].(*FireResult).Accepted
	if len(acc) != 1 || acc[0].Attempts != 4 || acc[0].FireTerm != 1 {
		t.Fatalf("reclaim of a task running under a later term: %v", acc)
	}
	// Nothing takes a finished task.
	h.apply(outcome(&fsmpb.Outcome{Id: "a", Attempt: 4, Kind: fsmpb.Outcome_SUCCEEDED, RetainUntil: 1000}))
	if acc := h.applyTerm(3, fire(4, &fsmpb.FireItem{Id: "a", DueAt: 100, Reclaim: true}))[0].(*FireResult).Accepted; len(acc) != 0 {
		t.Fatal("a finished task was reclaimed")
	}
}

func TestUpdate(t *testing.T) {
	h := newHarness(t)
	h.apply(create(newTask("a", 100)))
	at := int64(500)
	r := h.apply(&fsmpb.Command{Kind: &fsmpb.Command_Update{Update: &fsmpb.UpdateTask{Id: "a", At: 5, IfVersion: 1, ExecuteAt: &at, Payload: []byte(`{"x":1}`)}}})[0].(*TaskResult)
	if r.Err != nil || r.Task.ExecuteAt != 500 || string(r.Task.Payload) != `{"x":1}` || r.Task.Version != 2 {
		t.Fatalf("update: %+v", r)
	}
	if keys := h.due(); len(keys) != 1 || keys[0].At != 500 {
		t.Fatalf("due index after reschedule %v", keys)
	}
	r = h.apply(&fsmpb.Command{Kind: &fsmpb.Command_Update{Update: &fsmpb.UpdateTask{Id: "a", At: 6, IfVersion: 1, ExecuteAt: &at}}})[0].(*TaskResult)
	if !errors.Is(r.Err, ErrVersionMismatch) {
		t.Fatalf("stale If-Match: %v", r.Err)
	}
}

func TestPurgeRemovesOnlyExpired(t *testing.T) {
	h := newHarness(t)
	h.apply(create(newTask("a", 100), newTask("b", 100), newTask("c", 100)))
	h.apply(&fsmpb.Command{Kind: &fsmpb.Command_Cancel{Cancel: &fsmpb.CancelTask{Id: "a", At: 1, RetainUntil: 10}}})
	h.apply(&fsmpb.Command{Kind: &fsmpb.Command_Cancel{Cancel: &fsmpb.CancelTask{Id: "b", At: 1, RetainUntil: 20}}})
	r := h.apply(&fsmpb.Command{Kind: &fsmpb.Command_Purge{Purge: &fsmpb.PurgeTasks{Before: 15, Limit: 10}}})[0].(*PurgeResult)
	if r.Purged != 1 {
		t.Fatalf("purged %d, want 1", r.Purged)
	}
	if _, err := h.f.Get("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("purged task still there: %v", err)
	}
	h.get("b")
	h.get("c")
	// The id is free again after the purge.
	if item := h.apply(create(newTask("a", 100)))[0].(*CreateResult).Items[0]; item.Existed || item.Err != nil {
		t.Fatalf("re-create after purge: %+v", item)
	}
}

func mustMarshal(t *fsmpb.Task) []byte {
	b, err := proto.Marshal(t)
	if err != nil {
		panic(err)
	}
	return b
}

func pageBytes(tasks []*fsmpb.Task) int {
	n := 0
	for _, t := range tasks {
		n += len(mustMarshal(t))
	}
	return n
}

func TestListPages(t *testing.T) {
	h := newHarness(t)
	var tasks []*fsmpb.Task
	for i := 0; i < 25; i++ {
		task := newTask(fmt.Sprintf("t%02d", i), 100)
		if i%5 == 0 {
			task.Queue = "other"
		}
		tasks = append(tasks, task)
	}
	h.apply(create(tasks...))
	for i := 0; i < 25; i += 3 {
		h.apply(cancel(fmt.Sprintf("t%02d", i), 1))
	}
	cases := []struct {
		q    ListQuery
		want int
	}{
		{ListQuery{}, 25},
		{ListQuery{Queue: "other"}, 5},
		{ListQuery{State: fsmpb.State_CANCELLED}, 9},
		{ListQuery{Queue: "default", State: fsmpb.State_SCHEDULED}, 13},
		{ListQuery{Queue: "default"}, 20},
		{ListQuery{Queue: "none"}, 0},
	}
	for _, c := range cases {
		for _, pages := range []struct{ limit, maxBytes int }{{1, 0}, {4, 0}, {100, 0}, {100, 1}, {100, 150}} {
			limit := pages.limit
			seen := map[string]bool{}
			q := c.q
			q.Limit, q.MaxBytes = limit, pages.maxBytes
			for page := 0; ; page++ {
				got, next, err := h.f.List(q)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) > limit {
					t.Fatalf("%+v: page of %d", c.q, len(got))
				}
				// A byte budget ends a page early, but never empty.
				if next != nil && (len(got) == 0 || pages.maxBytes == 1 && len(got) != 1) {
					t.Fatalf("%+v, %d bytes a page: a page of %d tasks with more to come", c.q, pages.maxBytes, len(got))
				}
				if size := pageBytes(got); pages.maxBytes > 0 && len(got) > 1 && size-len(mustMarshal(got[len(got)-1])) >= pages.maxBytes {
					t.Fatalf("%+v: a page of %d bytes went on past its budget of %d", c.q, size, pages.maxBytes)
				}
				for _, task := range got {
					if seen[task.Id] {
						t.Fatalf("%+v limit %d: %s listed twice", c.q, limit, task.Id)
					}
					seen[task.Id] = true
					if c.q.Queue != "" && task.Queue != c.q.Queue || c.q.State != 0 && task.State != c.q.State {
						t.Fatalf("%+v: listed %s in %s/%v", c.q, task.Id, task.Queue, task.State)
					}
				}
				if next == nil {
					break
				}
				q.After = next
			}
			if len(seen) != c.want {
				t.Errorf("%+v limit %d, %d bytes: listed %d, want %d", c.q, limit, pages.maxBytes, len(seen), c.want)
			}
		}
	}
}

func TestReplayedEntriesAreSkipped(t *testing.T) {
	h := newHarness(t)
	h.apply(create(newTask("a", 100)))
	h.apply(cancel("a", 5))
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(h.path)
	if err != nil {
		t.Fatal(err)
	}
	h.f = f
	if got := f.AppliedIndex(); got != 2 {
		t.Fatalf("applied index after reopen %d, want 2", got)
	}
	// raft replays entry 1 (the create) after a restart: nothing changes.
	data, _ := EncodeEntry(create(newTask("a", 100)))
	if out := f.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: data}); out != nil {
		t.Fatalf("replayed entry answered %v", out)
	}
	if got := h.get("a"); got.State != fsmpb.State_CANCELLED {
		t.Fatalf("replay changed the task to %v", got.State)
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

type recorder struct {
	mu       sync.Mutex
	changes  []Change
	restored int
}

func (r *recorder) DueChanged(c []Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c...)
	r.mu.Unlock()
}
func (r *recorder) Restored() { r.mu.Lock(); r.restored++; r.mu.Unlock() }

func TestSnapshotRestore(t *testing.T) {
	h := newHarness(t)
	rec := &recorder{}
	h.f.SetNotifier(rec)
	h.apply(create(newTask("a", 100)))
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	h.apply(create(newTask("b", 200)))
	h.apply(cancel("a", 5))
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	if err := h.f.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := h.get("a"); got.State != fsmpb.State_SCHEDULED {
		t.Fatalf("restored task a is %v", got.State)
	}
	if _, err := h.f.Get("b"); !errors.Is(err, ErrNotFound) {
		t.Fatal("task created after the snapshot survived the restore")
	}
	if got := h.f.AppliedIndex(); got != 1 {
		t.Fatalf("applied index after restore %d, want 1", got)
	}
	if rec.restored != 1 {
		t.Fatal("notifier not told of the restore")
	}
	route := Route{Queue: "default", Host: "127.0.0.1:1"}
	want := []Change{{Kind: ChangeQueue, ID: "default"}, {Kind: ChangeDue, ID: "a", At: 100, Route: route}, {Kind: ChangeDue, ID: "b", At: 200, Route: route}, {Kind: ChangeNotDue, ID: "a", At: 100}}
	if fmt.Sprint(rec.changes) != fmt.Sprint(want) {
		t.Fatalf("changes %v, want %v", rec.changes, want)
	}
	// A snapshot that is not a state file is refused and changes nothing.
	if err := h.f.Restore(io.NopCloser(bytes.NewReader([]byte("not a database")))); err == nil {
		t.Fatal("garbage snapshot restored")
	}
	h.get("a")
}

// A field this build knows, sent with another wire type, is an unknown
// field to proto.Unmarshal, which keeps it, and the record keeps it too;
// the generated decoder refuses such a record (found by FuzzApplyEntry),
// so the state machine reads it the slow way, through every later change.
func TestRecordWithFieldOfWrongWireTypeStaysReadable(t *testing.T) {
	task := newTask("a", 100)
	task.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 6, protowire.VarintType), 1))
	entry, err := DecodeEntry(mustEncode(t, create(task)))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.apply(entry.Commands...)
	h.apply(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100}))
	got := h.get("a")
	if got.State != fsmpb.State_RUNNING || got.Target.GetUrl() != task.Target.Url {
		t.Fatalf("after create and fire: %v, target %v", got.State, got.Target)
	}
	if len(got.ProtoReflect().GetUnknown()) == 0 {
		t.Error("the unknown field was dropped: replicas of other builds would keep it")
	}
	h.checkRecords()
}

func TestDecodeEntryRejects(t *testing.T) {
	for name, data := range map[string][]byte{
		"garbage":     []byte("\xff\xff\xff"),
		"empty":       nil,
		"no kind":     mustEncode(t, &fsmpb.Command{}),
		"unknown tag": {0x0a, 0x03, 0xf8, 0x07, 0x01}, // command with only field 127
		// A task id (in a create) that is not UTF-8: found by FuzzApplyEntry
		// once entries were decoded by the generated codec, which accepts it.
		"string not UTF-8": []byte("\n6Z4\n20000000000000000000000000000000000000000000\xa2000000"),
	} {
		if _, err := DecodeEntry(data); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func mustEncode(t *testing.T, cmds ...*fsmpb.Command) []byte {
	t.Helper()
	data, err := EncodeEntry(cmds...)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzApplyEntry feeds arbitrary log entry data to the decoder, and applies
// whatever decodes: neither may panic, and the due index must only hold
// scheduled tasks at their due time.
func FuzzApplyEntry(f *testing.F) {
	seed := func(cmds ...*fsmpb.Command) {
		data, _ := EncodeEntry(cmds...)
		f.Add(data)
	}
	seed(create(newTask("a", 100)))
	seed(create(newTask("a", 100)), cancel("a", 1))
	seed(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 100}))
	seed(outcome(&fsmpb.Outcome{Id: "a", Attempt: 1, Kind: fsmpb.Outcome_RETRY, RetryAt: 5}))
	pull := newTask("p", 100)
	pull.Target, pull.MaxLateness = nil, 10
	seed(create(pull), &fsmpb.Command{Kind: &fsmpb.Command_Fire{Fire: &fsmpb.FireTasks{Term: 1, At: 100, LeaseUntil: 200, Items: []*fsmpb.FireItem{{Id: "p", DueAt: 100}}}}},
		&fsmpb.Command{Kind: &fsmpb.Command_Extend{Extend: &fsmpb.ExtendLease{Id: "p", Attempt: 1, At: 150, Until: 300}}},
		&fsmpb.Command{Kind: &fsmpb.Command_Outcomes{Outcomes: &fsmpb.RecordOutcomes{At: 300, Outcomes: []*fsmpb.Outcome{{Id: "p", Attempt: 1, Kind: fsmpb.Outcome_FAILED, LeaseExpired: true, Jitter: 0.5}}}}})
	seed(&fsmpb.Command{Kind: &fsmpb.Command_PutQueue{PutQueue: &fsmpb.PutQueue{At: 1, Queue: &fsmpb.Queue{Name: "default", MaxAttempts: 1, Rate: 5}}}},
		&fsmpb.Command{Kind: &fsmpb.Command_DeleteQueue{DeleteQueue: &fsmpb.DeleteQueue{Name: "default"}}})
	seed(create(newTask("a", 100)), &fsmpb.Command{Kind: &fsmpb.Command_Shift{Shift: &fsmpb.ShiftTasks{Ids: []string{"a"}, By: 5}}},
		&fsmpb.Command{Kind: &fsmpb.Command_CancelMany{CancelMany: &fsmpb.CancelTasks{Ids: []string{"a"}, At: 7}}},
		&fsmpb.Command{Kind: &fsmpb.Command_Redrive{Redrive: &fsmpb.RedriveTasks{Queue: "default", At: 9, Limit: 10}}})
	waits := newSchedule("s", 40)
	waits.Overlap = fsmpb.Overlap_OVERLAP_WAIT
	waits.Version = 1
	seed(putSchedule(waits, true, 1), occurrences(waits, 40, 60, occurrence("s", 40), occurrence("s", 50)),
		fire(1, &fsmpb.FireItem{Id: "s@000040", DueAt: 40}), fire(1, &fsmpb.FireItem{Id: "s@000050", DueAt: 50}),
		outcome(&fsmpb.Outcome{Id: "s@000040", Attempt: 1, Kind: fsmpb.Outcome_SUCCEEDED}))
	seed(putSchedule(newSchedule("s", 40), true, 1), putSchedule(newSchedule("s", 50), false, 2), deleteSchedule("s", 3))
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		entry, err := DecodeEntry(data)
		if err != nil {
			return
		}
		h.t = t
		h.apply(entry.Commands...)
		for _, k := range h.due() {
			task := h.get(k.ID)
			if task.State != fsmpb.State_SCHEDULED || task.DueAt != k.At || task.Waiting {
				t.Fatalf("due index holds %v but task is %v due %d (waiting %v)", k, task.State, task.DueAt, task.Waiting)
			}
		}
		h.checkRecords()
	})
}

func TestOpenLockedFileSaysSo(t *testing.T) {
	h := newHarness(t)
	_, err := Open(h.path)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second open: %v", err)
	}
}

func TestDueBacklogCountsDueTasksNotFired(t *testing.T) {
	h := newHarness(t)
	h.apply(create(newTask("a", 10), newTask("b", 20), newTask("c", 30), newTask("later", 100)))
	count, oldest, err := h.f.DueBacklog(30)
	if err != nil || count != 3 || oldest != 10 {
		t.Fatalf("backlog at 30 = %d oldest %d (%v), want 3 oldest 10", count, oldest, err)
	}
	h.apply(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 10}))
	if count, oldest, _ = h.f.DueBacklog(30); count != 2 || oldest != 20 {
		t.Fatalf("after firing a: backlog %d oldest %d, want 2 oldest 20", count, oldest)
	}
	if count, oldest, _ = h.f.DueBacklog(5); count != 0 || oldest != 0 {
		t.Fatalf("backlog at 5 = %d oldest %d, want none", count, oldest)
	}
}

func TestStateChangesAreLoggedAtDebug(t *testing.T) {
	h := newHarness(t)
	var logs bytes.Buffer
	h.f.SetLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	task := newTask("a", 10)
	task.Payload = []byte(`"secret-payload"`)
	h.apply(create(task))
	h.apply(fire(1, &fsmpb.FireItem{Id: "a", DueAt: 10}))
	h.apply(cancel("a", 20)) // running: refused, no change
	for _, want := range []string{
		"task state\" id=a queue=default from=new to=scheduled raft_index=1",
		"task state\" id=a queue=default from=scheduled to=running raft_index=2",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Count(logs.String(), "task state") != 2 || strings.Contains(logs.String(), "secret") {
		t.Errorf("want exactly the two changes, without the payload:\n%s", logs.String())
	}
	// Above debug level nothing is logged.
	logs.Reset()
	h.f.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	h.apply(create(newTask("b", 10)))
	if logs.Len() != 0 {
		t.Errorf("logged at info level:\n%s", logs.String())
	}
}

func TestFinishedCountsFinalStates(t *testing.T) {
	h := newHarness(t)
	h.apply(create(newTask("a", 10), newTask("b", 10), newTask("c", 10)))
	h.apply(cancel("a", 20))
	h.apply(fire(1, &fsmpb.FireItem{Id: "b", DueAt: 10}))
	h.apply(outcome(&fsmpb.Outcome{Id: "b", Attempt: 1, Kind: fsmpb.Outcome_SUCCEEDED}))
	got := map[string]uint64{}
	for _, c := range h.f.Finished() {
		got[c.Queue+"/"+c.State] = c.N
	}
	if len(got) != 2 || got["default/cancelled"] != 1 || got["default/succeeded"] != 1 {
		t.Fatalf("finished = %v, want one cancelled and one succeeded", got)
	}
}
