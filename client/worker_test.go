package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/httpapi"
	"github.com/hourglass-scheduler/hourglass/scheduler"
	"github.com/hourglass-scheduler/hourglass/service"
)

// startServer runs a whole single-node server in-process: raft node,
// scheduler and HTTP API on a real listener.
func startServer(t *testing.T) *client.Client {
	t.Helper()
	return startServerBehind(t, func(h http.Handler) http.Handler { return h })
}

// startServerBehind is startServer with the API's handler wrapped.
func startServerBehind(t *testing.T, wrap func(http.Handler) http.Handler) *client.Client {
	t.Helper()
	node, err := cluster.Open(cluster.Config{NodeID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{Node: node, Health: node})
	node.Start(func(g *cluster.Group) cluster.LeaderFunc {
		writes := service.New(g, g.FSM(), service.Config{})
		sched := scheduler.New(g.FSM(), writes, scheduler.Config{})
		g.FSM().SetNotifier(sched)
		api.SetBackend(g.ID(), &httpapi.Backend{Service: writes, Store: g.FSM(), Group: g, Backups: g, Workers: sched})
		return sched.Run
	}, nil)
	srv := httptest.NewServer(wrap(api))
	t.Cleanup(func() { srv.Close(); node.Close() })
	c := client.New(srv.URL, "")
	waitFor(t, 10*time.Second, "the server to be ready", func() bool { return c.Ready(context.Background()) == nil })
	return c
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createPull creates n pull tasks of queue, named name, due now.
func createPull(t *testing.T, c *client.Client, queue, name string, n int) {
	t.Helper()
	for done := 0; done < n; {
		batch := make([]client.CreateTaskRequest, min(1000, n-done))
		for i := range batch {
			batch[i] = client.CreateTaskRequest{
				ID: fmt.Sprintf("%s-%06d", queue, done+i), Queue: queue, Name: name, Delay: "0s",
				Payload: []byte(fmt.Sprintf(`{"i":%d}`, done+i)),
			}
		}
		res, err := c.CreateTasks(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Error != nil {
				t.Fatalf("create: %+v", r.Error)
			}
		}
		done += len(batch)
	}
}

// TestWorkersSurviveKilledWorkers: 20 workers lease and ack 50,000 tasks
// under a 5 s lease while 2 of them are killed holding leases. Every task
// ends succeeded; the live workers process each exactly once; the tasks
// the killed ones held are offered again after their lease ran out, and
// only those.
func TestWorkersSurviveKilledWorkers(t *testing.T) {
	const live, killed = 18, 2
	tasks := 50_000
	if raceEnabled {
		tasks = 5_000 // scripts/test.sh runs the 50,000 without -race
	}
	const lease = 5 * time.Second
	c := startServer(t)
	createPull(t, c, "work", "job", tasks)

	var mu sync.Mutex
	processed := map[string]int{} // by the live workers
	attempts := map[string]int{}
	mux := client.NewServeMux()
	mux.HandleFunc("job", func(ctx context.Context, task *client.LeasedTask) error {
		mu.Lock()
		processed[task.ID]++
		attempts[task.ID] = task.Attempt
		mu.Unlock()
		return nil
	})
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < live; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := client.NewWorker(c, client.WorkerConfig{Queue: "work", Concurrency: 16, Lease: lease, Wait: time.Second})
			if err := w.Run(ctx, mux); err != nil {
				t.Error(err)
			}
		}()
	}
	// The killed workers ack what they lease for a while, then lease a
	// batch and die holding it: nothing more is heard from them.
	var abandoned sync.Map
	var abandonedN atomic.Int64
	for i := 0; i < killed; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; ; round++ {
				leased, err := c.LeaseTasks(ctx, "work", client.LeaseRequest{Max: 20, Wait: "1s", Lease: lease.String()})
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("lease: %v", err)
					}
					return
				}
				if round == 2 {
					for _, task := range leased {
						abandoned.Store(task.ID, true)
					}
					abandonedN.Add(int64(len(leased)))
					return // killed
				}
				if len(leased) == 0 {
					continue
				}
				acks := make([]client.AckItem, len(leased))
				for k, task := range leased {
					acks[k] = client.AckItem{ID: task.ID, LeaseToken: task.LeaseToken}
				}
				results, err := c.AckTasks(ctx, acks)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("ack: %v", err)
					}
					return
				}
				for k, r := range results {
					if r.Error != nil { // its lease ran out first (a loaded machine): it is offered again
						abandoned.Store(acks[k].ID, true)
					}
				}
			}
		}()
	}
	start := time.Now()
	waitFor(t, 5*time.Minute, "every task to succeed", func() bool {
		q, err := c.GetQueue(context.Background(), "work")
		return err == nil && q.Tasks["succeeded"] == uint64(tasks)
	})
	took := time.Since(start)
	stop()
	wg.Wait()

	if abandonedN.Load() == 0 {
		t.Fatal("the killed workers held no leases when they died: the test tested nothing")
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range processed {
		if n != 1 {
			t.Errorf("task %s processed %d times by live workers", id, n)
		}
		_, wasAbandoned := abandoned.Load(id)
		if wasAbandoned != (attempts[id] == 2) || attempts[id] > 2 {
			t.Errorf("task %s: abandoned %v, processed at attempt %d", id, wasAbandoned, attempts[id])
		}
	}
	reoffered := 0
	abandoned.Range(func(k, _ any) bool {
		task, err := c.GetTask(context.Background(), k.(string))
		if err != nil {
			t.Fatal(err)
		}
		if task.State != "succeeded" || task.Attempts != 2 || processed[task.ID] != 1 {
			t.Errorf("abandoned task %s: %s after %d attempts, processed %d times", task.ID, task.State, task.Attempts, processed[task.ID])
		}
		reoffered++
		return true
	})
	t.Logf("%d tasks, %d workers (%d killed holding %d leases, re-offered %d): all succeeded in %v",
		tasks, live+killed, killed, abandonedN.Load(), reoffered, took.Round(time.Millisecond))
}

// TestWorkerNacksErrorsAndHonoursRetryIn: a handler's error fails the
// attempt (with RetryIn, after that delay), and the next attempt runs.
func TestWorkerNacksErrorsAndHonoursRetryIn(t *testing.T) {
	c := startServer(t)
	createPull(t, c, "flaky", "job", 1)
	var calls atomic.Int32
	var second atomic.Int64
	first := time.Now()
	mux := client.NewServeMux()
	mux.HandleFunc("job", func(ctx context.Context, task *client.LeasedTask) error {
		if calls.Add(1) == 1 {
			first = time.Now()
			return client.RetryIn(fmt.Errorf("downstream busy"), 500*time.Millisecond)
		}
		second.Store(time.Since(first).Nanoseconds())
		return nil
	})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go client.NewWorker(c, client.WorkerConfig{Queue: "flaky", Wait: time.Second}).Run(ctx, mux)
	waitFor(t, 10*time.Second, "the retry to succeed", func() bool {
		task, err := c.GetTask(context.Background(), "flaky-000000")
		return err == nil && task.State == "succeeded"
	})
	task, _ := c.GetTask(context.Background(), "flaky-000000")
	if task.Attempts != 2 {
		t.Fatalf("task after a nack and an ack: %+v", task)
	}
	if d := time.Duration(second.Load()); d < 500*time.Millisecond {
		t.Fatalf("retried %v after the nack, before retry_in 500ms", d)
	}
}

// TestWorkerExtendsLongHandlers: a handler running three times its lease
// keeps the task (no second attempt), and a name with no handler fails.
func TestWorkerExtendsLongHandlers(t *testing.T) {
	c := startServer(t)
	createPull(t, c, "slow", "long", 1)
	createPull(t, c, "slow", "unknown", 0)
	var calls atomic.Int32
	mux := client.NewServeMux()
	mux.HandleFunc("long", func(ctx context.Context, task *client.LeasedTask) error {
		calls.Add(1)
		select {
		case <-time.After(3500 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go client.NewWorker(c, client.WorkerConfig{Queue: "slow", Lease: time.Second, Wait: time.Second}).Run(ctx, mux)
	waitFor(t, 15*time.Second, "the long task to succeed", func() bool {
		task, err := c.GetTask(context.Background(), "slow-000000")
		return err == nil && task.State == "succeeded"
	})
	if task, _ := c.GetTask(context.Background(), "slow-000000"); task.Attempts != 1 || calls.Load() != 1 {
		t.Fatalf("a handler 3.5x its lease: %d attempts, %d calls", task.Attempts, calls.Load())
	}
	unknown, err := c.CreateTask(context.Background(), client.CreateTaskRequest{Queue: "slow", Name: "nobody", Delay: "0s", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the unhandled task to die", func() bool {
		task, err := c.GetTask(context.Background(), unknown.ID)
		return err == nil && task.State == "dead" && strings.Contains(task.LastError, `no handler for task name "nobody"`)
	})
}

// TestWorkerLogsPanics: a handler's panic is a failed attempt, retried,
// and the worker logs it with the task and the handler's stack.
func TestWorkerLogsPanics(t *testing.T) {
	c := startServer(t)
	createPull(t, c, "fragile", "job", 1)
	var calls atomic.Int32
	mux := client.NewServeMux()
	mux.HandleFunc("job", func(ctx context.Context, task *client.LeasedTask) error {
		if calls.Add(1) == 1 {
			panic("out of envelopes")
		}
		return nil
	})
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go client.NewWorker(c, client.WorkerConfig{Queue: "fragile", Wait: time.Second, Logger: logger}).Run(ctx, mux)
	waitFor(t, 10*time.Second, "the retry to succeed", func() bool {
		task, err := c.GetTask(context.Background(), "fragile-000000")
		return err == nil && task.State == "succeeded"
	})
	task, _ := c.GetTask(context.Background(), "fragile-000000")
	if task.Attempts != 2 {
		t.Fatalf("task after a panic and a success: attempts %d", task.Attempts)
	}
	var logged struct{ Level, Msg, Task, Panic, Stack string }
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "panicked") {
			if err := json.Unmarshal([]byte(line), &logged); err != nil {
				t.Fatal(err)
			}
		}
	}
	if logged.Level != "ERROR" || logged.Task != "fragile-000000" || logged.Panic != "out of envelopes" ||
		!strings.Contains(logged.Stack, "worker_test.go") {
		t.Fatalf("the panic was not logged with its task and stack; the worker logged:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the worker's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A lease that does not wait (no wait given) still gets the tasks that
// are due: it is answered once the leader has looked, not at once.
func TestLeaseWithoutWaitGetsDueTasks(t *testing.T) {
	c := startServer(t)
	createPull(t, c, "now", "job", 3)
	got := map[string]bool{}
	waitFor(t, 10*time.Second, "the due tasks leased without waiting", func() bool {
		leased, err := c.LeaseTasks(context.Background(), "now", client.LeaseRequest{Max: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range leased {
			got[task.ID] = true
		}
		return len(got) == 3
	})
}

// TestWorkerSendsAgainAcksOfAnUnavailableGroup: the acks of a batch go to
// their groups apart, and one group may answer "unavailable" (its leader
// just changed) while the others succeed. The worker sends that ack
// again, so the task ends succeeded at its first attempt instead of being
// offered again when its lease runs out.
func TestWorkerSendsAgainAcksOfAnUnavailableGroup(t *testing.T) {
	var batches atomic.Int32
	var resent sync.Map // ids acknowledged again after "unavailable"
	var refusedID atomic.Value
	c := startServerBehind(t, func(api http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/tasks/ack" {
				api.ServeHTTP(w, r)
				return
			}
			var req client.AcksRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Acks) == 0 {
				t.Errorf("ack request: %v", err)
				return
			}
			first := batches.Add(1) == 1
			if !first {
				for _, a := range req.Acks {
					if a.ID == refusedID.Load() {
						resent.Store(a.ID, true)
					}
				}
			}
			forward := req.Acks
			var out client.AcksResponse
			if first { // answer the first ack "unavailable", pass on the rest
				refusedID.Store(req.Acks[0].ID)
				out.Results = append(out.Results, client.AckResult{Error: &client.ErrorBody{Code: client.CodeUnavailable, Message: "group 1: no leader"}})
				forward = req.Acks[1:]
			}
			if len(forward) > 0 {
				body, _ := json.Marshal(client.AcksRequest{Acks: forward})
				rec := httptest.NewRecorder()
				api.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/tasks/ack", bytes.NewReader(body)))
				var got client.AcksResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Errorf("ack answer %q: %v", rec.Body.String(), err)
				}
				out.Results = append(out.Results, got.Results...)
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(out)
		})
	})
	createPull(t, c, "acks", "job", 5)
	mux := client.NewServeMux()
	mux.HandleFunc("job", func(context.Context, *client.LeasedTask) error { return nil })
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go client.NewWorker(c, client.WorkerConfig{Queue: "acks", Wait: time.Second, Lease: time.Minute}).Run(ctx, mux)
	waitFor(t, 10*time.Second, "every task acknowledged", func() bool {
		for i := range 5 {
			task, err := c.GetTask(context.Background(), fmt.Sprintf("acks-%06d", i))
			if err != nil || task.State != "succeeded" {
				return false
			}
		}
		return true
	})
	id, _ := refusedID.Load().(string)
	if _, ok := resent.Load(id); !ok {
		t.Fatalf("the ack of %s, answered unavailable, was not sent again", id)
	}
	task, err := c.GetTask(context.Background(), id)
	if err != nil || task.Attempts != 1 {
		t.Fatalf("task %s after its ack was sent again: %+v, %v", id, task, err)
	}
}
