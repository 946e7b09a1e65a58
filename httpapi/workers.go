package httpapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/scheduler"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// Workers serves pull workers: the leader's scheduler.
type Workers interface {
	Lease(ctx context.Context, req scheduler.LeaseRequest) ([]*fsmpb.Task, error)
	// Peek waits until a due task of the queue is there, leasing nothing.
	Peek(ctx context.Context, req scheduler.LeaseRequest) (bool, error)
	Ack(ctx context.Context, id string, h scheduler.Holder, result string) (*fsmpb.Task, error)
	AckMany(ctx context.Context, acks []scheduler.AckItem) ([]error, error)
	Nack(ctx context.Context, id string, h scheduler.Holder, msg string, retryIn *time.Duration) (*fsmpb.Task, error)
	Extend(ctx context.Context, id string, h scheduler.Holder, lease time.Duration) (*fsmpb.Task, error)
}

// headerLeasePeek asks a lease request of one group (a node leasing
// across groups) to wait for a due task and lease nothing; the answer
// carries headerLeaseReady when one is there.
const (
	headerLeasePeek  = "Hourglass-Lease-Peek"
	headerLeaseReady = "Hourglass-Lease-Ready"
)

// Limits of the worker endpoints.
const (
	maxLeaseTasks = 1000
	maxLeaseWait  = time.Minute
	minLease      = time.Second
	maxLease      = 24 * time.Hour
	defaultLease  = 30 * time.Second
	maxWorkerText = 4 << 10 // bytes of an ack's result or a nack's error
	maxAcks       = 1000    // acks in one POST /v1/tasks/ack
)

func (a *API) lease(w http.ResponseWriter, r *http.Request) {
	name, ok := a.pathQueue(w, r)
	if !ok {
		return
	}
	var req wire.LeaseRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, bodySlack, &req); err != nil {
			a.writeError(w, err)
			return
		}
	}
	lr := scheduler.LeaseRequest{Queue: name, Max: req.Max, Lease: defaultLease}
	switch {
	case req.Max == 0:
		lr.Max = 1
	case req.Max < 1 || req.Max > maxLeaseTasks:
		a.writeError(w, invalid("max: must be between 1 and %d, got %d", maxLeaseTasks, req.Max))
		return
	}
	var err error
	if req.Wait != "" {
		if lr.Wait, err = parseDuration("wait", req.Wait, 0, maxLeaseWait); err != nil {
			a.writeError(w, err)
			return
		}
	}
	if req.Lease != "" {
		if lr.Lease, err = parseDuration("lease", req.Lease, minLease, maxLease); err != nil {
			a.writeError(w, err)
			return
		}
	}
	if r.Header.Get(headerLeasePeek) != "" {
		ready, err := a.workers(r).Peek(r.Context(), lr)
		if err != nil {
			a.writeError(w, err)
			return
		}
		if ready {
			w.Header().Set(headerLeaseReady, "1")
		}
		writeJSON(w, http.StatusOK, wire.LeaseResponse{Tasks: []wire.LeasedTask{}})
		return
	}
	tasks, err := a.workers(r).Lease(r.Context(), lr)
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.LeaseResponse{Tasks: leasedViews(tasks)})
}

// leasedViews are leased tasks as the API shows them.
func leasedViews(tasks []*fsmpb.Task) []wire.LeasedTask {
	out := make([]wire.LeasedTask, len(tasks))
	for i, t := range tasks {
		out[i] = wire.LeasedTask{Task: TaskView(t), Attempt: int(t.Attempts), LeaseToken: encodeLeaseToken(t.LeaseToken)}
	}
	return out
}

// encodeLeaseToken is how a lease token travels: base64url, unpadded.
func encodeLeaseToken(token []byte) string { return base64.RawURLEncoding.EncodeToString(token) }

// holder reads the lease token and optional attempt a worker showed;
// field prefixes their names in errors ("acks[3].").
func holder(field, token string, attempt int) (scheduler.Holder, error) {
	if token == "" {
		return scheduler.Holder{}, invalid("%slease_token: required: the lease_token the lease answer gave with the task", field)
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != scheduler.LeaseTokenSize {
		return scheduler.Holder{}, invalid("%slease_token: not a lease token (%d base64url characters, as the lease answer gave it)", field, base64.RawURLEncoding.EncodedLen(scheduler.LeaseTokenSize))
	}
	if attempt < 0 {
		return scheduler.Holder{}, invalid("%sattempt: must be 1 or more when given, got %d", field, attempt)
	}
	return scheduler.Holder{Token: raw, Attempt: uint32(min(attempt, math.MaxUint32))}, nil
}

// workerCall decodes a worker's request body into req, reads the lease
// it names with hold, then answers with the task fn returns.
func (a *API) workerCall(w http.ResponseWriter, r *http.Request, req any, hold func() (scheduler.Holder, error), fn func(ctx context.Context, id string, h scheduler.Holder) (*fsmpb.Task, error)) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	if err := decodeBody(w, r, bodySlack, req); err != nil {
		a.writeError(w, err)
		return
	}
	h, err := hold()
	if err != nil {
		a.writeError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.ProposeTimeout)
	defer cancel()
	task, err := fn(ctx, id, h)
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, TaskView(task))
}

func (a *API) ack(w http.ResponseWriter, r *http.Request) {
	var req wire.AckRequest
	hold := func() (scheduler.Holder, error) { return holder("", req.LeaseToken, req.Attempt) }
	a.workerCall(w, r, &req, hold, func(ctx context.Context, id string, h scheduler.Holder) (*fsmpb.Task, error) {
		if len(req.Result) > maxWorkerText {
			return nil, invalid("result: longer than %d bytes", maxWorkerText)
		}
		return a.workers(r).Ack(ctx, id, h, req.Result)
	})
}

func (a *API) nack(w http.ResponseWriter, r *http.Request) {
	var req wire.NackRequest
	hold := func() (scheduler.Holder, error) { return holder("", req.LeaseToken, req.Attempt) }
	a.workerCall(w, r, &req, hold, func(ctx context.Context, id string, h scheduler.Holder) (*fsmpb.Task, error) {
		if len(req.Error) > maxWorkerText {
			return nil, invalid("error: longer than %d bytes", maxWorkerText)
		}
		var retryIn *time.Duration
		if req.RetryIn != "" {
			d, err := parseDuration("retry_in", req.RetryIn, 0, maxDelay)
			if err != nil {
				return nil, err
			}
			retryIn = &d
		}
		msg := req.Error
		if msg == "" {
			msg = "the worker gave up (nack)"
		}
		return a.workers(r).Nack(ctx, id, h, msg, retryIn)
	})
}

func (a *API) extend(w http.ResponseWriter, r *http.Request) {
	var req wire.ExtendRequest
	hold := func() (scheduler.Holder, error) { return holder("", req.LeaseToken, req.Attempt) }
	a.workerCall(w, r, &req, hold, func(ctx context.Context, id string, h scheduler.Holder) (*fsmpb.Task, error) {
		if req.Lease == "" {
			return nil, invalid("lease: required: how long from now the lease should last (like \"30s\")")
		}
		d, err := parseDuration("lease", req.Lease, minLease, maxLease)
		if err != nil {
			return nil, err
		}
		return a.workers(r).Extend(ctx, id, h, d)
	})
}

// ackMany acknowledges up to maxAcks leased attempts in one raft entry.
func (a *API) ackMany(w http.ResponseWriter, r *http.Request) {
	var req wire.AcksRequest
	if err := decodeBody(w, r, maxAcks*(maxWorkerText+256), &req); err != nil {
		a.writeError(w, err)
		return
	}
	if n := len(req.Acks); n == 0 || n > maxAcks {
		a.writeError(w, invalid("acks: want 1 to %d acks, got %d", maxAcks, n))
		return
	}
	acks := make([]scheduler.AckItem, len(req.Acks))
	for i, ack := range req.Acks {
		field := fmt.Sprintf("acks[%d].", i)
		if err := checkName(field+"id", ack.ID, 128); err != nil {
			a.writeError(w, err)
			return
		}
		h, err := holder(field, ack.LeaseToken, ack.Attempt)
		if err != nil {
			a.writeError(w, err)
			return
		}
		if len(ack.Result) > maxWorkerText {
			a.writeError(w, invalid("%sresult: longer than %d bytes", field, maxWorkerText))
			return
		}
		acks[i] = scheduler.AckItem{ID: ack.ID, Holder: h, Result: ack.Result}
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.ProposeTimeout)
	defer cancel()
	errs, err := a.workers(r).AckMany(ctx, acks)
	if err != nil {
		a.writeError(w, err)
		return
	}
	out := wire.AcksResponse{Results: make([]wire.AckResult, len(errs))}
	for i, e := range errs {
		if e != nil {
			_, body := a.classify(e)
			out.Results[i].Error = &body
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// workers is the pull-worker side of r's group; one that serves none
// answers every call 503.
func (a *API) workers(r *http.Request) Workers {
	if w := a.backend(r).Workers; w != nil {
		return w
	}
	return workersNotServed{}
}

// noWorkers answers every worker call: not served here.
type workersNotServed struct{}

var errNoWorkers = unavailable("this node does not serve pull workers")

func (workersNotServed) Lease(context.Context, scheduler.LeaseRequest) ([]*fsmpb.Task, error) {
	return nil, errNoWorkers
}
func (workersNotServed) Peek(context.Context, scheduler.LeaseRequest) (bool, error) {
	return false, errNoWorkers
}
func (workersNotServed) Ack(context.Context, string, scheduler.Holder, string) (*fsmpb.Task, error) {
	return nil, errNoWorkers
}
func (workersNotServed) AckMany(context.Context, []scheduler.AckItem) ([]error, error) {
	return nil, errNoWorkers
}
func (workersNotServed) Nack(context.Context, string, scheduler.Holder, string, *time.Duration) (*fsmpb.Task, error) {
	return nil, errNoWorkers
}
func (workersNotServed) Extend(context.Context, string, scheduler.Holder, time.Duration) (*fsmpb.Task, error) {
	return nil, errNoWorkers
}
