package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/scheduler"
	"github.com/hourglass-scheduler/hourglass/service"
)

// stubWorkers records what reached it: nothing should, for bad input.
type stubWorkers struct{ calls int }

func (s *stubWorkers) Lease(context.Context, scheduler.LeaseRequest) ([]*fsmpb.Task, error) {
	s.calls++
	return nil, nil
}
func (s *stubWorkers) Peek(context.Context, scheduler.LeaseRequest) (bool, error) {
	s.calls++
	return false, nil
}
func (s *stubWorkers) Ack(context.Context, string, scheduler.Holder, string) (*fsmpb.Task, error) {
	s.calls++
	return &fsmpb.Task{}, nil
}
func (s *stubWorkers) AckMany(context.Context, []scheduler.AckItem) ([]error, error) {
	s.calls++
	return nil, nil
}
func (s *stubWorkers) Nack(context.Context, string, scheduler.Holder, string, *time.Duration) (*fsmpb.Task, error) {
	s.calls++
	return &fsmpb.Task{}, nil
}
func (s *stubWorkers) Extend(context.Context, string, scheduler.Holder, time.Duration) (*fsmpb.Task, error) {
	s.calls++
	return &fsmpb.Task{}, nil
}

func TestQueueSettingsRoundTrip(t *testing.T) {
	s := newTestServer(t, nil)
	r := s.do(t, "PUT", "/v1/queues/mail", `{"max_attempts":3,"min_backoff":"2s","max_backoff":"1m","max_retry_duration":"1h","rate_limit":{"per_second":50},"max_concurrent":7,"paused":true}`)
	if r.status != http.StatusOK {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	var q client.Queue
	if err := json.Unmarshal(s.do(t, "GET", "/v1/queues/mail", "").body, &q); err != nil {
		t.Fatal(err)
	}
	want := client.QueueSettings{MaxAttempts: 3, MinBackoff: "2s", MaxBackoff: "1m0s", MaxRetryDuration: "1h0m0s",
		RateLimit: &client.RateLimit{PerSecond: 50, Burst: 5}, MaxConcurrent: 7, Paused: true}
	if q.Name != "mail" || q.MaxAttempts != want.MaxAttempts || q.MinBackoff != want.MinBackoff || q.MaxBackoff != want.MaxBackoff ||
		q.MaxRetryDuration != want.MaxRetryDuration || *q.RateLimit != *want.RateLimit || q.MaxConcurrent != 7 || !q.Paused {
		t.Fatalf("queue %+v, want %+v", q, want)
	}
	if r := s.do(t, "POST", "/v1/queues/mail/resume", ""); r.status != http.StatusOK || strings.Contains(string(r.body), `"paused"`) ||
		!strings.Contains(string(r.body), `"max_concurrent":7`) {
		t.Fatalf("resume kept the other settings? %d %s", r.status, r.body)
	}
	// A pull task (no target) in a new queue creates the queue.
	if r := s.do(t, "POST", "/v1/tasks", `{"queue":"fresh","delay":"1h"}`); r.status != http.StatusCreated {
		t.Fatalf("pull task: %d %s", r.status, r.body)
	}
	var list client.QueueList
	if err := json.Unmarshal(s.do(t, "GET", "/v1/queues", "").body, &list); err != nil || len(list.Queues) != 2 || list.Queues[0].Name != "fresh" || list.Queues[0].Tasks["scheduled"] != 1 {
		t.Fatalf("queues %+v %v", list, err)
	}
	// Effective: the queue's own policy, else the server's defaults.
	if got, want := list.Queues[1].Effective, (client.RetryPolicy{MaxAttempts: 3, MinBackoff: "2s", MaxBackoff: "1m0s"}); got != want {
		t.Fatalf("effective policy of mail %+v, want %+v", got, want)
	}
	if got, want := list.Queues[0].Effective, (client.RetryPolicy{MaxAttempts: 5, MinBackoff: "1s", MaxBackoff: "5m0s"}); got != want {
		t.Fatalf("effective policy of a queue with no settings %+v, want %+v", got, want)
	}
	if r := s.do(t, "DELETE", "/v1/queues/fresh", ""); r.status != http.StatusConflict {
		t.Fatalf("delete a queue with a scheduled task: %d %s", r.status, r.body)
	}
	if r := s.do(t, "DELETE", "/v1/queues/mail", ""); r.status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := s.do(t, "GET", "/v1/queues/mail", ""); r.status != http.StatusNotFound {
		t.Fatalf("deleted queue: %d %s", r.status, r.body)
	}
}

// TestQueueAndWorkerInputIsRefused: each bad request is a 400 naming the
// field, and reaches neither the state nor the scheduler.
// racingStore runs hook (once) after the first queue read it answers,
// and answers what it had read before: a change committed in between.
type racingStore struct {
	Store
	hook func()
}

func (s *racingStore) Queue(name string) (*fsm.QueueInfo, error) {
	info, err := s.Store.Queue(name)
	if hook := s.hook; hook != nil {
		s.hook = nil
		hook()
	}
	return info, err
}

// TestPauseKeepsASettingsChangeMadeMeanwhile (issue 18): pausing once
// read all of a queue's settings and wrote them back with paused set, so
// a settings change committed between the read and the write was lost.
// Pause now changes only the paused flag, in the state machine.
func TestPauseKeepsASettingsChangeMadeMeanwhile(t *testing.T) {
	race := &racingStore{}
	s := newTestServer(t, func(c *testConfig) {
		race.Store = c.Backend.Store
		c.Backend.Store = race
	})
	writes := service.New(s.group, s.group.FSM(), service.Config{})
	if r := s.do(t, "PUT", "/v1/queues/mail", `{"max_attempts":3}`); r.status != http.StatusOK {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	race.hook = func() {
		if _, err := writes.PutQueue(context.Background(), &fsmpb.Queue{Name: "mail", MaxAttempts: 3, Rate: 5, Paused: true}); err != nil {
			t.Error(err)
		}
	}
	if r := s.do(t, "POST", "/v1/queues/mail/pause", ""); r.status != http.StatusOK {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	if race.hook != nil {
		t.Fatal("the settings change did not happen during the pause")
	}
	info, err := s.group.FSM().Queue("mail")
	if err != nil || !info.Settings.GetPaused() || info.Settings.GetRate() != 5 {
		t.Fatalf("after the pause: %+v %v; want paused with the rate set meanwhile", info.Settings, err)
	}
}

func TestQueueAndWorkerInputIsRefused(t *testing.T) {
	workers := &stubWorkers{}
	s := newTestServer(t, func(c *testConfig) { c.Backend.Workers = workers })
	for _, c := range []struct{ method, path, body, field string }{
		{"PUT", "/v1/queues/bad%20name", `{}`, "queue"},
		{"PUT", "/v1/queues/q", `{"max_attempts":-1}`, "max_attempts"},
		{"PUT", "/v1/queues/q", `{"min_backoff":"soon"}`, "min_backoff"},
		{"PUT", "/v1/queues/q", `{"min_backoff":"2s","max_backoff":"1s"}`, "max_backoff"},
		{"PUT", "/v1/queues/q", `{"rate_limit":{"per_second":0}}`, "rate_limit.per_second"},
		{"PUT", "/v1/queues/q", `{"rate_limit":{"per_second":5,"burst":-2}}`, "rate_limit.burst"},
		{"PUT", "/v1/queues/q", `{"max_concurrent":-5}`, "max_concurrent"},
		{"PUT", "/v1/queues/q", `{"speed":1}`, "speed"},
		{"POST", "/v1/queues/q/lease", `{"max":0.5}`, "max"},
		{"POST", "/v1/queues/q/lease", `{"max":5000}`, "max"},
		{"POST", "/v1/queues/q/lease", `{"wait":"2m"}`, "wait"},
		{"POST", "/v1/queues/q/lease", `{"lease":"10ms"}`, "lease"},
		{"POST", "/v1/tasks/x/ack", `{}`, "lease_token"},
		{"POST", "/v1/tasks/x/ack", `{"lease_token":"abc"}`, "lease_token"},
		{"POST", "/v1/tasks/x/ack", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA","attempt":-1}`, "attempt"},
		{"POST", "/v1/tasks/x/ack", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA","result":"` + strings.Repeat("r", 5000) + `"}`, "result"},
		{"POST", "/v1/tasks/x/nack", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA","retry_in":"-1s"}`, "retry_in"},
		{"POST", "/v1/tasks/ack", `{"acks":[]}`, "acks"},
		{"POST", "/v1/tasks/ack", `{"acks":[{"id":"a","lease_token":"AAAAAAAAAAAAAAAAAAAAAA"},{"id":"b"}]}`, "acks[1].lease_token"},
		{"POST", "/v1/tasks/x/extend", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA"}`, "lease"},
		{"POST", "/v1/tasks/x/extend", `{"lease_token":"AAAAAAAAAAAAAAAAAAAAAA","lease":"forever"}`, "lease"},
		{"POST", "/v1/queues/q/shift", `{}`, "by"},
		{"POST", "/v1/queues/q/shift", `{"by":"0s"}`, "by"},
		{"POST", "/v1/queues/q/cancel", `{"by":"1h"}`, "by"},
		{"POST", "/v1/queues/q/cancel", `{"from":"yesterday"}`, "from"},
		{"POST", "/v1/queues/q/cancel", `{"from":"2030-01-02T00:00:00Z","to":"2030-01-01T00:00:00Z"}`, "to"},
		{"POST", "/v1/queues/q/redrive", `{"id":"a b"}`, "id"},
		{"POST", "/v1/tasks", `{"delay":"1s","max_lateness":"soon"}`, "max_lateness"},
	} {
		r := s.do(t, c.method, c.path, c.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s %s %s: %d %s, want 400", c.method, c.path, c.body, r.status, r.body)
			continue
		}
		if e := r.errorBody(t); !strings.HasPrefix(e.Message, c.field+":") {
			t.Errorf("%s %s %s: message %q does not start with %q", c.method, c.path, c.body, e.Message, c.field+":")
		}
	}
	if workers.calls != 0 || s.taskCount(t) != 0 {
		t.Fatalf("bad input reached the scheduler (%d calls) or the state (%d tasks)", workers.calls, s.taskCount(t))
	}
	if r := s.do(t, "GET", "/v1/queues/q", ""); r.status != http.StatusNotFound {
		t.Fatalf("a refused PUT created the queue: %d %s", r.status, r.body)
	}
}

func TestBulkCancelShiftAndRedrive(t *testing.T) {
	s := newTestServer(t, nil)
	at := time.Now().Add(time.Hour).UTC()
	for i, name := range []string{"a", "a", "b", "a"} {
		body := `{"queue":"bulk","name":"` + name + `","execute_at":"` + at.Add(time.Duration(i)*time.Minute).Format(time.RFC3339Nano) + `"}`
		if r := s.do(t, "POST", "/v1/tasks", body); r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	var out client.BulkResponse
	decode := func(r response) client.BulkResponse {
		t.Helper()
		var b client.BulkResponse
		if r.status != http.StatusOK || json.Unmarshal(r.body, &b) != nil {
			t.Fatalf("bulk: %d %s", r.status, r.body)
		}
		return b
	}
	out = decode(s.do(t, "POST", "/v1/queues/bulk/cancel", `{"name":"a","dry_run":true}`))
	if out.Matched != 3 || out.Changed != 0 {
		t.Fatalf("dry run %+v", out)
	}
	// Shift the a's due in the first two minutes by a day.
	out = decode(s.do(t, "POST", "/v1/queues/bulk/shift", `{"name":"a","to":"`+at.Add(2*time.Minute).Format(time.RFC3339Nano)+`","by":"24h"}`))
	if out.Matched != 2 || out.Changed != 2 {
		t.Fatalf("shift %+v", out)
	}
	out = decode(s.do(t, "POST", "/v1/queues/bulk/cancel", `{}`))
	if out.Matched != 4 || out.Changed != 4 {
		t.Fatalf("cancel all %+v", out)
	}
	var q client.Queue
	json.Unmarshal(s.do(t, "GET", "/v1/queues/bulk", "").body, &q)
	if q.Tasks["cancelled"] != 4 || q.Tasks["scheduled"] != 0 {
		t.Fatalf("queue after cancel: %+v", q.Tasks)
	}
	// Only dead tasks can be redriven.
	var list client.ListResponse
	json.Unmarshal(s.do(t, "GET", "/v1/tasks?queue=bulk", "").body, &list)
	r := s.do(t, "POST", "/v1/queues/bulk/redrive", `{"id":"`+list.Tasks[0].ID+`"}`)
	if r.status != http.StatusConflict {
		t.Fatalf("redrive of a cancelled task: %d %s", r.status, r.body)
	}
	if r := s.do(t, "POST", "/v1/queues/bulk/redrive", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), `"redriven":0`) {
		t.Fatalf("redrive all with none dead: %d %s", r.status, r.body)
	}
}

func TestDueStats(t *testing.T) {
	s := newTestServer(t, nil)
	base := time.Date(2031, 1, 1, 12, 0, 0, 0, time.UTC)
	for i, offset := range []time.Duration{0, 30 * time.Second, 59 * time.Second, 2 * time.Minute, 2*time.Minute + time.Second, 10 * time.Minute} {
		body := fmt.Sprintf(`{"id":"d%d","queue":"q","execute_at":%q}`, i, base.Add(offset).Format(time.RFC3339Nano))
		if r := s.do(t, "POST", "/v1/tasks", body); r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	s.do(t, "DELETE", "/v1/tasks/d1", "") // cancelled: not due any more
	r := s.do(t, "GET", "/v1/stats/due?from="+base.Format(time.RFC3339)+"&to="+base.Add(5*time.Minute).Format(time.RFC3339)+"&step=1m", "")
	var st client.DueStats
	if r.status != http.StatusOK || json.Unmarshal(r.body, &st) != nil {
		t.Fatalf("due stats: %d %s", r.status, r.body)
	}
	var got []uint64
	for _, b := range st.Buckets {
		got = append(got, b.Count)
	}
	if fmt.Sprint(got) != "[2 0 2 0 0]" || st.Total != 4 || !st.Buckets[2].Start.Equal(base.Add(2*time.Minute)) {
		t.Fatalf("due stats %+v, counts %v; want [2 0 2 0 0]", st, got)
	}
	for _, c := range []struct{ query, field string }{
		{"from=yesterday", "from"},
		{"from=2031-01-01T12:00:00Z&to=2031-01-01T11:00:00Z", "to"},
		{"step=0s", "step"},
		{"from=2031-01-01T00:00:00Z&to=2032-01-01T00:00:00Z&step=1s", "step"},
		{"bucket=1m", "bucket"},
	} {
		r := s.do(t, "GET", "/v1/stats/due?"+c.query, "")
		if r.status != http.StatusBadRequest || !strings.HasPrefix(r.errorBody(t).Message, c.field+":") {
			t.Errorf("%s: %d %s, want 400 naming %s", c.query, r.status, r.body, c.field)
		}
	}
}

// TestQueueLimit: a request that would make a queue beyond MaxQueues is a
// 409 naming the field and changes nothing; queues that exist take tasks.
func TestQueueLimit(t *testing.T) {
	s := newTestServer(t, func(c *testConfig) { c.Limits.MaxQueues = 3 })
	for _, q := range []string{"q1", "q2", "q3"} {
		if r := s.do(t, "PUT", "/v1/queues/"+q, `{}`); r.status != http.StatusOK {
			t.Fatalf("put %s: %d %s", q, r.status, r.body)
		}
	}
	for _, c := range []struct{ method, path, body, field string }{
		{"POST", "/v1/tasks", `{"queue":"q4","delay":"1h",` + validTarget + `}`, "queue"},
		{"POST", "/v1/tasks/batch", `{"tasks":[{"queue":"q1","delay":"1h",` + validTarget + `},{"queue":"q5","delay":"1h",` + validTarget + `}]}`, "tasks[1].queue"},
		{"PUT", "/v1/queues/q6", `{}`, "queue"},
		{"POST", "/v1/queues/q7/pause", ``, "queue"},
	} {
		r := s.do(t, c.method, c.path, c.body)
		if r.status != http.StatusConflict || r.errorBody(t).Code != client.CodeResourceExhausted ||
			!strings.HasPrefix(r.errorBody(t).Message, c.field+": ") || !strings.Contains(r.errorBody(t).Message, "--max-queues") {
			t.Errorf("%s %s beyond the queue limit: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	if n := s.taskCount(t); n != 0 {
		t.Fatalf("refused creates stored %d tasks", n)
	}
	if r := s.do(t, "POST", "/v1/tasks", `{"queue":"q1","delay":"1h",`+validTarget+`}`); r.status != http.StatusCreated {
		t.Fatalf("a task in an existing queue: %d %s", r.status, r.body)
	}
	if r := s.do(t, "DELETE", "/v1/queues/q3", ""); r.status != http.StatusOK {
		t.Fatalf("delete q3: %d %s", r.status, r.body)
	}
	if r := s.do(t, "POST", "/v1/tasks", `{"queue":"q4","delay":"1h",`+validTarget+`}`); r.status != http.StatusCreated {
		t.Fatalf("a new queue once there is room: %d %s", r.status, r.body)
	}
}

// TestQueueListPages: GET /v1/queues pages by name; the client follows.
func TestQueueListPages(t *testing.T) {
	s := newTestServer(t, nil)
	for i := 0; i < 5; i++ {
		s.do(t, "PUT", fmt.Sprintf("/v1/queues/q%d", i), `{}`)
	}
	var names []string
	token, pages := "", 0
	for ; pages < 10; pages++ {
		var out client.QueueList
		if err := json.Unmarshal(s.do(t, "GET", "/v1/queues?limit=2&page_token="+token, "").body, &out); err != nil {
			t.Fatal(err)
		}
		for _, q := range out.Queues {
			names = append(names, q.Name)
		}
		if token = out.NextPageToken; token == "" {
			break
		}
	}
	if strings.Join(names, ",") != "q0,q1,q2,q3,q4" || pages != 2 {
		t.Fatalf("pages of 2 listed %v in %d pages, want q0..q4 in 3", names, pages+1)
	}
	all, err := client.New(s.URL, "").ListQueues(context.Background())
	if err != nil || len(all) != 5 {
		t.Fatalf("ListQueues: %d queues, %v", len(all), err)
	}
	if r := s.do(t, "GET", "/v1/queues?page_token=%2A%2A", ""); r.status != http.StatusBadRequest || !strings.Contains(r.errorBody(t).Message, "page_token") {
		t.Fatalf("a bad page token: %d %s", r.status, r.body)
	}
}
