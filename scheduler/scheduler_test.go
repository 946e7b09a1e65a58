package scheduler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/service"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// delivery is one request the receiver saw.
type delivery struct {
	id       string
	attempt  int
	at       time.Time
	fencing  string
	schedAt  string
	body     string
	path     string
	hdrValue string
}

// receiver is a webhook target: /ok answers 204, /fail 500, /hang never
// answers (until the test ends).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []delivery
	done chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{done: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		now := time.Now()
		body := make([]byte, 256)
		n, _ := req.Body.Read(body)
		attempt, _ := strconv.Atoi(req.Header.Get(client.HeaderAttempt))
		r.mu.Lock()
		r.got = append(r.got, delivery{
			id: req.Header.Get(client.HeaderTaskID), attempt: attempt, at: now,
			fencing: req.Header.Get(client.HeaderFencingToken), schedAt: req.Header.Get(client.HeaderScheduledAt),
			body: string(body[:n]), path: req.URL.Path, hdrValue: req.Header.Get("X-Custom"),
		})
		r.mu.Unlock()
		switch req.URL.Path {
		case "/fail":
			http.Error(w, "receiver says no", http.StatusInternalServerError)
		case "/hang":
			select {
			case <-r.done:
			case <-req.Context().Done():
			}
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(func() { close(r.done); r.Close() })
	return r
}

func (r *receiver) deliveries(id string) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, d := range r.got {
		if id == "" || d.id == id {
			out = append(out, d)
		}
	}
	return out
}

type harness struct {
	t      *testing.T
	host   *cluster.Node
	node   *cluster.Group   // the node's one group
	writes *service.Service // straight to the node, whatever the scheduler's wraps
}

func start(t *testing.T, dir string, cfg Config) *harness {
	t.Helper()
	return startWith(t, dir, cfg, func(n *cluster.Group) service.Proposer { return n })
}

// startWith starts a node whose scheduler proposes through wrap(node).
func startWith(t *testing.T, dir string, cfg Config, wrap func(*cluster.Group) service.Proposer) *harness {
	t.Helper()
	h, _ := startScheduler(t, dir, cfg, wrap)
	return h
}

func startScheduler(t *testing.T, dir string, cfg Config, wrap func(*cluster.Group) service.Proposer) (*harness, *Scheduler) {
	t.Helper()
	n, err := cluster.Open(cluster.Config{NodeID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	node := n.Group(1)
	s := New(node.FSM(), service.New(wrap(node), node.FSM(), service.Config{}), cfg)
	node.FSM().SetNotifier(s)
	n.Start(func(*cluster.Group) cluster.LeaderFunc { return s.Run }, nil)
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, host: n, node: node, writes: service.New(node, node.FSM(), service.Config{})}, s
}

func (h *harness) task(id, url string, due time.Time) *fsmpb.Task {
	now := time.Now().UnixNano()
	return &fsmpb.Task{
		Id: id, Queue: "default", ExecuteAt: due.UnixNano(), CreatedAt: now, UpdatedAt: now,
		Payload: []byte(`{"n":1}`), MaxAttempts: 3, Fingerprint: []byte(id),
		Target: &fsmpb.Target{Url: url, Headers: map[string]string{"X-Custom": "yes"}},
	}
}

func (h *harness) create(tasks ...*fsmpb.Task) {
	h.t.Helper()
	news := make([]service.NewTask, len(tasks))
	for i, t := range tasks {
		news[i] = service.NewTask{Task: t}
	}
	items, err := h.writes.CreateTasks(context.Background(), news)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, item := range items {
		if item.Err != nil {
			h.t.Fatal(item.Err)
		}
	}
}

// waitState waits until task id is in state, and returns it.
func (h *harness) waitState(id string, state fsmpb.State, within time.Duration) *fsmpb.Task {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		task, err := h.node.FSM().Get(id)
		if err == nil && task.State == state {
			return task
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("task %s is %v (err %v), not %v, after %v", id, task.GetState(), err, state, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliversOnTimeWithHeaders(t *testing.T) {
	h := start(t, t.TempDir(), Config{})
	recv := newReceiver(t)
	due := time.Now().Add(300 * time.Millisecond)
	h.create(h.task("a", recv.URL+"/ok", due))
	task := h.waitState("a", fsmpb.State_SUCCEEDED, 5*time.Second)
	got := recv.deliveries("a")
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	d := got[0]
	if d.at.Before(due) {
		t.Fatalf("delivered %v early", due.Sub(d.at))
	}
	t.Logf("lateness %v", d.at.Sub(due))
	wantFencing := fmt.Sprintf("%d.%d", task.FireTerm, task.FireIndex)
	if d.attempt != 1 || d.fencing != wantFencing || d.body != `{"n":1}` || d.hdrValue != "yes" {
		t.Fatalf("delivery %+v, want attempt 1, fencing %s, the payload and the custom header", d, wantFencing)
	}
	if at, err := time.Parse(time.RFC3339Nano, d.schedAt); err != nil || !at.Equal(due) {
		t.Fatalf("Hourglass-Scheduled-At %q, want %v", d.schedAt, due)
	}
	if task.Attempts != 1 || task.CompletedAt == 0 {
		t.Fatalf("final task %+v", task)
	}
}

func TestCancelledTaskIsNotDelivered(t *testing.T) {
	h := start(t, t.TempDir(), Config{})
	recv := newReceiver(t)
	now := time.Now()
	h.create(h.task("cancelled", recv.URL+"/ok", now.Add(400*time.Millisecond)), h.task("kept", recv.URL+"/ok", now.Add(500*time.Millisecond)))
	if _, err := h.writes.CancelTask(context.Background(), "cancelled"); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	h.waitState("kept", fsmpb.State_SUCCEEDED, 5*time.Second)
	if got := recv.deliveries("cancelled"); len(got) != 0 {
		t.Fatalf("cancelled task delivered %d times", len(got))
	}
}

// TestErrorBodyOnlyWhenAsked: with ErrorBodyBytes the start of a failed
// response's body follows the status line in last_error.
func TestErrorBodyOnlyWhenAsked(t *testing.T) {
	h := start(t, t.TempDir(), Config{ErrorBodyBytes: 8})
	recv := newReceiver(t)
	task := h.task("f", recv.URL+"/fail", time.Now().Add(50*time.Millisecond))
	task.MaxAttempts = 1
	h.create(task)
	if final := h.waitState("f", fsmpb.State_DEAD, 10*time.Second); final.LastError != "HTTP 500 Internal Server Error: receiver" {
		t.Fatalf("last_error %q", final.LastError)
	}
}

func TestRetriesThenDead(t *testing.T) {
	h, s := startScheduler(t, t.TempDir(), Config{Metrics: prometheus.NewRegistry()}, func(n *cluster.Group) service.Proposer { return n })
	recv := newReceiver(t)
	task := h.task("f", recv.URL+"/fail", time.Now().Add(50*time.Millisecond))
	task.MaxAttempts = 4
	task.Backoff = &fsmpb.Backoff{Initial: int64(40 * time.Millisecond), Max: int64(200 * time.Millisecond), Multiplier: 2}
	h.create(task)
	final := h.waitState("f", fsmpb.State_DEAD, 10*time.Second)
	got := recv.deliveries("f")
	if len(got) != 4 || final.Attempts != 4 {
		t.Fatalf("%d deliveries, %d attempts; want 4 of each", len(got), final.Attempts)
	}
	for i, d := range got {
		if d.attempt != i+1 {
			t.Fatalf("delivery %d carried attempt %d", i, d.attempt)
		}
	}
	// The status line, not the receiver's body (readers of the task need
	// not see what the receiver says).
	if final.LastError != "HTTP 500 Internal Server Error" {
		t.Fatalf("last_error %q", final.LastError)
	}
	var m dto.Metric
	if err := s.metrics.attempts.WithLabelValues("default", "failed").Write(&m); err != nil || m.GetCounter().GetValue() != 4 {
		t.Fatalf("hourglass_attempts_total{outcome=failed} %v (%v), want 4", m.GetCounter().GetValue(), err)
	}
}

func TestHangingReceiverIsCutOffAndDoesNotStallOthers(t *testing.T) {
	h := start(t, t.TempDir(), Config{Workers: 2, QueueConcurrency: 2})
	recv := newReceiver(t)
	due := time.Now().Add(100 * time.Millisecond)
	hang := h.task("hang", recv.URL+"/hang", due)
	hang.MaxAttempts = 1
	hang.Target.Timeout = int64(1500 * time.Millisecond)
	h.create(hang)
	var others []*fsmpb.Task
	for i := 0; i < 20; i++ {
		others = append(others, h.task(fmt.Sprintf("ok%d", i), recv.URL+"/ok", due.Add(time.Duration(i)*10*time.Millisecond)))
	}
	h.create(others...)
	// With two workers and one stuck, the rest still go through the other,
	// long before the stuck one times out.
	for _, o := range others {
		h.waitState(o.Id, fsmpb.State_SUCCEEDED, 5*time.Second)
	}
	if task, _ := h.node.FSM().Get("hang"); task.State != fsmpb.State_RUNNING {
		t.Fatalf("hanging delivery is %v before its timeout", task.State)
	}
	final := h.waitState("hang", fsmpb.State_DEAD, 5*time.Second)
	if final.LastError != "no response within the 1.5s timeout" {
		t.Fatalf("last_error %q", final.LastError)
	}
	if took := time.Unix(0, final.CompletedAt).Sub(due); took < 1500*time.Millisecond {
		t.Fatalf("cut off after %v, before the 1.5s timeout", took)
	}
}

// TestOverdueTasksCatchUpInDueOrder stops a node with tasks due, lets
// them fall overdue, and restarts it: every one is delivered, in due order,
// read from the real due index.
func TestOverdueTasksCatchUpInDueOrder(t *testing.T) {
	dir := t.TempDir()
	recv := newReceiver(t)
	h := start(t, dir, Config{})
	base := time.Now().Add(time.Hour)
	const n = 300
	var tasks []*fsmpb.Task
	for i := 0; i < n; i++ {
		tasks = append(tasks, h.task(fmt.Sprintf("t%03d", i), recv.URL+"/ok", base.Add(time.Duration(i)*time.Millisecond)))
	}
	h.create(tasks...)
	if err := h.host.Close(); err != nil {
		t.Fatal(err)
	}
	// An hour passes: the restarted scheduler's clock says so.
	clock := offsetClock(2 * time.Hour)
	h = start(t, dir, Config{Clock: clock, CatchUpRate: 1000, Workers: 1})
	for _, task := range tasks {
		h.waitState(task.Id, fsmpb.State_SUCCEEDED, 10*time.Second)
	}
	got := recv.deliveries("")
	if len(got) != n {
		t.Fatalf("%d deliveries of %d tasks", len(got), n)
	}
	for i, d := range got {
		if want := fmt.Sprintf("t%03d", i); d.id != want {
			t.Fatalf("delivery %d is %s, want %s (due order)", i, d.id, want)
		}
	}
	// The catch-up rate itself is the core's to keep, checked in
	// simulated time (leader.TestCatchUpInDueOrderAtTheRate).
}

type offsetClock time.Duration

func (c offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c)) }

func TestFailedFiresAreRequeuedToReclaim(t *testing.T) {
	// A failed fire hands the items back to the loop, marked reclaim.
	s := New(nil, nil, Config{})
	s.setActive(true)
	s.requeue([]*fsmpb.FireItem{{Id: "x", DueAt: 5}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		retries := s.take().retries
		if len(retries) == 1 && retries[0].Id == "x" && retries[0].Reclaim {
			return
		}
		if len(retries) > 0 || time.Now().After(deadline) {
			t.Fatalf("requeued %v", retries)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRequeueDoesNotReachALaterRun(t *testing.T) {
	// A fire that failed just before leader duties stopped must not be
	// proposed again by the next run (same term after a restore, say):
	// that run fires the task itself, and a reclaim would repeat it.
	s := New(nil, nil, Config{})
	s.setActive(true)
	s.requeue([]*fsmpb.FireItem{{Id: "old", DueAt: 5}})
	s.setActive(false)
	s.setActive(true)
	time.Sleep(150 * time.Millisecond) // past the old retry's 100ms
	s.requeue([]*fsmpb.FireItem{{Id: "new", DueAt: 5}})
	deadline := time.Now().Add(5 * time.Second)
	var got []string
	for !slices.Contains(got, "new") {
		if time.Now().After(deadline) {
			t.Fatalf("requeued %v, want [new]", got)
		}
		retries := s.take().retries
		for _, r := range retries {
			got = append(got, r.Id)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != 1 {
		t.Fatalf("requeued %v, want only [new]", got)
	}
}

// lossyProposer commits every command but answers the first failFires
// Fire proposals with an indeterminate error, as a timed-out Apply would.
type lossyProposer struct {
	node      *cluster.Group
	failFires atomic.Int32
}

func (p *lossyProposer) Propose(ctx context.Context, cmd *fsmpb.Command) (any, error) {
	res, err := p.node.Propose(ctx, cmd)
	if _, fire := cmd.Kind.(*fsmpb.Command_Fire); fire && err == nil && p.failFires.Add(-1) >= 0 {
		return nil, fmt.Errorf("%w: injected", cluster.ErrIndeterminate)
	}
	return res, err
}

// TestFireWithUnknownOutcomeIsReclaimed: a Fire that committed although
// the proposer was told it might not have must not strand its task in
// running; it is reclaimed and delivered.
func TestFireWithUnknownOutcomeIsReclaimed(t *testing.T) {
	recv := newReceiver(t)
	lossy := &lossyProposer{}
	lossy.failFires.Store(1)
	h := startWith(t, t.TempDir(), Config{}, func(n *cluster.Group) service.Proposer { lossy.node = n; return lossy })
	h.create(h.task("lost-fire", recv.URL+"/ok", time.Now().Add(100*time.Millisecond)))
	task := h.waitState("lost-fire", fsmpb.State_SUCCEEDED, 5*time.Second)
	if got := recv.deliveries("lost-fire"); len(got) != 1 || got[0].attempt != 2 {
		t.Fatalf("deliveries %+v, want one, as attempt 2", got)
	}
	if task.Attempts != 2 {
		t.Fatalf("attempts %d, want 2 (the lost fire, then the reclaim)", task.Attempts)
	}
}

// TestMemoryIsBoundedByHorizonAndCap schedules more tasks than MaxLoaded,
// all beyond the horizon when created: the wheel never holds more than
// MaxLoaded, tasks are loaded as the horizon reaches them, and every one is
// delivered, none early.
func TestMemoryIsBoundedByHorizonAndCap(t *testing.T) {
	recv := newReceiver(t)
	const maxLoaded, n = 40, 400
	h, s := startScheduler(t, t.TempDir(), Config{Horizon: 300 * time.Millisecond, MaxLoaded: maxLoaded},
		func(n *cluster.Group) service.Proposer { return n })
	start := time.Now().Add(time.Second)
	var tasks []*fsmpb.Task
	due := map[string]time.Time{}
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * 2 * time.Millisecond)
		task := h.task(fmt.Sprintf("m%03d", i), recv.URL+"/ok", at)
		due[task.Id] = at
		tasks = append(tasks, task)
	}
	h.create(tasks...)
	if got := s.Loaded(); got != 0 {
		t.Fatalf("%d tasks loaded while all are beyond the horizon", got)
	}
	peak := 0
	for deadline := time.Now().Add(15 * time.Second); len(recv.deliveries("")) < n; {
		peak = max(peak, s.Loaded())
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d delivered", len(recv.deliveries("")), n)
		}
		time.Sleep(time.Millisecond)
	}
	if peak > maxLoaded {
		t.Fatalf("wheel held %d tasks, over MaxLoaded %d", peak, maxLoaded)
	}
	if peak == 0 {
		t.Fatal("never saw a task in the wheel")
	}
	for _, d := range recv.deliveries("") {
		if d.at.Before(due[d.id]) {
			t.Fatalf("%s delivered %v early", d.id, due[d.id].Sub(d.at))
		}
	}
	t.Logf("peak tasks in the wheel %d (cap %d) for %d tasks", peak, maxLoaded, n)
}

type countingVerifier struct {
	calls int
	err   error
}

func (v *countingVerifier) VerifyLeader() error { v.calls++; return v.err }

func TestStaleDeliveriesNeedConfirmedLeadership(t *testing.T) {
	v := &countingVerifier{}
	s := New(nil, nil, Config{Leadership: v, FireLead: 20 * time.Millisecond, StaleAfter: 250 * time.Millisecond})
	now := time.Now()
	fresh := &fsmpb.Task{Id: "fresh", FiredAt: now.Add(-100 * time.Millisecond).UnixNano()}
	stale := &fsmpb.Task{Id: "stale", FiredAt: now.Add(-5 * time.Second).UnixNano()}
	if !s.stillLeading(3, fresh) || v.calls != 0 {
		t.Fatalf("a fresh fire was held back or asked about (%d calls)", v.calls)
	}
	first := s.stillLeading(3, stale)
	second := s.stillLeading(3, stale) // within verifiedFor: no new round trip
	if !first || !second || v.calls != 1 {
		t.Fatalf("stale fires: want one confirmation reused, got %d calls", v.calls)
	}
	if !s.stillLeading(4, stale) || v.calls != 2 {
		t.Fatal("a confirmation from another term was reused")
	}
	v.err = errors.New("not the leader")
	s.verifiedAt = time.Time{}
	if s.stillLeading(4, stale) {
		t.Fatal("a stale delivery was allowed without leadership")
	}
}
