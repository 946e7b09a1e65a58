package scheduler

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/leader"
)

// ErrLeadershipLost answers a lease request that was waiting when this
// node stopped leading: the worker should ask again (the new leader).
var ErrLeadershipLost = errors.New("this node stopped leading while the request waited for tasks")

// LeaseRequest asks for up to Max due tasks of Queue, leased for Lease,
// waiting up to Wait for the first to fall due.
type LeaseRequest struct {
	Queue string
	Max   int
	Lease time.Duration
	Wait  time.Duration
}

// onceWait bounds how long a request that does not wait waits for the
// loop's answer (which comes at once while the loop runs).
const onceWait = time.Second

// waiter is a lease request waiting for the loop to hand it tasks.
type waiter struct {
	id    uint64
	queue string
	max   int
	// once: a request that does not wait (Wait 0) is answered after the
	// loop's next step, with what is due then or nothing.
	once bool
	// peek: the request only asks to know when a task is there; what the
	// core hands it goes straight back (Peek).
	peek  bool
	ready chan struct{} // closed when done is set by the loop

	mu    sync.Mutex
	done  bool // handed tasks, failed, or given up by the requester
	seen  bool // a peek: a task was there
	items []leader.LeaseItem
	term  uint64
	run   uint64
	err   error
}

// grant hands w the tasks the core gave it, unless its requester gave up
// meanwhile (then false: the tasks go back).
func (w *waiter) grant(items []leader.LeaseItem, term, run uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return false
	}
	w.items, w.term, w.run, w.done = items, term, run, true
	close(w.ready)
	return true
}

// saw tells a peek that a task is there.
func (w *waiter) saw() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.seen, w.done = true, true
		close(w.ready)
	}
}

// wait hands w to the loop and waits, up to wait, for the loop to answer
// it, or for ctx to end.
func (s *Scheduler) wait(ctx context.Context, w *waiter, wait time.Duration) {
	s.mu.Lock()
	s.lastWaiter++
	w.id = s.lastWaiter
	s.inbox.waiters = append(s.inbox.waiters, w)
	s.mu.Unlock()
	s.poke()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-w.ready:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// Peek waits, up to req.Wait, until a due task of req.Queue is there to
// be leased, and reports whether one was; it leases nothing, so giving
// up on it (ctx) loses nothing. A node leasing across groups waits on
// every group this way, then leases from the one that has tasks.
func (s *Scheduler) Peek(ctx context.Context, req LeaseRequest) (bool, error) {
	w := &waiter{queue: req.Queue, max: 1, ready: make(chan struct{}), peek: true}
	s.wait(ctx, w, req.Wait)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.done = true
		s.tell(0, func(in *inbox) { in.dropped = append(in.dropped, w) })
		return false, nil
	}
	return w.seen, w.err
}

// Lease leases due pull tasks of a queue to a worker: it waits for the
// loop to hand it some (up to Wait; none is an empty answer), commits the
// lease through raft, and returns the tasks as leased. A lease that did
// not commit is given back, to be leased again.
func (s *Scheduler) Lease(ctx context.Context, req LeaseRequest) ([]*fsmpb.Task, error) {
	w := &waiter{queue: req.Queue, max: req.Max, ready: make(chan struct{}), once: req.Wait <= 0}
	wait := req.Wait
	if w.once {
		wait = onceWait // the loop answers at its next step, unless it is not running
	}
	s.wait(ctx, w, wait)
	w.mu.Lock()
	if !w.done {
		w.done = true // the loop drops it, and gives back what it hands it
		w.mu.Unlock()
		s.tell(0, func(in *inbox) { in.dropped = append(in.dropped, w) })
		return nil, nil
	}
	w.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	if len(w.items) == 0 {
		return nil, nil // a request that did not wait, and nothing was due
	}
	now := s.cfg.Clock.Now()
	items := make([]*fsmpb.FireItem, len(w.items))
	due := now
	tokens := newLeaseTokens(len(w.items))
	for i, it := range w.items {
		items[i] = it.Fire
		items[i].LeaseToken = tokens[i*LeaseTokenSize : (i+1)*LeaseTokenSize : (i+1)*LeaseTokenSize]
		if at := time.Unix(0, it.Fire.DueAt); at.After(due) {
			due = at
		}
	}
	// Tasks are handed out up to FireLead (+FireBatch) early, so that the
	// lease is committed by their time; the answer waits for it. The lease runs
	// from then.
	// Not the request's context: a worker that hangs up must not leave a
	// lease whose commit nobody learned of (it would only expire, late).
	pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fired, err := s.writer.Lease(pctx, w.term, now, due.Add(req.Lease), items)
	if err != nil {
		s.tell(w.run, func(in *inbox) { in.giveBack = append(in.giveBack, w.items...) })
		return nil, fmt.Errorf("lease: %w", err)
	}
	s.notAccepted(items, fired)
	s.metrics.observeFired(s.cfg.Clock.Now(), fired.Accepted)
	s.metrics.skipped.Add(float64(len(fired.Skipped)))
	if wait := due.Sub(s.cfg.Clock.Now()); wait > 0 && len(fired.Accepted) > 0 {
		timer := time.NewTimer(wait) // never hand a task out before its time
		defer timer.Stop()
		<-timer.C
		// Not ctx: a worker that hung up meanwhile lets the lease run out.
	}
	return fired.Accepted, nil
}

// notAccepted tells the loop which handed-out tasks a fire or lease did
// not take (cancelled or changed meanwhile, expired): they no longer count
// against their queue and host.
func (s *Scheduler) notAccepted(items []*fsmpb.FireItem, res *fsm.FireResult) {
	if len(res.Accepted) == len(items) {
		return
	}
	took := make(map[string]bool, len(res.Accepted))
	for _, t := range res.Accepted {
		took[t.Id] = true
	}
	var ids []string
	for _, it := range items {
		if !took[it.Id] {
			ids = append(ids, it.Id)
		}
	}
	s.unreserve(ids)
}

func (s *Scheduler) unreserve(ids []string) {
	if len(ids) == 0 {
		return
	}
	s.tell(0, func(in *inbox) { in.unreserve = append(in.unreserve, ids...) })
}

func failAll(ws iter.Seq[*waiter]) {
	for w := range ws {
		w.mu.Lock()
		if !w.done {
			w.done, w.err = true, ErrLeadershipLost
			close(w.ready)
		}
		w.mu.Unlock()
	}
}

// expire proposes, for each lease that ran out, the failure of its
// attempt: the task is retried (offered again) or dead. The state machine
// applies it only if the lease did run out by then (not extended since).
func (s *Scheduler) expire(ctx context.Context, in <-chan []string) {
	for ids := range in {
		var batch []*fsmpb.Outcome
		for _, id := range ids {
			t, err := s.store.Get(id)
			if err != nil || t.State != fsmpb.State_RUNNING || t.LeaseExpiresAt == 0 {
				continue
			}
			batch = append(batch, &fsmpb.Outcome{
				Id: t.Id, Attempt: t.Attempts, Kind: fsmpb.Outcome_FAILED, LeaseExpired: true,
				Error:  fmt.Sprintf("lease expired at %s: the worker did not ack, nack or extend it in time", time.Unix(0, t.LeaseExpiresAt).UTC().Format(time.RFC3339Nano)),
				Jitter: rand.Float64(),
			})
		}
		if len(batch) > 0 {
			if r := s.proposeOutcomes(ctx, batch); r != nil {
				s.countApplied(r, "lease_expired")
			}
		}
	}
}

// LeaseTokenSize is the length of a lease token, in bytes.
const LeaseTokenSize = 16

// newLeaseTokens draws the tokens of n leases, LeaseTokenSize bytes
// each, in one read: only the worker a lease answer went to can finish or
// extend the lease.
func newLeaseTokens(n int) []byte {
	tokens := make([]byte, n*LeaseTokenSize)
	crand.Read(tokens) // never fails (crypto/rand panics rather)
	return tokens
}

// Holder names a leased attempt as its worker does: by the lease's token,
// and optionally (not 0) by the attempt number.
type Holder struct {
	Token   []byte
	Attempt uint32
}

// Ack finishes a leased attempt as succeeded.
func (s *Scheduler) Ack(ctx context.Context, id string, h Holder, result string) (*fsmpb.Task, error) {
	now := s.cfg.Clock.Now()
	return s.workerOutcome(ctx, now, &fsmpb.Outcome{
		Id: id, Attempt: h.Attempt, LeaseToken: h.Token, Kind: fsmpb.Outcome_SUCCEEDED, Worker: true, Result: result,
	})
}

// AckItem names one leased attempt to acknowledge.
type AckItem struct {
	ID     string
	Holder Holder
	Result string
}

// AckMany acknowledges many leased attempts in one raft entry, and
// returns for each the error that kept it from applying (nil: applied).
func (s *Scheduler) AckMany(ctx context.Context, acks []AckItem) ([]error, error) {
	now := s.cfg.Clock.Now()
	outcomes := make([]*fsmpb.Outcome, len(acks))
	for i, a := range acks {
		outcomes[i] = &fsmpb.Outcome{
			Id: a.ID, Attempt: a.Holder.Attempt, LeaseToken: a.Holder.Token, Kind: fsmpb.Outcome_SUCCEEDED, Worker: true, Result: a.Result,
		}
	}
	r, err := s.recordWorker(ctx, now, outcomes, "succeeded")
	if err != nil {
		return nil, err
	}
	return r.Errs, nil
}

// Nack fails a leased attempt: the task is retried after its backoff, or
// after retryIn when that is not nil, or dead once its attempts are used
// up.
func (s *Scheduler) Nack(ctx context.Context, id string, h Holder, msg string, retryIn *time.Duration) (*fsmpb.Task, error) {
	now := s.cfg.Clock.Now()
	o := &fsmpb.Outcome{
		Id: id, Attempt: h.Attempt, LeaseToken: h.Token, Kind: fsmpb.Outcome_FAILED, Worker: true, Error: msg,
		Jitter: rand.Float64(),
	}
	if retryIn != nil {
		o.RetryAt = now.Add(*retryIn).UnixNano()
	}
	return s.workerOutcome(ctx, now, o)
}

func (s *Scheduler) workerOutcome(ctx context.Context, now time.Time, o *fsmpb.Outcome) (*fsmpb.Task, error) {
	outcome := "succeeded"
	if o.Kind == fsmpb.Outcome_FAILED {
		outcome = "failed"
	}
	r, err := s.recordWorker(ctx, now, []*fsmpb.Outcome{o}, outcome)
	if err != nil {
		return nil, err
	}
	if r.Errs[0] != nil {
		return nil, r.Errs[0]
	}
	return r.Tasks[0], nil
}

// recordWorker commits outcomes that workers reported, and counts those
// that applied as outcome (succeeded or failed).
func (s *Scheduler) recordWorker(ctx context.Context, now time.Time, outcomes []*fsmpb.Outcome, outcome string) (*fsm.OutcomeResult, error) {
	r, err := s.writer.RecordOutcomes(ctx, now, outcomes)
	if err != nil {
		return nil, err
	}
	s.countApplied(r, outcome)
	return r, nil
}

// countApplied counts the attempts a RecordOutcomes ended, as outcome.
func (s *Scheduler) countApplied(r *fsm.OutcomeResult, outcome string) {
	for _, t := range r.Tasks {
		if t != nil {
			s.metrics.attempt(t.Queue, outcome)
		}
	}
}

// Extend moves the end of a live lease to lease from now.
func (s *Scheduler) Extend(ctx context.Context, id string, h Holder, lease time.Duration) (*fsmpb.Task, error) {
	now := s.cfg.Clock.Now()
	return s.writer.ExtendLease(ctx, now, id, h.Token, h.Attempt, now.Add(lease))
}
