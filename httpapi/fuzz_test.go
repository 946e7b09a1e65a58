package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/scheduler"
)

// fuzzRoutes are the routes FuzzAPI sends requests to: every one that
// decodes a body, a path parameter or a query, but removing a cluster
// member and restoring a backup (whose decoder has its own fuzz target,
// fsm/archive's FuzzRead).
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1/tasks"},
	{"POST", "/v1/tasks/batch"},
	{"GET", "/v1/tasks?%s"},
	{"GET", "/v1/tasks/%s"},
	{"PATCH", "/v1/tasks/%s"},
	{"DELETE", "/v1/tasks/%s"},
	{"GET", "/v1/queues/%s"},
	{"PUT", "/v1/queues/%s"},
	{"DELETE", "/v1/queues/%s"},
	{"POST", "/v1/queues/%s/cancel"},
	{"POST", "/v1/queues/%s/shift"},
	{"POST", "/v1/queues/%s/redrive"},
	{"POST", "/v1/queues/%s/lease"},
	{"POST", "/v1/tasks/%s/ack"},
	{"POST", "/v1/tasks/ack"},
	{"POST", "/v1/tasks/%s/nack"},
	{"POST", "/v1/tasks/%s/extend"},
	{"GET", "/v1/stats/due?%s"},
	{"POST", "/v1/schedules"},
	{"GET", "/v1/schedules?%s"},
	{"GET", "/v1/schedules/%s"},
	{"PATCH", "/v1/schedules/%s"},
	{"DELETE", "/v1/schedules/%s"},
	{"POST", "/v1/schedules/%s/pause"},
}

// checkedWorkers stands in for the scheduler: it fails the fuzz run if a
// request reaches it with values the API should have refused.
type checkedWorkers struct {
	mu  sync.Mutex
	bad []string
}

func (w *checkedWorkers) fail(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bad = append(w.bad, fmt.Sprintf(format, args...))
}

func (w *checkedWorkers) Lease(_ context.Context, req scheduler.LeaseRequest) ([]*fsmpb.Task, error) {
	if req.Max < 1 || req.Max > maxLeaseTasks || req.Wait < 0 || req.Wait > maxLeaseWait || req.Lease < minLease || req.Lease > maxLease || checkName("queue", req.Queue, maxQueueLen) != nil {
		w.fail("lease %+v", req)
	}
	return nil, nil
}

func (w *checkedWorkers) Peek(ctx context.Context, req scheduler.LeaseRequest) (bool, error) {
	_, err := w.Lease(ctx, req)
	return false, err
}

func (w *checkedWorkers) check(id string, h scheduler.Holder, text string) {
	if id == "" || len(h.Token) != scheduler.LeaseTokenSize || len(text) > maxWorkerText {
		w.fail("id %q holder %+v text of %d bytes", id, h, len(text))
	}
}

func (w *checkedWorkers) Ack(_ context.Context, id string, h scheduler.Holder, result string) (*fsmpb.Task, error) {
	w.check(id, h, result)
	return &fsmpb.Task{Id: id, Attempts: h.Attempt}, nil
}

func (w *checkedWorkers) AckMany(_ context.Context, acks []scheduler.AckItem) ([]error, error) {
	if len(acks) > maxAcks {
		w.fail("%d acks", len(acks))
	}
	for _, a := range acks {
		w.check(a.ID, a.Holder, a.Result)
	}
	return make([]error, len(acks)), nil
}

func (w *checkedWorkers) Nack(_ context.Context, id string, h scheduler.Holder, msg string, retryIn *time.Duration) (*fsmpb.Task, error) {
	w.check(id, h, msg)
	if retryIn != nil && *retryIn < 0 {
		w.fail("retry in %v", *retryIn)
	}
	return &fsmpb.Task{Id: id, Attempts: h.Attempt}, nil
}

func (w *checkedWorkers) Extend(_ context.Context, id string, h scheduler.Holder, lease time.Duration) (*fsmpb.Task, error) {
	w.check(id, h, "")
	if lease < minLease || lease > maxLease {
		w.fail("extend by %v", lease)
	}
	return &fsmpb.Task{Id: id, Attempts: h.Attempt}, nil
}

// FuzzAPI sends arbitrary path parameters, queries and bodies to every
// route that decodes them, on a real single-node cluster: the API must
// never panic or answer 500; every error is a JSON error body with a code
// and a message; a request refused as invalid (400, 413) has the state
// machine apply nothing (its own applied index: raft's moves on its own
// goroutine, after the write it counts has already been answered); and
// nothing the API should refuse reaches the workers' scheduler.
func FuzzAPI(f *testing.F) {
	seeds := []struct {
		route       int
		param, body string
	}{
		{0, "", `{"id":"t1","delay":"1h","target":{"url":"http://127.0.0.1:9/"}}`},
		{1, "", `{"tasks":[{"delay":"1h","queue":"q"},{"id":"t1","delay":"2h"}]}`},
		{2, "queue=q&state=scheduled&limit=3&page_token=abc", ""},
		{3, "t1", ""},
		{4, "t1", `{"delay":"3h","payload":{"a":1}}`},
		{5, "t1", ""},
		{7, "q", `{"max_attempts":3,"rate_limit":{"per_second":5}}`},
		{9, "q", `{"name_prefix":"a","execute_before":"2030-01-01T00:00:00Z"}`},
		{10, "q", `{"by":"5m","ids":["t1"]}`},
		{12, "q", `{"max":5,"wait":"0s","lease":"30s"}`},
		{13, "t1", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA","attempt":1,"result":"ok"}`},
		{14, "", `{"acks":[{"id":"t1","lease_token":"AAAAAAAAAAAAAAAAAAAAAA"}]}`},
		{15, "t1", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA","error":"boom","retry_in":"5s"}`},
		{16, "t1", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA","lease":"1m"}`},
		{17, "window=hour", ""},
		{0, "", `{"delay":"1h","payload":` + strings.Repeat("[", 10000) + `}`},
		// Just past the limits.
		{12, "q", `{"max":1001}`},
		{12, "q", `{"wait":"61s"}`},
		{12, "q", `{"lease":"999ms"}`},
		{13, "t1", `{"attempt":1}`},
		{13, "t1", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAAA"}`},
		{13, "t1", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA","result":"` + strings.Repeat("r", maxWorkerText+1) + `"}`},
		{14, "", `{"acks":[` + strings.Repeat(`{"id":"t","lease_token":"AAAAAAAAAAAAAAAAAAAAAA"},`, maxAcks) + `{"id":"t","lease_token":"AAAAAAAAAAAAAAAAAAAAAA"}]}`},
		{15, "t1", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA","retry_in":"-1s"}`},
		{16, "t1", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA","lease":"24h1s"}`},
		{18, "", `{"id":"s1","cron":"30 2 * * *","time_zone":"Europe/Berlin","jitter":"1m","overlap":"skip","task":{"queue":"q","target":{"url":"http://127.0.0.1:9/"}}}`},
		{18, "", `{"every":"90s","start_at":"2030-01-01T00:00:00Z","end_at":"2031-01-01T00:00:00Z","catch_up":"latest","catch_up_window":"1h","task":{}}`},
		{19, "limit=2&page_token=czE", ""},
		{20, "s1", ""},
		{21, "s1", `{"cron":"0 3 * * 1-5","time_zone":"America/New_York","paused":true}`},
		{22, "s1", ""},
		{23, "s1", ""},
	}
	for _, s := range seeds {
		f.Add(uint8(s.route), s.param, []byte(s.body))
	}
	workers := &checkedWorkers{}
	s := newTestServer(f, func(c *testConfig) { c.Backend.Workers = workers })
	api := s.Config.Handler
	f.Fuzz(func(t *testing.T, route uint8, param string, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path := rt.path
		if strings.Contains(path, "?") {
			path = strings.Replace(path, "%s", url.PathEscape(param), 1)
			if u, err := url.Parse(path); err == nil {
				u.RawQuery = param // the query as given, however malformed
				path = u.String()
			}
		} else if strings.Contains(path, "%s") {
			path = strings.Replace(path, "%s", url.PathEscape(param), 1)
		}
		req, err := http.NewRequest(rt.method, "http://hourglass"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		before := s.group.FSM().AppliedIndex()
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)

		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s %q: %d %s", rt.method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var e client.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s %q: %d with a body that is not an error: %s", rt.method, path, body, rec.Code, rec.Body)
			}
		} else if rec.Code < 300 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s %q: %d with a body that is not JSON: %s", rt.method, path, body, rec.Code, rec.Body)
		}
		if (rec.Code == http.StatusBadRequest || rec.Code == http.StatusRequestEntityTooLarge) && s.group.FSM().AppliedIndex() != before {
			t.Fatalf("%s %s %q: refused with %d, but the state machine applied entries (index %d to %d)", rt.method, path, body, rec.Code, before, s.group.FSM().AppliedIndex())
		}
		workers.mu.Lock()
		bad := workers.bad
		workers.bad = nil
		workers.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("%s %s %q reached the scheduler with %v", rt.method, path, body, bad)
		}
	})
}
