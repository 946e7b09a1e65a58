package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// Recorder keeps a history of the task calls made through its Transport,
// from any number of goroutines, and the deliveries it is told of.
type Recorder struct {
	start time.Time

	mu   sync.Mutex
	ops  []porcupine.Operation
	rows []bool // the visualization's rows: which are in use by a call
}

// NewRecorder starts an empty history.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// at is t on the history's clock (monotonic nanoseconds since its start).
func (r *Recorder) at(t time.Time) int64 { return t.Sub(r.start).Nanoseconds() }

// unanswered is the return time of a call without an answer, on the
// history's clock: it may take effect at any time after it was made.
const unanswered = int64(1) << 62

// receiverRow is the visualization row of the deliveries.
const receiverRow = 0

func (r *Recorder) add(ops ...porcupine.Operation) {
	r.mu.Lock()
	r.ops = append(r.ops, ops...)
	r.mu.Unlock()
}

// takeRow is a visualization row free for a call now; freeRow gives it
// back. Calls in flight at once take different rows.
func (r *Recorder) takeRow() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 1; i < len(r.rows); i++ {
		if !r.rows[i] {
			r.rows[i] = true
			return i
		}
	}
	if len(r.rows) == 0 {
		r.rows = append(r.rows, true) // receiverRow
	}
	r.rows = append(r.rows, true)
	return len(r.rows) - 1
}

func (r *Recorder) freeRow(i int) {
	r.mu.Lock()
	r.rows[i] = false
	r.mu.Unlock()
}

// Delivered records that a receiver got a delivery of task id at at: the
// task was fired at some moment before.
func (r *Recorder) Delivered(id string, at time.Time) {
	r.add(porcupine.Operation{ClientId: receiverRow, Input: Input{Op: OpDelivered, ID: id}, Call: 0, Output: Output{}, Return: r.at(at)})
}

// Transport wraps next so that every task call through it is recorded
// (client.WithTransport): creates (single and batched), reads and lists
// (not those with stale=true, which may be behind by design), cancels and
// updates. Other calls pass through unrecorded.
func (r *Recorder) Transport(next http.RoundTripper) http.RoundTripper {
	return &recording{r: r, next: next}
}

type recording struct {
	r    *Recorder
	next http.RoundTripper
}

// call is what a request asks, as far as the model is concerned.
type call struct {
	op    Op
	ids   []string // the tasks named (a batch's, in order); none: a list, or a create without an id
	batch bool
	list  bool
}

func (t *recording) RoundTrip(req *http.Request) (*http.Response, error) {
	c, body, err := parseCall(req)
	if err != nil || c == nil {
		return t.next.RoundTrip(req)
	}
	if body != nil {
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	ifVersion := uint64(0)
	fmt.Sscan(req.Header.Get("If-Match"), &ifVersion)
	row := t.r.takeRow()
	defer t.r.freeRow(row)
	called := t.r.at(time.Now())
	resp, err := t.next.RoundTrip(req)
	var answer []byte
	if err == nil {
		answer, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(answer))
	}
	returned := t.r.at(time.Now())
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	t.r.add(c.operations(row, called, returned, status, answer, ifVersion)...)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// parseCall reads what req asks (nil: not a call on tasks), and its body
// (nil: none read).
func parseCall(req *http.Request) (*call, []byte, error) {
	path := strings.TrimSuffix(req.URL.Path, "/")
	rest, ok := strings.CutPrefix(path, "/v1/tasks")
	if !ok || req.URL.Query().Get("stale") == "true" {
		return nil, nil, nil
	}
	id := strings.TrimPrefix(rest, "/")
	switch {
	case req.Method == http.MethodGet && rest == "":
		return &call{op: OpGet, list: true}, nil, nil
	case req.Method == http.MethodGet && id != "" && !strings.Contains(id, "/"):
		return &call{op: OpGet, ids: []string{id}}, nil, nil
	case req.Method == http.MethodDelete && id != "" && !strings.Contains(id, "/"):
		return &call{op: OpCancel, ids: []string{id}}, nil, nil
	case req.Method == http.MethodPatch && id != "" && !strings.Contains(id, "/"):
		return &call{op: OpUpdate, ids: []string{id}}, nil, nil
	case req.Method == http.MethodPost && (rest == "" || rest == "/batch"):
		if req.Body == nil {
			return nil, nil, nil
		}
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, nil, err
		}
		c := &call{op: OpCreate, batch: rest == "/batch"}
		if c.batch {
			var b struct {
				Tasks []struct {
					ID string `json:"id"`
				} `json:"tasks"`
			}
			json.Unmarshal(body, &b)
			for _, t := range b.Tasks {
				c.ids = append(c.ids, t.ID)
			}
		} else {
			var one struct {
				ID string `json:"id"`
			}
			json.Unmarshal(body, &one)
			if one.ID != "" {
				c.ids = []string{one.ID}
			}
		}
		return c, body, nil
	}
	return nil, nil, nil
}

// operations are the model's operations of call c, answered status
// (0: no answer) with body answer.
func (c *call) operations(row int, called, returned int64, status int, answer []byte, ifVersion uint64) []porcupine.Operation {
	op := func(id string, out Output) porcupine.Operation {
		ret := returned
		if out.Unknown {
			ret = unanswered
		}
		return porcupine.Operation{ClientId: row, Input: Input{Op: c.op, ID: id, IfVersion: ifVersion}, Call: called, Output: out, Return: ret}
	}
	var ops []porcupine.Operation
	switch {
	case c.list:
		var page wire.ListResponse
		if status == http.StatusOK && json.Unmarshal(answer, &page) == nil {
			for _, t := range page.Tasks {
				ops = append(ops, op(t.ID, Output{State: t.State, Version: t.Version}))
			}
		}
	case c.batch:
		var b wire.BatchResponse
		ok := status == http.StatusOK && json.Unmarshal(answer, &b) == nil && len(b.Results) == len(c.ids)
		for i, id := range c.ids {
			out := Output{Unknown: true}
			switch {
			case !ok:
			case b.Results[i].Task != nil:
				out = Output{State: b.Results[i].Task.State, Version: b.Results[i].Task.Version}
			case b.Results[i].Error != nil && b.Results[i].Error.Code == wire.CodeConflict:
				out = Output{Status: http.StatusConflict}
			}
			if id != "" {
				ops = append(ops, op(id, out))
			}
		}
	default:
		out := Output{Unknown: true}
		var t wire.Task
		switch status {
		case http.StatusOK, http.StatusCreated:
			if json.Unmarshal(answer, &t) == nil {
				out = Output{State: t.State, Version: t.Version}
			}
		case http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed:
			out = Output{Status: status}
		}
		ids := c.ids
		if len(ids) == 0 && t.ID != "" {
			ids = []string{t.ID} // created with an id the server chose
		}
		if c.op == OpGet && out.Unknown {
			return nil // a read without an answer changed nothing
		}
		for _, id := range ids {
			ops = append(ops, op(id, out))
		}
	}
	return ops
}

// Result is the verdict on a history.
type Result struct {
	Ops int
	// Linearizable, or not; Unknown when the check ran out of time.
	Verdict porcupine.CheckResult
	// Visualization is porcupine's HTML page of the histories of the
	// tasks at fault, with the longest linearizable prefix of each, when
	// the history is not linearizable.
	Visualization []byte
	// Bad names the tasks whose histories are not linearizable.
	Bad []string
}

// Check checks the history recorded so far, of the tasks whose create it
// holds, giving up after timeout.
func (r *Recorder) Check(timeout time.Duration) (Result, error) {
	r.mu.Lock()
	created := map[string]bool{}
	for _, op := range r.ops {
		if in := op.Input.(Input); in.Op == OpCreate {
			created[in.ID] = true
		}
	}
	// A task whose create was not recorded (made by another client, or
	// restored from a backup) has no history to check.
	var ops []porcupine.Operation
	for _, op := range r.ops {
		if created[op.Input.(Input).ID] {
			ops = append(ops, op)
		}
	}
	r.mu.Unlock()
	model := Model()
	verdict, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	res := Result{Ops: len(ops), Verdict: verdict}
	if verdict != porcupine.Illegal {
		return res, nil
	}
	// The tasks at fault: those whose history alone is not linearizable.
	// The page shows theirs alone.
	var bad []porcupine.Operation
	for _, part := range model.Partition(ops) {
		if porcupine.CheckOperationsTimeout(model, part, timeout) == porcupine.Illegal {
			res.Bad = append(res.Bad, part[0].Input.(Input).ID)
			bad = append(bad, part...)
		}
	}
	if len(bad) > 0 {
		_, info = porcupine.CheckOperationsVerbose(model, bad, timeout)
	}
	var page bytes.Buffer
	if err := porcupine.Visualize(model, info, &page); err != nil {
		return res, fmt.Errorf("visualize the history: %w", err)
	}
	res.Visualization = page.Bytes()
	return res, nil
}
