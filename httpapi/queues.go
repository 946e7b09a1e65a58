package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// Limits of queue settings.
const (
	maxRate     = 1_000_000
	maxBurst    = 1_000_000
	maxBackoff  = 24 * time.Hour
	bulkChunk   = 1000 // tasks per raft entry of a bulk operation
	maxRedrives = 1000 // dead tasks per raft entry of a redrive
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
	limit := maxListLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			a.writeError(w, invalid("limit: must be a number from 1 to %d, got %q", maxListLimit, s))
			return
		}
		limit = n
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
	infos, next, err := a.cfg.Store.QueuesPage(after, limit)
	if err != nil {
		a.writeError(w, err)
		return
	}
	out := client.QueueList{Queues: make([]client.Queue, len(infos))}
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
	info, err := a.cfg.Store.Queue(name)
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
	r.Body = http.MaxBytesReader(w, r.Body, bodySlack)
	var req client.QueueSettings
	if err := decodeJSON(r.Body, &req); err != nil {
		a.writeError(w, err)
		return
	}
	q, err := buildQueue(name, &req)
	if err != nil {
		a.writeError(w, err)
		return
	}
	a.writeQueue(w, r, q)
}

// setPaused pauses or resumes a queue, keeping its other settings.
func (a *API) setPaused(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := a.pathQueue(w, r)
		if !ok {
			return
		}
		q := &fsmpb.Queue{Name: name}
		info, err := a.cfg.Store.Queue(name)
		switch {
		case err == nil:
			q = info.Settings
		case !isNotFound(err):
			a.writeError(w, err)
			return
		}
		q.Paused = paused
		a.writeQueue(w, r, q)
	}
}

func (a *API) writeQueue(w http.ResponseWriter, r *http.Request, q *fsmpb.Queue) {
	if err := a.checkQueueRoom(map[string]string{q.Name: "queue"}); err != nil {
		a.writeError(w, err)
		return
	}
	res, err := a.propose(r, &fsmpb.Command{Kind: &fsmpb.Command_PutQueue{PutQueue: &fsmpb.PutQueue{Queue: q, At: a.cfg.Now().UnixNano()}}})
	if err == nil {
		err = res.(*fsm.QueueResult).Err
	}
	if err != nil {
		a.writeError(w, err)
		return
	}
	info, err := a.cfg.Store.Queue(q.Name)
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
	res, err := a.propose(r, &fsmpb.Command{Kind: &fsmpb.Command_DeleteQueue{DeleteQueue: &fsmpb.DeleteQueue{Name: name}}})
	if err == nil {
		err = res.(*fsm.QueueResult).Err
	}
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": name})
}

func buildQueue(name string, req *client.QueueSettings) (*fsmpb.Queue, error) {
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
func QueueView(info *fsm.QueueInfo) client.Queue {
	q := info.Settings
	dur := func(ns int64) string {
		if ns == 0 {
			return ""
		}
		return time.Duration(ns).String()
	}
	v := client.Queue{
		Name: info.Name,
		QueueSettings: client.QueueSettings{
			MaxAttempts: int(q.GetMaxAttempts()), MinBackoff: dur(q.GetMinBackoff()), MaxBackoff: dur(q.GetMaxBackoff()),
			MaxRetryDuration: dur(q.GetMaxRetryDuration()), MaxConcurrent: int(q.GetMaxConcurrent()), Paused: q.GetPaused(),
		},
		CreatedAt: time.Unix(0, q.GetCreatedAt()).UTC(),
		UpdatedAt: time.Unix(0, q.GetUpdatedAt()).UTC(),
		Tasks:     info.Counts,
	}
	policy := fsm.PolicyFor(&fsmpb.Task{}, q)
	v.Effective = client.RetryPolicy{MaxAttempts: int(policy.MaxAttempts), MinBackoff: policy.Initial.String(), MaxBackoff: policy.Max.String()}
	if q.GetRate() > 0 {
		v.RateLimit = &client.RateLimit{PerSecond: q.Rate, Burst: int(fsm.Burst(q))}
	}
	return v
}

func (a *API) redrive(w http.ResponseWriter, r *http.Request) {
	name, ok := a.pathQueue(w, r)
	if !ok {
		return
	}
	var req client.RedriveRequest
	if r.ContentLength != 0 {
		r.Body = http.MaxBytesReader(w, r.Body, bodySlack)
		if err := decodeJSON(r.Body, &req); err != nil {
			a.writeError(w, err)
			return
		}
	}
	cmd := &fsmpb.RedriveTasks{Queue: name, At: a.cfg.Now().UnixNano(), Limit: maxRedrives}
	if req.ID != "" {
		if err := checkName("id", req.ID, 128); err != nil {
			a.writeError(w, err)
			return
		}
		task, err := a.cfg.Store.Get(req.ID)
		if err != nil {
			a.writeError(w, err)
			return
		}
		if task.Queue != name || task.State != fsmpb.State_DEAD {
			a.writeError(w, fmt.Errorf("%w: task %q is %s in queue %q; only a dead task of queue %q can be redriven",
				fsm.ErrConflict, req.ID, fsm.StateName(task.State), task.Queue, name))
			return
		}
		cmd.Ids = []string{req.ID}
	}
	total := 0
	for {
		cmd.At = a.cfg.Now().UnixNano()
		res, err := a.propose(r, &fsmpb.Command{Kind: &fsmpb.Command_Redrive{Redrive: cmd}})
		if err != nil {
			a.writeError(w, fmt.Errorf("after redriving %d tasks: %w", total, err))
			return
		}
		n := res.(*fsm.CountResult).Changed
		total += n
		if cmd.Ids != nil || n < maxRedrives {
			break
		}
	}
	writeJSON(w, http.StatusOK, client.RedriveResponse{Redriven: total})
}

// bulk cancels (shift false) or shifts the scheduled tasks of a queue a
// selector picks, in chunks of bulkChunk tasks per raft entry.
func (a *API) bulk(shift bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := a.pathQueue(w, r)
		if !ok {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, bodySlack)
		var req client.BulkRequest
		if err := decodeJSON(r.Body, &req); err != nil {
			a.writeError(w, err)
			return
		}
		sel, by, err := a.selector(name, &req, shift)
		if err != nil {
			a.writeError(w, err)
			return
		}
		out := client.BulkResponse{DryRun: req.DryRun}
		after := ""
		for {
			ids, more, err := a.cfg.Store.SelectScheduled(sel, after, bulkChunk)
			if err != nil {
				a.writeError(w, err)
				return
			}
			out.Matched += len(ids)
			if len(ids) > 0 && !req.DryRun {
				n, err := a.bulkChunk(r, ids, shift, by)
				if err != nil {
					a.writeError(w, fmt.Errorf("after changing %d tasks: %w", out.Changed, err))
					return
				}
				out.Changed += n
			}
			if !more {
				break
			}
			after = ids[len(ids)-1]
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (a *API) bulkChunk(r *http.Request, ids []string, shift bool, by time.Duration) (int, error) {
	now := a.cfg.Now()
	cmd := &fsmpb.Command{Kind: &fsmpb.Command_CancelMany{CancelMany: &fsmpb.CancelTasks{
		Ids: ids, At: now.UnixNano(), RetainUntil: now.Add(a.cfg.Retention).UnixNano(),
	}}}
	if shift {
		cmd = &fsmpb.Command{Kind: &fsmpb.Command_Shift{Shift: &fsmpb.ShiftTasks{Ids: ids, By: int64(by), At: now.UnixNano()}}}
	}
	res, err := a.propose(r, cmd)
	if err != nil {
		return 0, err
	}
	return res.(*fsm.CountResult).Changed, nil
}

func (a *API) selector(queue string, req *client.BulkRequest, shift bool) (fsm.Selector, time.Duration, error) {
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
func (a *API) checkQueueRoom(fields map[string]string) error {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	unknown, existing, err := a.cfg.Store.QueueRoom(names)
	if err != nil || len(unknown) == 0 || existing+len(unknown) <= a.cfg.Limits.MaxQueues {
		return err
	}
	slices.Sort(unknown)
	return &apiError{http.StatusConflict, client.CodeResourceExhausted, fmt.Sprintf(
		"%s: %q would be a new queue, and the cluster has %d of its limit of %d queues (--max-queues); use an existing queue, or delete queues no longer used",
		fields[unknown[0]], unknown[0], existing, a.cfg.Limits.MaxQueues)}
}
