package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"
)

// Handler processes one leased task. Returning nil acknowledges it; an
// error fails the attempt (the task is retried by its retry policy, or
// after the delay given with RetryIn).
type Handler interface {
	ProcessTask(ctx context.Context, t *LeasedTask) error
}

// HandlerFunc is a function as a Handler.
type HandlerFunc func(ctx context.Context, t *LeasedTask) error

// ProcessTask calls f.
func (f HandlerFunc) ProcessTask(ctx context.Context, t *LeasedTask) error { return f(ctx, t) }

// ServeMux sends each task to the handler registered for its name.
type ServeMux struct {
	mu       sync.RWMutex
	handlers map[string]Handler
}

// NewServeMux returns an empty ServeMux.
func NewServeMux() *ServeMux { return &ServeMux{handlers: map[string]Handler{}} }

// Handle registers h for tasks named name ("" for tasks without a name).
func (m *ServeMux) Handle(name string, h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handlers[name] = h
}

// HandleFunc registers f for tasks named name.
func (m *ServeMux) HandleFunc(name string, f func(ctx context.Context, t *LeasedTask) error) {
	m.Handle(name, HandlerFunc(f))
}

// ProcessTask runs the handler of t's name; a name with no handler fails
// the attempt.
func (m *ServeMux) ProcessTask(ctx context.Context, t *LeasedTask) error {
	m.mu.RLock()
	h := m.handlers[t.Name]
	m.mu.RUnlock()
	if h == nil {
		return fmt.Errorf("no handler for task name %q", t.Name)
	}
	return h.ProcessTask(ctx, t)
}

// RetryIn wraps err so that the worker asks for the retry after d rather
// than after the task's backoff.
func RetryIn(err error, d time.Duration) error { return &retryError{err: err, after: d} }

type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// WorkerConfig tunes a Worker. Zero values take the defaults named.
type WorkerConfig struct {
	// Queue is the queue to work on ("default").
	Queue string
	// Concurrency is how many tasks are processed at once (10).
	Concurrency int
	// Lease is how long each task is leased for (30s); the worker extends
	// it while the handler runs.
	Lease time.Duration
	// Wait is how long one lease request waits for a task to fall due
	// (20s).
	Wait time.Duration
	// ShutdownTimeout is how long Run waits, once its context ends, for
	// running handlers before it cancels their contexts (30s).
	ShutdownTimeout time.Duration
	// Logger receives what goes wrong: a handler's panic (with its stack),
	// refused acks, failed leases (slog.Default() if nil; a logger with a
	// slog.DiscardHandler silences it).
	Logger *slog.Logger
}

// Worker leases the due tasks of a queue and runs a Handler on each: it
// acks what the handler finished, nacks what it failed, extends the lease
// while it runs, and shuts down gracefully.
//
//	mux := client.NewServeMux()
//	mux.HandleFunc("email:send", func(ctx context.Context, t *client.LeasedTask) error {
//		return send(ctx, t.Payload)
//	})
//	w := client.NewWorker(c, client.WorkerConfig{Queue: "emails", Concurrency: 20})
//	err := w.Run(ctx, mux) // until ctx ends
type Worker struct {
	c   *Client
	cfg WorkerConfig
	log *slog.Logger
}

// NewWorker returns a worker that calls the server through c.
func NewWorker(c *Client, cfg WorkerConfig) *Worker {
	if cfg.Queue == "" {
		cfg.Queue = "default"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 10
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 20 * time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Worker{c: c, cfg: cfg, log: cfg.Logger.With("queue", cfg.Queue)}
}

// Run leases and processes tasks until ctx ends, then stops leasing,
// waits up to ShutdownTimeout for the handlers still running, cancels the
// contexts of those that are not done, reports their outcomes and
// returns. It returns nil after a shutdown, or the error that stopped it
// (a rejected request: bad queue name or token).
func (w *Worker) Run(ctx context.Context, h Handler) error {
	// Handlers run under their own context: it outlives ctx by the
	// shutdown timeout.
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	slots := make(chan struct{}, w.cfg.Concurrency)
	var running sync.WaitGroup
	acks := make(chan *LeasedTask, 4*w.cfg.Concurrency)
	acked := make(chan struct{})
	go func() { defer close(acked); w.acker(acks) }()
	err := w.poll(ctx, hctx, h, slots, &running, acks)

	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownTimeout):
		w.log.Warn("shutdown timeout: cancelling the handlers still running")
		cancelHandlers()
		<-done
	}
	close(acks)
	<-acked
	return err
}

// acker acknowledges finished tasks: whatever finished while the previous
// acknowledgement was under way goes in one request (and one raft entry).
func (w *Worker) acker(in <-chan *LeasedTask) {
	for t := range in {
		batch := []*LeasedTask{t}
	more:
		for len(batch) < 1000 {
			select {
			case next, ok := <-in:
				if !ok {
					break more
				}
				batch = append(batch, next)
			default:
				break more
			}
		}
		w.ackBatch(batch)
	}
}

// ackBatch acknowledges tasks in one request, sending again what the
// server could not take just now, until their leases would have run out
// anyway.
func (w *Worker) ackBatch(tasks []*LeasedTask) {
	items := make([]AckItem, len(tasks))
	for i, t := range tasks {
		items[i] = AckItem{ID: t.ID, LeaseToken: t.LeaseToken, Attempt: t.Attempt}
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Lease)
	defer cancel()
	err := w.c.AckAll(ctx, items, func(item AckItem, refused *ErrorBody) {
		// Stale (the lease ran out and the task went to another worker)
		// or gone: nothing to report any more.
		w.log.Warn("ack refused", "task", item.ID, "attempt", item.Attempt, "err", refused.Message)
	})
	if err != nil {
		w.log.Warn("could not acknowledge; the tasks will be offered again when their leases run out", "tasks", len(items), "err", err)
	}
}

// poll leases as many tasks as there are free slots and starts a handler
// for each, until ctx ends.
func (w *Worker) poll(ctx, hctx context.Context, h Handler, slots chan struct{}, running *sync.WaitGroup, acks chan<- *LeasedTask) error {
	failures := 0
	for ctx.Err() == nil {
		// Wait for one free slot, then take all that are free.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		free := 1
		for more := true; more && free < cap(slots); {
			select {
			case slots <- struct{}{}:
				free++
			default:
				more = false
			}
		}
		tasks, err := w.c.LeaseTasks(ctx, w.cfg.Queue, LeaseRequest{
			Max: free, Wait: w.cfg.Wait.String(), Lease: w.cfg.Lease.String(),
		})
		for i := len(tasks); i < free; i++ {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var e *Error
			if errors.As(err, &e) && e.Status >= 400 && e.Status < 500 && e.Status != 429 {
				return fmt.Errorf("lease tasks of queue %q: %w", w.cfg.Queue, err)
			}
			failures++
			pause := min(time.Duration(failures)*200*time.Millisecond, 5*time.Second)
			w.log.Warn("lease failed; retrying", "err", err, "in", pause)
			select {
			case <-time.After(pause + rand.N(pause/2+1)):
			case <-ctx.Done():
			}
			continue
		}
		failures = 0
		for i := range tasks {
			running.Add(1)
			go func(t *LeasedTask) {
				defer func() { <-slots; running.Done() }()
				w.process(hctx, h, t, acks)
			}(&tasks[i])
		}
	}
	return nil
}

// process runs the handler on t, extending its lease meanwhile, and
// reports the outcome.
func (w *Worker) process(ctx context.Context, h Handler, t *LeasedTask, acks chan<- *LeasedTask) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopExtending := make(chan struct{})
	extended := make(chan struct{})
	go func() {
		defer close(extended)
		w.extend(ctx, t, stopExtending, cancel)
	}()
	err := w.call(ctx, h, t)
	close(stopExtending)
	<-extended
	if err == nil {
		acks <- t // acknowledged with others that finish meanwhile
		return
	}
	w.nack(t, err)
}

// call runs the handler, turning a panic into an error.
func (w *Worker) call(ctx context.Context, h Handler, t *LeasedTask) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
			w.log.Error("handler panicked; the attempt counts as failed", "task", t.ID, "name", t.Name, "attempt", t.Attempt,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	return h.ProcessTask(ctx, t)
}

// extend renews t's lease every third of its length until stop closes. A
// lease that cannot be renewed (it ran out, or the task was taken back)
// cancels the handler: its work no longer counts.
func (w *Worker) extend(ctx context.Context, t *LeasedTask, stop <-chan struct{}, cancel context.CancelFunc) {
	ticker := time.NewTicker(w.cfg.Lease / 3)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		_, err := w.c.ExtendLease(ctx, t.ID, t.LeaseToken, w.cfg.Lease)
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			w.log.Warn("lease lost; cancelling the handler", "task", t.ID, "attempt", t.Attempt, "err", err)
			cancel()
			return
		}
		if err != nil {
			w.log.Warn("extend lease failed; trying again", "task", t.ID, "err", err)
		}
	}
}

// nack fails t's attempt, retrying while the server is unavailable,
// until the lease would have run out anyway.
func (w *Worker) nack(t *LeasedTask, handlerErr error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Lease)
	defer cancel()
	req := NackRequest{LeaseToken: t.LeaseToken, Attempt: t.Attempt, Error: handlerErr.Error()}
	var retry *retryError
	if errors.As(handlerErr, &retry) {
		req.RetryIn = retry.after.String()
	}
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 2*time.Second) {
		_, err := w.c.NackTask(ctx, t.ID, req)
		var e *Error
		switch {
		case err == nil:
			return
		case errors.As(err, &e) && e.Status < 500:
			// Stale (the lease ran out and the task went to another
			// worker) or gone: nothing to report any more.
			w.log.Warn("nack refused", "task", t.ID, "attempt", t.Attempt, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			w.log.Warn("could not nack before the lease ran out; the task will be offered again", "task", t.ID, "err", err)
			return
		case <-time.After(pause):
		}
	}
}
