package client

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hourglass-scheduler/hourglass/wire"
)

// Concurrent CreateTask calls share requests: while a create request is
// in flight, the calls that come meanwhile wait, and the next request to
// go carries all of them (up to a cap) to the batch endpoint, which
// commits them in one raft entry. Each call still gets its own task or
// error.
//
// One request is in flight at a time, unless the calls waiting fill a
// request: then it goes beside the others, up to as many requests as the
// client allows. Two half-full requests would mostly wait for each
// other's raft commit on the server and cost two of everything else; one
// carrying both is answered about as soon.
//
// Once no request is in flight, the calls waiting go when every call
// expected is there: as many as there were, waiting or in flight, at the
// peak since the last request went, since callers that were just answered
// tend to call again (a worker loop, a handler pool). Until then the
// request lingers, at most the linger (WithCreateLinger, 1ms by default);
// a request that had to wait it out lowers the expectation to the calls
// that did come, so callers that stopped cost one linger, not one each. A
// lone caller is never kept waiting (it is all that is expected). With a
// linger of 0, calls go the moment a request slot is free.
//
// Measured with 64 goroutines (hourglass bench --sdk, one node): a
// request slot free for every call (98a626c) -> a linger for the calls
// expected (6d64884): 10.2k/10.9k/11.1k -> 13.8k/14.5k/14.9k creates/s,
// requests of about 50 tasks instead of 15; -> one request at a time
// (7121d6f), nine runs alternating with 6d64884's rule: 20-30k -> 23-36k
// creates/s, requests of 64 and almost no single ones (1-3, from 83-195,
// for 50,000 tasks).

// Default create batching (WithCreateBatching, WithCreateLinger).
const (
	DefaultCreateBatch    = 100
	DefaultCreateRequests = 4
	DefaultCreateLinger   = time.Millisecond
)

// WithCreateBatching sets how concurrent CreateTask calls share requests:
// at most maxRequests create requests in flight at once, all but one of
// them full, each carrying up to maxTasks calls (the server's batch limit
// is 1,000 by default). The default is DefaultCreateBatch tasks and
// DefaultCreateRequests requests. maxTasks 1 turns batching off: every
// call is a request of its own, with no limit on how many are in flight.
func WithCreateBatching(maxTasks, maxRequests int) Option {
	return func(o *options) { o.batchTasks, o.batchRequests = maxTasks, maxRequests }
}

// WithCreateLinger sets the longest a batch request waits, once a request
// slot is free, for the calls it expects (those of callers it just
// answered, who usually call again) before it goes with those there are.
// 0 sends whatever waits the moment a slot is free. The default is
// DefaultCreateLinger.
func WithCreateLinger(d time.Duration) Option {
	return func(o *options) { o.batchLinger = max(d, 0) }
}

// coalescer gathers concurrent CreateTask calls into batch requests.
type coalescer struct {
	c      *Client
	max    int           // calls per request
	slots  chan struct{} // a token for each request in flight
	linger time.Duration // longest a request waits for calls expected

	mu       sync.Mutex
	waiting  []*pendingCreate
	inFlight int // calls in requests under way
	requests int // requests under way
	// expected is how many waiting calls a request waits for once
	// nothing is in flight (see ready); peak, the most calls there were,
	// waiting or in flight, since the last request went, is what the
	// next one expects.
	expected, peak int
	lingering      int           // requests waiting for calls expected
	wake           chan struct{} // closed when a lingering request may go, then replaced
}

// pendingCreate is one CreateTask call, waiting to be sent or answered.
type pendingCreate struct {
	req  CreateTaskRequest
	done chan struct{} // closed once task or err is set
	task *Task
	err  error
}

func newCoalescer(c *Client, maxTasks, maxRequests int, linger time.Duration) *coalescer {
	return &coalescer{c: c, max: maxTasks, slots: make(chan struct{}, maxRequests), linger: linger, wake: make(chan struct{})}
}

// create is CreateTask through the coalescer. A caller that gets a
// request slot sends whichever calls wait, its own or not (alone, its own
// call goes as a request of its own, on its context); every caller waits
// for the request that carries its call, or for its context to end.
func (co *coalescer) create(ctx context.Context, req CreateTaskRequest) (*Task, error) {
	p := &pendingCreate{req: req, done: make(chan struct{})}
	co.mu.Lock()
	co.waiting = append(co.waiting, p)
	co.peak = max(co.peak, len(co.waiting)+co.inFlight)
	if co.ready(false) {
		co.wakeLingering()
	}
	co.mu.Unlock()
	slots := co.slots // nil once p is sent: then only its answer counts
	for {
		select {
		case <-p.done:
			return p.task, p.err
		case <-ctx.Done():
			// Not sent: it never will be. Under way: its outcome is
			// unknown, as for a request of its own cancelled in flight.
			co.withdraw(p)
			return nil, ctx.Err()
		case slots <- struct{}{}:
			batch, stillWaiting := co.gather(ctx, p)
			switch {
			case len(batch) == 1 && batch[0] == p:
				// Alone: a request of its own, on its own context.
				p.task, p.err = co.c.createOne(ctx, p.req)
				co.done(1)
				<-co.slots
				return p.task, p.err
			case len(batch) > 0:
				// Not on the caller's context, nor holding the caller:
				// other calls ride along, and this one giving up must
				// neither fail them nor wait for them.
				go func() {
					co.send(context.WithoutCancel(ctx), batch)
					<-co.slots
				}()
			default:
				<-co.slots
				if ctx.Err() != nil {
					co.withdraw(p)
					return nil, ctx.Err()
				}
			}
			if !stillWaiting {
				slots = nil
			}
		}
	}
}

// gather takes up to max waiting calls, oldest first, for a request, once
// they may go (see ready), and reports whether p is waiting still. It
// takes none when p was taken meanwhile (its request's slot holder gathers
// the others) or ctx ended. The linger counts from when no request is in
// flight.
func (co *coalescer) gather(ctx context.Context, p *pendingCreate) (batch []*pendingCreate, stillWaiting bool) {
	var timer *time.Timer
	var expired <-chan time.Time // nil until the linger runs
	lingered := false
	co.mu.Lock()
	for {
		if !slices.Contains(co.waiting, p) {
			co.mu.Unlock()
			return nil, false
		}
		if co.ready(lingered) {
			break
		}
		if timer == nil && co.requests == 0 {
			timer = time.NewTimer(co.linger)
			defer timer.Stop()
			expired = timer.C
		}
		wake := co.wake
		co.lingering++
		co.mu.Unlock()
		select {
		case <-wake:
		case <-expired:
			lingered, expired = true, nil
		case <-ctx.Done():
		}
		co.mu.Lock()
		co.lingering--
		if ctx.Err() != nil {
			co.mu.Unlock()
			return nil, true
		}
	}
	defer co.mu.Unlock()
	// Callers answered since the last request went come back, all that
	// there were at its peak; after a linger waited out, only those that
	// came.
	now := len(co.waiting) + co.inFlight
	if lingered {
		co.expected = now
	} else {
		co.expected = co.peak
	}
	co.peak = now
	n := min(len(co.waiting), co.max)
	batch = append([]*pendingCreate(nil), co.waiting[:n]...)
	co.waiting = append(co.waiting[:0], co.waiting[n:]...)
	co.inFlight += n
	co.requests++
	return batch, slices.Contains(co.waiting, p)
}

// ready reports whether the calls waiting should go now, a slot being
// free: they fill a request; or no request is in flight and either the
// linger is off or over, or as many calls as expected are waiting.
// co.mu is held.
func (co *coalescer) ready(lingered bool) bool {
	switch {
	case len(co.waiting) >= co.max || co.linger == 0:
		return true
	case co.requests > 0:
		return false
	default: // nothing in flight
		return lingered || len(co.waiting) >= co.expected
	}
}

// wakeLingering wakes the requests lingering, to look again whether they
// may go. co.mu is held.
func (co *coalescer) wakeLingering() {
	if co.lingering > 0 {
		close(co.wake)
		co.wake = make(chan struct{})
	}
}

// done counts a request of n calls as answered; a request lingering may
// go now. co.mu is not held.
func (co *coalescer) done(n int) {
	co.mu.Lock()
	defer co.mu.Unlock()
	co.inFlight -= n
	co.requests--
	co.wakeLingering()
}

// withdraw takes p out of the waiting calls, if it is still there.
func (co *coalescer) withdraw(p *pendingCreate) {
	co.mu.Lock()
	defer co.mu.Unlock()
	if i := slices.Index(co.waiting, p); i >= 0 {
		co.waiting = slices.Delete(co.waiting, i, i+1)
	}
}

// send makes one request for batch and answers each call in it.
func (co *coalescer) send(ctx context.Context, batch []*pendingCreate) {
	co.request(ctx, batch)
	co.answer(batch)
}

// request makes one request for batch and sets each call's task or error.
func (co *coalescer) request(ctx context.Context, batch []*pendingCreate) {
	if len(batch) == 1 {
		p := batch[0]
		p.task, p.err = co.c.createOne(ctx, p.req)
		return
	}
	reqs := make([]CreateTaskRequest, len(batch))
	for i, p := range batch {
		reqs[i] = p.req
	}
	results, err := co.c.CreateTasks(ctx, reqs)
	var refused *Error
	switch {
	case errors.As(err, &refused) && refused.Status/100 == 4 && refused.Status != http.StatusUnauthorized && refused.Status != http.StatusForbidden:
		// The batch as a whole was refused (one task's bad input, a
		// body over the limit): each call goes alone, for its own answer.
		for _, p := range batch {
			p.task, p.err = co.c.createOne(ctx, p.req)
		}
		return
	case err == nil && len(results) != len(batch):
		err = errors.New("POST /v1/tasks/batch: the answer does not hold one result per task")
	}
	for i, p := range batch {
		switch {
		case err != nil:
			p.err = err
		case results[i].Error != nil:
			p.err = &Error{Status: statusOf(results[i].Error.Code), Code: results[i].Error.Code, Message: results[i].Error.Message}
		default:
			p.task = results[i].Task
		}
	}
}

// answer hands batch's calls their outcomes. They no longer count as in
// flight before they are woken: a woken caller may call again at once.
func (co *coalescer) answer(batch []*pendingCreate) {
	co.done(len(batch))
	for _, p := range batch {
		close(p.done)
	}
}

// statusOf is the HTTP status a single create would have answered with an
// error of code.
func statusOf(code string) int {
	switch code {
	case wire.CodeInvalidArgument:
		return http.StatusBadRequest
	case wire.CodeNotFound:
		return http.StatusNotFound
	case wire.CodeConflict:
		return http.StatusConflict
	case wire.CodeFailedPrecondition:
		return http.StatusPreconditionFailed
	case wire.CodeUnauthenticated:
		return http.StatusUnauthorized
	case wire.CodePermissionDenied:
		return http.StatusForbidden
	case wire.CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case wire.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case wire.CodeInternal:
		return http.StatusInternalServerError
	default:
		return http.StatusServiceUnavailable
	}
}
