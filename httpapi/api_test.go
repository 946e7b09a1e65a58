package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/service"
	"github.com/hourglass-scheduler/hourglass/slots"
)

// testServer is the API over a real single raft node (no scheduler: these
// tests are about the API, and tasks are due far in the future).
type testServer struct {
	*httptest.Server
	node  *cluster.Node
	group *cluster.Group // the node's one group
}

// testConfig is what a test may change before its server starts: the
// API's configuration and its one group's backend.
type testConfig struct {
	*Config
	Backend *Backend
}

func newTestServer(t testing.TB, mutate func(*testConfig)) *testServer {
	t.Helper()
	return newTestServerWith(t, cluster.Config{}, mutate)
}

func newTestServerWith(t testing.TB, nc cluster.Config, mutate func(*testConfig)) *testServer {
	t.Helper()
	nc.NodeID, nc.DataDir, nc.RaftAddr = "n1", t.TempDir(), "127.0.0.1:0"
	node, err := cluster.Open(nc)
	if err != nil {
		t.Fatal(err)
	}
	group := node.Group(1)
	node.Start(func(*cluster.Group) cluster.LeaderFunc { return func(ctx context.Context, _ uint64) { <-ctx.Done() } }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig{
		Config:  &Config{Node: node, Health: node, Limits: Limits{MaxPayload: 1000, MaxBatch: 5}},
		Backend: groupBackend(group),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	api := New(*cfg.Config)
	api.SetBackend(1, cfg.Backend)
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); node.Close() })
	return &testServer{Server: srv, node: node, group: group}
}

// groupBackend serves a group's replica, without a scheduler.
func groupBackend(g *cluster.Group) *Backend {
	return &Backend{Service: service.New(g, g.FSM(), service.Config{}), Store: g.FSM(), Group: g, Backups: g}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (s *testServer) do(t testing.TB, method, path, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, data}
}

func (r response) task(t testing.TB) client.Task {
	t.Helper()
	var task client.Task
	if err := json.Unmarshal(r.body, &task); err != nil {
		t.Fatalf("decode task from %s: %v", r.body, err)
	}
	return task
}

func (r response) errorBody(t testing.TB) client.ErrorBody {
	t.Helper()
	var e client.ErrorResponse
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not an error body: %s", r.body)
	}
	return e.Error
}

// taskCount is every task in the store, through the store itself.
func (s *testServer) taskCount(t testing.TB) int {
	t.Helper()
	tasks, _, err := s.group.FSM().List(fsm.ListQuery{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return len(tasks)
}

const validTarget = `"target":{"url":"http://127.0.0.1:9/hook"}`

func TestCreateGetCancel(t *testing.T) {
	s := newTestServer(t, nil)
	r := s.do(t, "POST", "/v1/tasks", `{"delay":"1h","payload":{"order":7},`+validTarget+`}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	created := r.task(t)
	if created.State != "scheduled" || created.Queue != "default" || created.MaxAttempts != 0 || string(created.Payload) != `{"order":7}` {
		t.Fatalf("created %+v", created)
	}
	if d := time.Until(created.ExecuteAt); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("execute_at %v is not an hour away", created.ExecuteAt)
	}
	got := s.do(t, "GET", "/v1/tasks/"+created.ID, "")
	if got.status != http.StatusOK || got.task(t).ID != created.ID {
		t.Fatalf("get: %d %s", got.status, got.body)
	}
	c := s.do(t, "DELETE", "/v1/tasks/"+created.ID, "")
	if c.status != http.StatusOK || c.task(t).State != "cancelled" {
		t.Fatalf("cancel: %d %s", c.status, c.body)
	}
	if r := s.do(t, "GET", "/v1/tasks/nope", ""); r.status != http.StatusNotFound || r.errorBody(t).Code != "not_found" {
		t.Fatalf("get missing: %d %s", r.status, r.body)
	}
	if r := s.do(t, "DELETE", "/v1/tasks/nope", ""); r.status != http.StatusNotFound {
		t.Fatalf("cancel missing: %d %s", r.status, r.body)
	}
}

func TestIdempotentCreate(t *testing.T) {
	s := newTestServer(t, nil)
	body := `{"id":"order-42","delay":"90s","payload":{"a":1},` + validTarget + `}`
	first := s.do(t, "POST", "/v1/tasks", body)
	if first.status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	// The same body again, even re-spaced, is a repeat: 200 and the task as
	// it was (its execute_at was fixed by the first request).
	again := s.do(t, "POST", "/v1/tasks", `{ "id":"order-42", "delay":"90s", "payload":{ "a": 1 }, `+validTarget+`}`)
	if again.status != http.StatusOK || again.task(t).Version != first.task(t).Version || !again.task(t).ExecuteAt.Equal(first.task(t).ExecuteAt) {
		t.Fatalf("repeat: %d %s", again.status, again.body)
	}
	other := s.do(t, "POST", "/v1/tasks", `{"id":"order-42","delay":"91s","payload":{"a":1},`+validTarget+`}`)
	if other.status != http.StatusConflict || other.errorBody(t).Code != "conflict" {
		t.Fatalf("different body: %d %s", other.status, other.body)
	}
	if n := s.taskCount(t); n != 1 {
		t.Fatalf("%d tasks stored, want 1", n)
	}
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	s := newTestServer(t, nil)
	big := `"` + strings.Repeat("x", 1200) + `"`
	cases := []struct {
		name, method, path, body string
		status                   int
		field                    string // the message must name it
	}{
		{"malformed JSON", "POST", "/v1/tasks", `{"delay":"1s",`, 400, "request body"},
		{"not an object", "POST", "/v1/tasks", `[1,2]`, 400, "request body"},
		{"empty body", "POST", "/v1/tasks", ``, 400, "request body"},
		{"trailing data", "POST", "/v1/tasks", `{"delay":"1s",` + validTarget + `} {}`, 400, "request body"},
		{"duplicate key", "POST", "/v1/tasks", `{"id":"a","id":"b","delay":"1s",` + validTarget + `}`, 400, "id: given twice"},
		{"duplicate key in a batch", "POST", "/v1/tasks/batch", `{"tasks":[{"delay":"1s",` + validTarget + `},{"delay":"1s","delay":"2s",` + validTarget + `}]}`, 400, "tasks[1].delay"},
		{"unknown field", "POST", "/v1/tasks", `{"delay":"1s","colour":"red",` + validTarget + `}`, 400, "colour"},
		{"unknown nested field", "POST", "/v1/tasks", `{"delay":"1s","target":{"url":"http://a/","verb":"GET"}}`, 400, "verb"},
		{"wrong type", "POST", "/v1/tasks", `{"delay":"1s","max_attempts":"three",` + validTarget + `}`, 400, "max_attempts"},
		{"wrong nested type", "POST", "/v1/tasks", `{"delay":"1s","target":{"url":5}}`, 400, "target.url"},
		{"both times", "POST", "/v1/tasks", `{"delay":"1s","execute_at":"2030-01-01T00:00:00Z",` + validTarget + `}`, 400, "execute_at"},
		{"neither time", "POST", "/v1/tasks", `{` + validTarget + `}`, 400, "delay"},
		{"bad time", "POST", "/v1/tasks", `{"execute_at":"tomorrow",` + validTarget + `}`, 400, "execute_at"},
		{"before 1970 in UTC, not in its own zone", "POST", "/v1/tasks", `{"execute_at":"1970-01-01T00:00:00+14:00",` + validTarget + `}`, 400, "execute_at"},
		{"the epoch itself", "POST", "/v1/tasks", `{"execute_at":"1970-01-01T00:00:00Z",` + validTarget + `}`, 400, "execute_at"},
		{"bulk from before 1970 in UTC", "POST", "/v1/queues/q/cancel", `{"from":"1970-01-01T05:00:00+06:00"}`, 400, "from"},
		{"stats from before 1970 in UTC", "GET", "/v1/stats/due?from=1970-01-01T00:30:00%2B01:00", ``, 400, "from"},
		{"bad duration", "POST", "/v1/tasks", `{"delay":"soon",` + validTarget + `}`, 400, "delay"},
		{"negative delay", "POST", "/v1/tasks", `{"delay":"-5s",` + validTarget + `}`, 400, "delay"},
		{"bad id characters", "POST", "/v1/tasks", `{"id":"a/b","delay":"1s",` + validTarget + `}`, 400, "id"},
		{"id too long", "POST", "/v1/tasks", `{"id":"` + strings.Repeat("a", 129) + `","delay":"1s",` + validTarget + `}`, 400, "id"},
		{"bad queue", "POST", "/v1/tasks", `{"queue":"a b","delay":"1s",` + validTarget + `}`, 400, "queue"},
		{"payload over limit", "POST", "/v1/tasks", `{"delay":"1s","payload":` + big + `,` + validTarget + `}`, 413, "payload"},
		{"body over limit", "POST", "/v1/tasks", `{"delay":"1s","name":"` + strings.Repeat("n", 70<<10) + `",` + validTarget + `}`, 413, "request body"},
		{"target not http", "POST", "/v1/tasks", `{"delay":"1s","target":{"url":"ftp://example.com/x"}}`, 400, "target.url"},
		{"target without host", "POST", "/v1/tasks", `{"delay":"1s","target":{"url":"http:///x"}}`, 400, "target.url"},
		{"bad method", "POST", "/v1/tasks", `{"delay":"1s","target":{"url":"http://a/","method":"BREW"}}`, 400, "target.method"},
		{"reserved header", "POST", "/v1/tasks", `{"delay":"1s","target":{"url":"http://a/","headers":{"Hourglass-Attempt":"9"}}}`, 400, "target.headers"},
		{"header injection", "POST", "/v1/tasks", `{"delay":"1s","target":{"url":"http://a/","headers":{"X":"a\r\nB: c"}}}`, 400, "target.headers"},
		{"bad timeout", "POST", "/v1/tasks", `{"delay":"1s","target":{"url":"http://a/","timeout":"2h"}}`, 400, "target.timeout"},
		{"max_attempts zero or less", "POST", "/v1/tasks", `{"delay":"1s","max_attempts":-1,` + validTarget + `}`, 400, "max_attempts"},
		{"bad backoff", "POST", "/v1/tasks", `{"delay":"1s","backoff":{"multiplier":0.5},` + validTarget + `}`, 400, "backoff.multiplier"},
		{"batch over limit", "POST", "/v1/tasks/batch", `{"tasks":[` + strings.TrimSuffix(strings.Repeat(`{"delay":"1s",`+validTarget+`},`, 6), ",") + `]}`, 400, "tasks"},
		{"empty batch", "POST", "/v1/tasks/batch", `{"tasks":[]}`, 400, "tasks"},
		{"bad task in batch", "POST", "/v1/tasks/batch", `{"tasks":[{"delay":"1s",` + validTarget + `},{"delay":"x",` + validTarget + `}]}`, 400, "tasks[1].delay"},
		{"bad list state", "GET", "/v1/tasks?state=sleeping", ``, 400, "state"},
		{"bad list limit", "GET", "/v1/tasks?limit=0", ``, 400, "limit"},
		{"bad page token", "GET", "/v1/tasks?page_token=***", ``, 400, "page_token"},
		{"unknown list parameter", "GET", "/v1/tasks?color=red", ``, 400, "color"},
		{"bad path id", "GET", "/v1/tasks/a%20b", ``, 400, "id"},
		{"patch with nothing", "PATCH", "/v1/tasks/x", `{}`, 400, "request body"},
		{"unknown endpoint", "GET", "/v1/nothing", ``, 404, "/v1/nothing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.do(t, c.method, c.path, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			e := r.errorBody(t)
			if !strings.Contains(e.Message, c.field) {
				t.Fatalf("message %q does not name %q", e.Message, c.field)
			}
		})
	}
	if n := s.taskCount(t); n != 0 {
		t.Fatalf("bad requests stored %d tasks", n)
	}
}

func TestBatchCreate(t *testing.T) {
	s := newTestServer(t, nil)
	s.do(t, "POST", "/v1/tasks", `{"id":"taken","delay":"1h",`+validTarget+`}`)
	r := s.do(t, "POST", "/v1/tasks/batch", `{"tasks":[{"id":"b1","delay":"1h",`+validTarget+`},{"id":"taken","delay":"2h",`+validTarget+`},{"delay":"1h",`+validTarget+`}]}`)
	if r.status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	var out client.BatchResponse
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 3 || out.Results[0].Task.ID != "b1" || out.Results[1].Error.Code != "conflict" || out.Results[2].Task == nil {
		t.Fatalf("results %s", r.body)
	}
	if n := s.taskCount(t); n != 3 {
		t.Fatalf("%d tasks stored, want 3", n)
	}
}

func TestPatch(t *testing.T) {
	s := newTestServer(t, nil)
	created := s.do(t, "POST", "/v1/tasks", `{"id":"p","delay":"1h",`+validTarget+`}`).task(t)
	r := s.do(t, "PATCH", "/v1/tasks/p", `{"execute_at":"2031-05-01T10:00:00Z","payload":{"v":2}}`, "If-Match", fmt.Sprint(created.Version))
	if r.status != http.StatusOK {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	if got := r.task(t); !got.ExecuteAt.Equal(time.Date(2031, 5, 1, 10, 0, 0, 0, time.UTC)) || string(got.Payload) != `{"v":2}` {
		t.Fatalf("patched %+v", got)
	}
	stale := s.do(t, "PATCH", "/v1/tasks/p", `{"delay":"5m"}`, "If-Match", fmt.Sprint(created.Version))
	if stale.status != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: %d %s", stale.status, stale.body)
	}
	s.do(t, "DELETE", "/v1/tasks/p", "")
	if r := s.do(t, "PATCH", "/v1/tasks/p", `{"delay":"5m"}`); r.status != http.StatusConflict {
		t.Fatalf("patch of a cancelled task: %d %s", r.status, r.body)
	}
}

func TestListPagination(t *testing.T) {
	s := newTestServer(t, nil)
	for i := 0; i < 7; i++ {
		s.do(t, "POST", "/v1/tasks", fmt.Sprintf(`{"id":"l%d","queue":"q%d","delay":"1h",%s}`, i, i%2, validTarget))
	}
	seen := 0
	token := ""
	for page := 0; page < 10; page++ {
		r := s.do(t, "GET", "/v1/tasks?queue=q0&state=scheduled&limit=2&page_token="+token, "")
		var out client.ListResponse
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatalf("%d %s", r.status, r.body)
		}
		for _, task := range out.Tasks {
			if task.Queue != "q0" {
				t.Fatalf("listed %s of queue %s", task.ID, task.Queue)
			}
		}
		seen += len(out.Tasks)
		if token = out.NextPageToken; token == "" {
			break
		}
	}
	if seen != 4 {
		t.Fatalf("listed %d tasks of q0, want 4", seen)
	}
}

// TestListPageByteBudget: a page of large payloads ends at the byte
// budget, however high the limit, and the pages still cover every task.
func TestListPageByteBudget(t *testing.T) {
	s := newTestServer(t, func(c *testConfig) { c.Limits.MaxPayload, c.Limits.MaxListBytes = 10_000, 25_000 })
	payload := `"` + strings.Repeat("p", 9_000) + `"`
	for i := 0; i < 10; i++ {
		if r := s.do(t, "POST", "/v1/tasks", fmt.Sprintf(`{"id":"big%d","queue":"big","delay":"1h","payload":%s,%s}`, i, payload, validTarget)); r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	seen, pages, token := 0, 0, ""
	for ; pages < 20; pages++ {
		r := s.do(t, "GET", "/v1/tasks?queue=big&limit=1000&page_token="+token, "")
		var out client.ListResponse
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if len(out.Tasks) > 3 {
			t.Fatalf("a page of %d tasks of 9 KB each, over the 25,000-byte budget", len(out.Tasks))
		}
		seen += len(out.Tasks)
		if token = out.NextPageToken; token == "" {
			break
		}
	}
	if seen != 10 || pages < 3 {
		t.Fatalf("listed %d tasks in %d pages, want 10 in at least 4", seen, pages+1)
	}
}

func TestAuthToken(t *testing.T) {
	s := newTestServer(t, func(c *testConfig) { c.Tokens = tokensFor(t, "admin", "s3cret", ScopeAdmin) })
	body := `{"delay":"1h",` + validTarget + `}`
	if r := s.do(t, "POST", "/v1/tasks", body); r.status != http.StatusUnauthorized || r.errorBody(t).Code != "unauthenticated" {
		t.Fatalf("no token: %d %s", r.status, r.body)
	}
	if r := s.do(t, "POST", "/v1/tasks", body, "Authorization", "Bearer wrong"); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", r.status)
	}
	if r := s.do(t, "POST", "/v1/tasks", body, "Authorization", "Bearer s3cret"); r.status != http.StatusCreated {
		t.Fatalf("right token: %d %s", r.status, r.body)
	}
	if r := s.do(t, "GET", "/healthz", ""); r.status != http.StatusOK {
		t.Fatalf("healthz needs no token, got %d", r.status)
	}
	// Backups hold every payload, and a restore replaces everything.
	if r := s.do(t, "GET", "/v1/snapshot", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("snapshot download without a token: %d", r.status)
	}
	if r := s.do(t, "POST", "/v1/snapshot", "x"); r.status != http.StatusUnauthorized {
		t.Fatalf("restore without a token: %d", r.status)
	}
	if r := s.do(t, "GET", "/v1/snapshot", "", "Authorization", "Bearer s3cret"); r.status != http.StatusOK || len(r.body) == 0 {
		t.Fatalf("snapshot download with the token: %d", r.status)
	}
	if n := s.taskCount(t); n != 1 {
		t.Fatalf("%d tasks stored, want 1", n)
	}
}

func TestReadyz(t *testing.T) {
	s := newTestServer(t, nil)
	if r := s.do(t, "GET", "/readyz", ""); r.status != http.StatusOK || !bytes.Contains(r.body, []byte("ready")) {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
}

func TestBatchOverEntryLimitIs413(t *testing.T) {
	s := newTestServerWith(t, cluster.Config{MaxEntryBytes: 4096}, nil)
	task := `{"delay":"1h","payload":"` + strings.Repeat("p", 900) + `",` + validTarget + `}`
	r := s.do(t, "POST", "/v1/tasks/batch", `{"tasks":[`+strings.TrimSuffix(strings.Repeat(task+",", 5), ",")+`]}`)
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.errorBody(t).Message, "tasks") {
		t.Fatalf("oversized batch: %d %s", r.status, r.body)
	}
	if n := s.taskCount(t); n != 0 {
		t.Fatalf("%d tasks stored", n)
	}
}

type failingProposer struct{ err error }

func (p failingProposer) Propose(context.Context, *fsmpb.Command) (any, error) { return nil, p.err }

// soleLeader is a group of one: this node.
type soleLeader struct{ GroupView }

func (soleLeader) Leader() (id, httpAddr string, self bool) { return "n1", "127.0.0.1:7070", true }

func (soleLeader) VerifyLeader() error { return nil }

// oneGroupNode is a node of a cluster of one group.
type oneGroupNode struct{ Node }

func (oneGroupNode) Table() *slots.Table {
	t, _ := slots.Even(1)
	return &t
}

// A write cut off by a restore of the whole state, or sent to a node that
// lost leadership, is answered 503 with Retry-After: retrying is safe.
func TestUnavailableWrites(t *testing.T) {
	for _, err := range []error{cluster.ErrRestoring, cluster.ErrNotLeader, fmt.Errorf("%w: leadership lost", cluster.ErrIndeterminate)} {
		api := New(Config{Node: oneGroupNode{}})
		api.SetBackend(1, &Backend{Service: service.New(failingProposer{err}, nil, service.Config{}), Group: soleLeader{}, Store: knownQueues{}})
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/tasks",
			strings.NewReader(`{"delay":"1m","target":{"url":"http://127.0.0.1:9/"}}`)))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%v: HTTP %d, Retry-After %q; want 503 with Retry-After\n%s", err, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
}

// knownQueues is a Store in which every queue exists (and nothing else
// is there to read).
type knownQueues struct{ Store }

func (knownQueues) QueueRoom([]string) ([]string, int, error) { return nil, 0, nil }

// blockingProposer holds every proposal until released, telling entered
// of each.
type blockingProposer struct {
	service.Proposer
	entered chan struct{}
	release chan struct{}
}

func (p *blockingProposer) Propose(ctx context.Context, cmd *fsmpb.Command) (any, error) {
	p.entered <- struct{}{}
	<-p.release
	return p.Proposer.Propose(ctx, cmd)
}

// Beyond MaxConcurrent requests in progress, one more is answered 429 with
// Retry-After; health checks still answer; the slots come back after.
func TestConcurrencyLimit(t *testing.T) {
	block := &blockingProposer{entered: make(chan struct{}, 2), release: make(chan struct{})}
	s := newTestServer(t, func(c *testConfig) {
		c.Backend.Service = service.New(block, c.Backend.Store.(service.Store), service.Config{})
		c.Limits.MaxConcurrent = 2
	})
	block.Proposer = s.group
	create := func(id string) response {
		return s.do(t, http.MethodPost, "/v1/tasks", `{"id":"`+id+`","delay":"1h",`+validTarget+`}`)
	}
	done := make(chan response, 2)
	for _, id := range []string{"a", "b"} {
		go func() { done <- create(id) }()
	}
	<-block.entered
	<-block.entered
	r := create("c")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" || r.errorBody(t).Code != client.CodeResourceExhausted {
		t.Fatalf("a third request at once: %d %v %s", r.status, r.header, r.body)
	}
	if r := s.do(t, http.MethodGet, "/healthz", ""); r.status != http.StatusOK {
		t.Fatalf("healthz at the limit: %d", r.status)
	}
	close(block.release)
	for range 2 {
		if r := <-done; r.status != http.StatusCreated {
			t.Fatalf("a held request: %d %s", r.status, r.body)
		}
	}
	if r := create("c"); r.status != http.StatusCreated {
		t.Fatalf("after the others finished: %d %s", r.status, r.body)
	}
}
