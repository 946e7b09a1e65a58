package scheduler

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

func (h *harness) putQueue(q *fsmpb.Queue) {
	h.t.Helper()
	if _, err := h.writes.PutQueue(context.Background(), q); err != nil {
		h.t.Fatalf("put queue: %v", err)
	}
}

// queueTasks makes n tasks of queue for url, due at due.
func (h *harness) queueTasks(queue, url string, n int, due time.Time) []*fsmpb.Task {
	var tasks []*fsmpb.Task
	for i := 0; i < n; i++ {
		task := h.task(fmt.Sprintf("%s-%04d", queue, i), url, due)
		task.Queue = queue
		tasks = append(tasks, task)
	}
	h.create(tasks...)
	return tasks
}

// arrivals are the receiver's delivery times of tasks whose id starts
// with prefix, in order.
func (r *receiver) arrivals(prefix string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Time
	for _, d := range r.got {
		if len(d.id) >= len(prefix) && d.id[:len(prefix)] == prefix {
			out = append(out, d.at)
		}
	}
	return out
}

// stuckReceiver answers nothing for a while (until the test ends, at
// most), and counts the requests it holds at once.
type stuckReceiver struct {
	*httptest.Server
	mu             sync.Mutex
	inFlight, most int
}

func newStuckReceiver(t *testing.T, hold time.Duration) *stuckReceiver {
	s := &stuckReceiver{}
	release := make(chan struct{})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.inFlight++
		s.most = max(s.most, s.inFlight)
		s.mu.Unlock()
		select {
		case <-time.After(hold):
		case <-release:
		case <-r.Context().Done():
		}
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}))
	t.Cleanup(func() { close(release); s.Close() })
	return s
}

// peak is the most requests the receiver held at once.
func (s *stuckReceiver) peak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.most
}

// lateness is how late after its execute_at each of tasks arrived, sorted.
func (r *receiver) lateness(tasks []*fsmpb.Task) []time.Duration {
	var out []time.Duration
	for _, task := range tasks {
		d := r.deliveries(task.Id)
		out = append(out, d[0].at.Sub(time.Unix(0, task.ExecuteAt)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (h *harness) waitAll(tasks []*fsmpb.Task, within time.Duration) {
	h.t.Helper()
	for _, task := range tasks {
		h.waitState(task.Id, fsmpb.State_SUCCEEDED, within)
	}
}

// TestPausedQueueDeliversNothingThenResumes: tasks of a paused queue fall
// due and stay scheduled; after resume each is delivered once.
func TestPausedQueueDeliversNothingThenResumes(t *testing.T) {
	h := start(t, t.TempDir(), Config{})
	recv := newReceiver(t)
	h.putQueue(&fsmpb.Queue{Name: "held", Paused: true})
	due := time.Now().Add(100 * time.Millisecond)
	held := h.queueTasks("held", recv.URL+"/ok", 50, due)
	other := h.queueTasks("other", recv.URL+"/ok", 5, due.Add(300*time.Millisecond))
	h.waitAll(other, 5*time.Second) // the scheduler is working, and well past the held ones' time
	if n := len(recv.arrivals("held-")); n != 0 {
		t.Fatalf("a paused queue delivered %d tasks", n)
	}
	for _, task := range held {
		if got, _ := h.node.FSM().Get(task.Id); got.State != fsmpb.State_SCHEDULED {
			t.Fatalf("task %s of a paused queue is %v", task.Id, got.State)
		}
	}
	h.putQueue(&fsmpb.Queue{Name: "held"})
	h.waitAll(held, 5*time.Second)
	seen := map[string]int{}
	for _, d := range recv.deliveries("") {
		seen[d.id]++
	}
	for _, task := range held {
		if seen[task.Id] != 1 {
			t.Fatalf("task %s delivered %d times after resume", task.Id, seen[task.Id])
		}
	}
}

// TestSlowTargetDoesNotDelayOthers: a target that takes 10 s to answer
// holds at most TargetConcurrency deliveries; the tasks of other targets
// keep their lateness.
func TestSlowTargetDoesNotDelayOthers(t *testing.T) {
	h := start(t, t.TempDir(), Config{Workers: 16, TargetConcurrency: 4})
	slow := newStuckReceiver(t, 10*time.Second)
	fast := newReceiver(t)

	now := time.Now()
	var slowTasks []*fsmpb.Task
	for i := 0; i < 100; i++ {
		task := h.task(fmt.Sprintf("slow-%03d", i), slow.URL+"/", now)
		task.Target.Timeout = int64(30 * time.Second)
		slowTasks = append(slowTasks, task)
	}
	h.create(slowTasks...)
	var fastTasks []*fsmpb.Task
	for i := 0; i < 200; i++ {
		fastTasks = append(fastTasks, h.task(fmt.Sprintf("fast-%03d", i), fast.URL+"/ok", now.Add(300*time.Millisecond+time.Duration(i)*5*time.Millisecond)))
	}
	h.create(fastTasks...)
	h.waitAll(fastTasks, 10*time.Second)

	lateness := fast.lateness(fastTasks)
	p99 := lateness[len(lateness)*99/100]
	peak := slow.peak()
	if peak > 4 {
		t.Fatalf("the slow target had %d deliveries in flight, over the cap of 4", peak)
	}
	if p99 > time.Second {
		t.Fatalf("other targets' lateness p99 %v with a slow target taking the workers", p99)
	}
	t.Logf("slow target: %d in flight at most; other target lateness p50 %v p99 %v", peak, lateness[len(lateness)/2], p99)
}

// TestHangingQueueDoesNotStallAnother is issue 17's probe: one queue's
// tasks go to an endpoint that never answers, under four spellings of its
// address (which once counted as four hosts, and so took every worker);
// another queue's tasks to a healthy receiver are delivered on time all
// the same, and the hanging endpoint never has more than its share.
func TestHangingQueueDoesNotStallAnother(t *testing.T) {
	h := start(t, t.TempDir(), Config{})
	hanging := newStuckReceiver(t, time.Hour)
	healthy := newReceiver(t)

	port := hanging.Listener.Addr().(*net.TCPAddr).Port
	spellings := []string{
		fmt.Sprintf("http://127.0.0.1:%d/", port), fmt.Sprintf("http://127.0.0.1:0%d/", port),
		fmt.Sprintf("http://127.0.0.1:00%d/", port), fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port),
	}
	now := time.Now()
	var stuck []*fsmpb.Task
	for i := 0; i < 400; i++ {
		task := h.task(fmt.Sprintf("hang-%03d", i), spellings[i%len(spellings)], now)
		task.Queue = "tenant-a"
		task.Target.Timeout = int64(30 * time.Minute)
		stuck = append(stuck, task)
	}
	h.create(stuck...)
	var fine []*fsmpb.Task
	for i := 0; i < 100; i++ {
		task := h.task(fmt.Sprintf("ok-%03d", i), healthy.URL+"/ok", now.Add(500*time.Millisecond+time.Duration(i)*5*time.Millisecond))
		task.Queue = "tenant-b"
		fine = append(fine, task)
	}
	h.create(fine...)
	h.waitAll(fine, 10*time.Second)

	lateness := healthy.lateness(fine)
	p99 := lateness[len(lateness)*99/100]
	peak := hanging.peak()
	if peak > 64 {
		t.Fatalf("the hanging endpoint held %d workers, over the host cap of 64", peak)
	}
	if p99 > time.Second {
		t.Fatalf("the healthy queue's lateness p99 is %v beside a hanging one", p99)
	}
	t.Logf("hanging endpoint: %d in flight at most; healthy queue lateness p50 %v p99 %v", peak, lateness[len(lateness)/2], p99)
}

// TestMaxLatenessExpiresAfterOutage: tasks fall due while the node is
// down; when it comes back, those whose max_lateness has passed end
// expired and are not delivered, the others are delivered.
func TestMaxLatenessExpiresAfterOutage(t *testing.T) {
	dir := t.TempDir()
	recv := newReceiver(t)
	h := start(t, dir, Config{})
	due := time.Now().Add(time.Hour)
	strict := h.task("strict", recv.URL+"/ok", due)
	strict.MaxLateness = int64(time.Minute)
	lenient := h.task("lenient", recv.URL+"/ok", due)
	lenient.MaxLateness = int64(3 * time.Hour)
	plain := h.task("plain", recv.URL+"/ok", due)
	h.create(strict, lenient, plain)
	if err := h.host.Close(); err != nil {
		t.Fatal(err)
	}
	// Two hours of outage: the restarted scheduler's clock says so.
	h = start(t, dir, Config{Clock: offsetClock(2*time.Hour + time.Minute)})
	h.waitState("lenient", fsmpb.State_SUCCEEDED, 5*time.Second)
	h.waitState("plain", fsmpb.State_SUCCEEDED, 5*time.Second)
	expired := h.waitState("strict", fsmpb.State_EXPIRED, 5*time.Second)
	if n := len(recv.deliveries("strict")); n != 0 || expired.Attempts != 0 || expired.CompletedAt == 0 {
		t.Fatalf("expired task: %d deliveries, %+v", n, expired)
	}
}

// TestRetryAfterHoldsTheHostBack: a target answering 429 with
// Retry-After: 1 gets nothing more for a second, and the task's retry
// comes no earlier.
func TestRetryAfterHoldsTheHostBack(t *testing.T) {
	h := start(t, t.TempDir(), Config{})
	var mu sync.Mutex
	var arrivals []time.Time
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		first := len(arrivals) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(busy.Close)
	now := time.Now()
	first := h.task("first", busy.URL+"/", now.Add(100*time.Millisecond))
	first.Backoff = &fsmpb.Backoff{Initial: int64(time.Millisecond), Max: int64(time.Millisecond)}
	h.create(first)
	h.create(h.task("second", busy.URL+"/", now.Add(300*time.Millisecond)))
	h.waitState("first", fsmpb.State_SUCCEEDED, 5*time.Second)
	h.waitState("second", fsmpb.State_SUCCEEDED, 5*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 3 {
		t.Fatalf("%d requests, want 3 (429, then both tasks)", len(arrivals))
	}
	for _, at := range arrivals[1:] {
		if gap := at.Sub(arrivals[0]); gap < time.Second {
			t.Fatalf("a request came %v after Retry-After: 1", gap)
		}
	}
	if task, _ := h.node.FSM().Get("first"); task.Attempts != 2 {
		t.Fatalf("first task took %d attempts", task.Attempts)
	}
}
