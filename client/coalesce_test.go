package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeCreates answers creates, single and batched, with the task asked
// for (a batch item with id "taken" is a conflict, one with id "bad"
// fails the whole batch with a 400, as bad input does), and records the
// size of each request. hold, while set, keeps the first request waiting
// until it is closed.
type fakeCreates struct {
	mu    sync.Mutex
	sizes []int // tasks per request: 1 for the single endpoint, -n for a batch of n
	hold  chan struct{}
	// delay, if set, is how long each request takes; active counts those
	// under way, mostActive the most there were at once.
	delay              time.Duration
	active, mostActive int
}

func (f *fakeCreates) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hold := f.hold
	f.hold = nil
	f.active++
	f.mostActive = max(f.mostActive, f.active)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.active--
		f.mu.Unlock()
	}()
	if hold != nil {
		<-hold
	}
	time.Sleep(f.delay)
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v1/tasks":
		var req CreateTaskRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.record(1)
		if req.ID == "bad" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"code":"invalid_argument","message":"delay: bad"}}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(Task{ID: req.ID, State: "scheduled"})
	case "/v1/tasks/batch":
		var req BatchRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.record(-len(req.Tasks))
		var out BatchResponse
		for i, t := range req.Tasks {
			switch t.ID {
			case "bad":
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":{"code":"invalid_argument","message":"tasks[%d].delay: bad"}}`, i)
				return
			case "taken":
				out.Results = append(out.Results, BatchResult{Error: &ErrorBody{Code: "conflict", Message: "taken"}})
			default:
				out.Results = append(out.Results, BatchResult{Task: &Task{ID: t.ID, State: "scheduled"}})
			}
		}
		json.NewEncoder(w).Encode(out)
	}
}

func (f *fakeCreates) record(n int) {
	f.mu.Lock()
	f.sizes = append(f.sizes, n)
	f.mu.Unlock()
}

// createAll calls CreateTask for each id at once and returns each
// call's answer, by id.
func createAll(c *Client, ids []string) map[string]error {
	var mu sync.Mutex
	got := map[string]error{}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			task, err := c.CreateTask(context.Background(), CreateTaskRequest{ID: id, Delay: "1h"})
			if err == nil && task.ID != id {
				err = fmt.Errorf("answered with task %q", task.ID)
			}
			mu.Lock()
			got[id] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

// waitQueued waits until n calls wait in c's coalescer.
func waitQueued(t *testing.T, c *Client, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.creates.mu.Lock()
		queued := len(c.creates.waiting)
		c.creates.mu.Unlock()
		if queued >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// heldClient is a client allowed one create request in flight, whose
// first call ("first", answered on the returned channel) the server holds
// until hold is closed: calls made meanwhile wait in the coalescer.
func heldClient(t *testing.T) (c *Client, f *fakeCreates, hold chan struct{}, first chan error) {
	t.Helper()
	hold = make(chan struct{})
	f = &fakeCreates{hold: hold}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c = New(srv.URL, "", WithCreateBatching(100, 1))
	first = make(chan error, 1)
	go func() {
		_, err := c.CreateTask(context.Background(), CreateTaskRequest{ID: "first", Delay: "1h"})
		first <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(c.creates.slots) == 0 { // sent, and held by the server
		if time.Now().After(deadline) {
			t.Fatal("the first create was never sent")
		}
		time.Sleep(time.Millisecond)
	}
	return c, f, hold, first
}

// TestCreatesShareRequests: a lone call goes alone to the single
// endpoint; calls made while the one request allowed is in flight go
// together in the next, a batch, and each gets its own task, or its own
// error (a conflict for "taken").
func TestCreatesShareRequests(t *testing.T) {
	c, f, hold, first := heldClient(t)
	var ids []string
	for i := range 30 {
		ids = append(ids, fmt.Sprintf("t%02d", i))
	}
	ids = append(ids, "taken")
	answers := make(chan map[string]error)
	go func() { answers <- createAll(c, ids) }()
	waitQueued(t, c, len(ids))
	close(hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	got := <-answers
	for _, id := range ids {
		switch err := got[id]; {
		case id == "taken":
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusConflict || !errors.Is(err, ErrConflict) {
				t.Errorf("taken: %v, want a 409 conflict", err)
			}
		case err != nil:
			t.Errorf("%s: %v", id, err)
		}
	}
	if want := []int{1, -len(ids)}; !slices.Equal(f.sizes, want) {
		t.Fatalf("requests of %v tasks (negative: a batch), want %v", f.sizes, want)
	}
}

// TestRefusedBatchGoesAlone: a batch refused as a whole for one call's
// bad input is sent again a call at a time, so only that call fails.
func TestRefusedBatchGoesAlone(t *testing.T) {
	c, f, hold, _ := heldClient(t)
	ids := []string{"a", "bad", "b"}
	answers := make(chan map[string]error)
	go func() { answers <- createAll(c, ids) }()
	waitQueued(t, c, len(ids))
	close(hold)
	got := <-answers
	if got["a"] != nil || got["b"] != nil || !errors.Is(got["bad"], ErrInvalidArgument) {
		t.Fatalf("answers %v: want a and b created, bad refused", got)
	}
	if want := []int{1, -3, 1, 1, 1}; !slices.Equal(f.sizes, want) {
		t.Fatalf("requests %v, want %v", f.sizes, want)
	}
}

// TestCancelledWhileWaiting: a call whose context ends while it waits
// for a request returns, and is never sent.
func TestCancelledWhileWaiting(t *testing.T) {
	c, f, hold, first := heldClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := c.CreateTask(ctx, CreateTaskRequest{ID: "gave-up", Delay: "1h"})
		errc <- err
	}()
	waitQueued(t, c, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("a call cancelled while waiting: %v", err)
	}
	close(hold)
	<-first
	if !slices.Equal(f.sizes, []int{1}) {
		t.Fatalf("requests %v: the cancelled call was sent", f.sizes)
	}
}

// TestBatchingOff: with WithCreateBatching(1, 0) every call is a request
// of its own, however many are in flight.
func TestBatchingOff(t *testing.T) {
	f := &fakeCreates{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := New(srv.URL, "", WithCreateBatching(1, 0))
	if c.creates != nil {
		t.Fatal("batching is on")
	}
	got := createAll(c, []string{"a", "b", "c"})
	for id, err := range got {
		if err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	if !slices.Equal(f.sizes, []int{1, 1, 1}) {
		t.Fatalf("requests %v", f.sizes)
	}
}

// TestLoneCallKeepsItsContext: a call that goes alone ends when its
// context does, however long the server takes.
func TestLoneCallKeepsItsContext(t *testing.T) {
	hold := make(chan struct{})
	f := &fakeCreates{hold: hold}
	srv := httptest.NewServer(f)
	defer srv.Close()
	defer close(hold)
	c := New(srv.URL, "")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := c.CreateTask(ctx, CreateTaskRequest{ID: "slow", Delay: "1h"})
		errc <- err
	}()
	for len(c.creates.slots) == 0 { // sent, and held by the server
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("a lone call whose context ended: %v", err)
	}
}
