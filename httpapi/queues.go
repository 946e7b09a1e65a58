package httpapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/service"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// Limits of queue settings.
const (
	maxRate    = 1_000_000
	maxBurst   = 1_000_000
	maxBackoff = 24 * time.Hour
)

func (a *API) pathQueue(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("queue")
	if err := checkName("queue", name, maxQueueLen); err != nil {
		a.writeError(w, err)
		return "", false
	}
	return name, true
}

func (a *API) listQueues(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "stale", "limit", "page_token"); err != nil {
		a.writeError(w, err)
		return
	}
	q := r.URL.Query()
	limit, err := listLimit(r, maxListLimit)
	if err != nil {
		a.writeError(w, err)
		return
	}
	var after string
	if s := q.Get("page_token"); s != "" {
		token, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || !validName(string(token)) {
			a.writeError(w, invalid("page_token: not a token from a previous page"))
			return
		}
		after = string(token)
	}
	infos, next, err := a.backend(r).Store.QueuesPage(after, limit)
	if err != nil {
		a.writeError(w, err)
		return
	}
	out := wire.QueueList{Queues: make([]wire.Queue, len(infos))}
	for i, info := range infos {
		out.Queues[i] = QueueView(info)
	}
	if next != "" {
		out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(next))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getQueue(w http.ResponseWriter, r *http.Request) {
	name, ok := a.pathQueue(w, r)
	if !ok {
		return
	}
	if err := checkQuery(r, "stale"); err != nil {
		a.writeError(w, err)
		return
	}
	info, err := a.backend(r).Store.Queue(name)
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, QueueView(info))
}

func (a *API) putQueue(w http.ResponseWriter, r *http.Request) {
	name, ok := a.pathQueue(w, r)
	if !ok {
		return
	}
	var req wire.QueueSettings
	if err := decodeBody(w, r, bodySlack, &req); err != nil {
		a.writeError(w, err)
		return
	}
	q, err := buildQueue(name, &req)
	if err != nil {
		a.writeError(w, err)
		return
	}
	a.writeQueue(w, r, name, func(ctx context.Context) error {
		_, err := a.backend(r).Service.PutQueue(ctx, q)
		return err
	})
}

// setPaused pauses or resumes a queue, keeping its other settings.
func (a *API) setPaused(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := a.pathQueue(w, r)
		if !ok {
			return
		}
		a.writeQueue(w, r, name, func(ctx context.Context) error {
			_, err := a.backend(r).Service.PauseQueue(ctx, name, paused)
			return err
		})
	}
}

// writeQueue makes a write of queue name's settings, if the queue exists
// or there is room for one more, and answers with the queue.
func (a *API) writeQueue(w http.ResponseWriter, r *http.Request, name string, write func(ctx context.Context) error) {
	if err := a.checkQueueRoom(r, map[string]string{name: "queue"}); err != nil {
		a.writeError(w, err)
		return
	}
	ctx, cancel := a.writeContext(r)
	defer cancel()
	if err := write(ctx); err != nil {
		a.writeError(w, err)
		return
	}
	info, err := a.backend(r).Store.Queue(name)
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, QueueView(info))
}

func (a *API) deleteQueue(w http.ResponseWriter, r *http.Request) {
	name, ok := a.pathQueue(w, r)
	if !ok {
		return
	}
	ctx, cancel := a.writeContext(r)
	defer cancel()
	if err := a.backend(r).Service.DeleteQueue(ctx, name); err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": name})
}

func buildQueue(name string, req *wire.QueueSettings) (*fsmpb.Queue, error) {
	q := &fsmpb.Queue{Name: name, Paused: req.Paused}
	if req.MaxAttempts < 0 || req.MaxAttempts > maxAttempts {
		return nil, invalid("max_attempts: must be between 1 and %d, got %d", maxAttempts, req.MaxAttempts)
	}
	q.MaxAttempts = uint32(req.MaxAttempts)
	for _, d := range []struct {
		field, in string
		lo, hi    time.Duration
		out       *int64
	}{
		{"min_backoff", req.MinBackoff, time.Millisecond, maxBackoff, &q.MinBackoff},
		{"max_backoff", req.MaxBackoff, time.Millisecond, maxBackoff, &q.MaxBackoff},
		{"max_retry_duration", req.MaxRetryDuration, time.Second, maxDelay, &q.MaxRetryDuration},
	} {
		if d.in == "" {
			continue
		}
		v, err := parseDuration(d.field, d.in, d.lo, d.hi)
		if err != nil {
			return nil, err
		}
		*d.out = int64(v)
	}
	if q.MinBackoff > 0 && q.MaxBackoff > 0 && q.MaxBackoff < q.MinBackoff {
		return nil, invalid("max_backoff: must not be less than min_backoff")
	}
	if rl := req.RateLimit; rl != nil {
		if !(rl.PerSecond > 0 && rl.PerSecond <= maxRate) { // also NaN
			return nil, invalid("rate_limit.per_second: must be more than 0 and at most %d, got %v", maxRate, rl.PerSecond)
		}
		if rl.Burst < 0 || rl.Burst > maxBurst {
			return nil, invalid("rate_limit.burst: must be between 1 and %d, got %d", maxBurst, rl.Burst)
		}
		q.Rate, q.Burst = rl.PerSecond, uint32(rl.Burst)
	}
	if req.MaxConcurrent < 0 || req.MaxConcurrent > 1_000_000 {
		return nil, invalid("max_concurrent: must be between 1 and 1000000, got %d", req.MaxConcurrent)
	}
	q.MaxConcurrent = uint32(req.MaxConcurrent)
	return q, nil
}

// QueueView is the API form of a queue.
func QueueView(info *fsm.QueueInfo) wire.Queue {
	q := info.Settings
	dur := func(ns int64) string {
		if ns == 0 {
			return ""
		}
		return time.Duration(ns).String()
	}
	v := wire.Queue{
		Name: info.Name,
		QueueSettings: wire.QueueSettings{
			MaxAttempts: int(q.GetMaxAttempts()), MinBackoff: dur(q.GetMinBackoff()), MaxBackoff: dur(q.GetMaxBackoff()),
			MaxRetryDuration: dur(q.GetMaxRetryDuration()), MaxConcurrent: int(q.GetMaxConcurrent()), Paused: q.GetPaused(),
		},
		CreatedAt: time.Unix(0, q.GetCreatedAt()).UTC(),
		UpdatedAt: time.Unix(0, q.GetUpdatedAt()).UTC(),
		Tasks:     info.Counts,
	}
	policy := fsm.PolicyFor(&fsmpb.Task{}, q)
	v.Effective = wire.RetryPolicy{MaxAttempts: int(policy.MaxAttempts), MinBackoff: policy.Initial.String(), MaxBackoff: policy.Max.String()}
	if q.GetRate() > 0 {
		v.RateLimit = &wire.RateLimit{PerSecond: q.Rate, Burst: int(fsm.Burst(q))}
	}
	return v
}

func (a *API) redrive(w http.ResponseWriter, r *http.Request) {
	name, ok := a.pathQueue(w, r)
	if !ok {
		return
	}
	var req wire.RedriveRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, bodySlack, &req); err != nil {
			a.writeError(w, err)
			return
		}
	}
	if req.ID != "" {
		if err := checkName("id", req.ID, 128); err != nil {
			a.writeError(w, err)
			return
		}
	}
	ctx, cancel := a.writeContext(r)
	defer cancel()
	total, err := a.backend(r).Service.Redrive(ctx, name, req.ID)
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.RedriveResponse{Redriven: total})
}

// bulk cancels (shift false) or shifts the scheduled tasks of a queue a
// selector picks, in chunks of bulkChunk tasks per raft entry.
func (a *API) bulk(shift bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := a.pathQueue(w, r)
		if !ok {
			return
		}
		var req wire.BulkRequest
		if err := decodeBody(w, r, bodySlack, &req); err != nil {
			a.writeError(w, err)
			return
		}
		sel, by, err := a.selector(name, &req, shift)
		if err != nil {
			a.writeError(w, err)
			return
		}
		ctx, cancel := a.writeContext(r)
		defer cancel()
		var res service.Bulk
		if shift {
			res, err = a.backend(r).Service.ShiftSelected(ctx, sel, by, req.DryRun)
		} else {
			res, err = a.backend(r).Service.CancelSelected(ctx, sel, req.DryRun)
		}
		if err != nil {
			a.writeError(w, err)
			return
		}
		out := wire.BulkResponse{DryRun: req.DryRun, Matched: res.Matched, Changed: res.Changed}
		writeJSON(w, http.StatusOK, out)
	}
}

func (a *API) selector(queue string, req *wire.BulkRequest, shift bool) (fsm.Selector, time.Duration, error) {
	sel := fsm.Selector{Queue: queue, Name: req.Name}
	if len(req.Name) > maxNameLen {
		return sel, 0, invalid("name: longer than %d bytes", maxNameLen)
	}
	for _, f := range []struct {
		field, in string
		out       *int64
	}{{"from", req.From, &sel.From}, {"to", req.To, &sel.To}} {
		if f.in == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, f.in)
		if err != nil || !afterEpoch(at) {
			return sel, 0, invalid("%s: not an RFC 3339 time after 1970 (like 2030-01-02T15:04:05Z): %q", f.field, f.in)
		}
		*f.out = at.UnixNano()
	}
	if sel.From != 0 && sel.To != 0 && sel.To <= sel.From {
		return sel, 0, invalid("to: must be after from")
	}
	if !shift {
		if req.By != "" {
			return sel, 0, invalid("by: only a shift takes it")
		}
		return sel, 0, nil
	}
	if req.By == "" {
		return sel, 0, invalid("by: required: how far to move the tasks (like \"1h\", or \"-10m\" to move them earlier)")
	}
	by, err := time.ParseDuration(req.By)
	if err != nil || by == 0 || by > maxDelay || by < -maxDelay {
		return sel, 0, invalid("by: a non-zero duration within 10 years either way (like \"1h\" or \"-10m\"), got %q", req.By)
	}
	return sel, by, nil
}

// checkQueueRoom refuses a request that would create queues beyond
// Limits.MaxQueues. fields maps each queue the request names to the field
// that names it first.
func (a *API) checkQueueRoom(r *http.Request, fields map[string]string) error {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	unknown, existing, err := a.backend(r).Store.QueueRoom(names)
	if err != nil || len(unknown) == 0 || existing+len(unknown) <= a.cfg.Limits.MaxQueues {
		return err
	}
	slices.Sort(unknown)
	return &apiError{http.StatusConflict, wire.CodeResourceExhausted, fmt.Sprintf(
		"%s: %q would be a new queue, and the cluster has %d of its limit of %d queues (--max-queues); use an existing queue, or delete queues no longer used",
		fields[unknown[0]], unknown[0], existing, a.cfg.Limits.MaxQueues)}
}
