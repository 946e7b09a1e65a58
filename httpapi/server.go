package httpapi

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/archive"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/httpapi/console"
	"github.com/hourglass-scheduler/hourglass/metrics/labels"
	"github.com/hourglass-scheduler/hourglass/scheduler"
	"github.com/hourglass-scheduler/hourglass/service"
	"github.com/hourglass-scheduler/hourglass/slots"
	"github.com/hourglass-scheduler/hourglass/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Store answers reads.
type Store interface {
	Get(id string) (*fsmpb.Task, error)
	List(q fsm.ListQuery) ([]*fsmpb.Task, []byte, error)
	Queue(name string) (*fsm.QueueInfo, error)
	QueuesPage(after string, limit int) ([]*fsm.QueueInfo, string, error)
	QueueRoom(names []string) (unknown []string, existing int, err error)
	SelectScheduled(sel fsm.Selector, after string, limit int) ([]string, bool, error)
	DueCounts(from, to, step int64) ([]uint64, error)
	Schedule(id string) (*fsmpb.Schedule, error)
	SchedulesPage(after string, limit int) ([]*fsmpb.Schedule, string, error)
	Occurrences(scheduleID string, limit int) ([]*fsmpb.Task, error)
}

// Health reports readiness: nil when this node can serve, else why not.
type Health interface {
	Ready() error
}

// Config wires the API to its node.
type Config struct {
	// Node is this node; each of its group replicas is added with
	// SetBackend once it is open.
	Node   Node
	Health Health
	// Metrics, when set, serves GET /metrics (Prometheus).
	Metrics http.Handler
	// Registry, when set, registers the API's own metrics (requests,
	// tasks created).
	Registry prometheus.Registerer
	// QueueLabels bounds the queue label of the API's metrics (nil: every
	// queue its own series).
	QueueLabels *labels.Limiter
	Limits      Limits
	// Tokens, when it holds any, are required as "Authorization: Bearer
	// <token>" on every request but the public ones (health, metrics, the
	// console's files, the API description), each with the scope its route
	// needs. Nil or empty: no authentication.
	Tokens *Tokens
	// ProposeTimeout bounds how long a write waits for its commit (10s).
	ProposeTimeout time.Duration
	// LeaderWait bounds how long a request waits for a leader to be
	// elected before it is answered 503 (3s).
	LeaderWait time.Duration
	// RequireClientCert: every request but the health checks must come
	// over TLS with a client certificate the TLS server verified (it
	// verifies any that is given); without one it is answered 401.
	RequireClientCert bool
	// ForwardTLS, when set, is how requests are forwarded to the leader:
	// over https with this configuration (the nodes' API serves TLS).
	// Nil: over plain http.
	ForwardTLS *tls.Config
	// TempDir is where a restore of many groups is checked before it is
	// sent to the groups (the data directory, best: a file system with
	// room for the state); empty: os.TempDir().
	TempDir string
	// CheckState checks each state file of a restore of many groups (nil:
	// fsm.CheckStateFile in this process).
	CheckState archive.Checker
	Now        func() time.Time
	Logger     *slog.Logger
}

// API is the HTTP handler.
type API struct {
	cfg              Config
	log              *slog.Logger
	mux              *http.ServeMux
	routes           []string         // the patterns handled, in order
	scopes           map[string]Scope // by pattern
	metrics          *apiMetrics
	forwardTransport http.RoundTripper
	inFlight         chan struct{} // a slot per request in progress

	groupsMu sync.RWMutex
	groups   map[slots.Group]*Backend // this node's replicas
	across   map[string]http.HandlerFunc
	turn     atomic.Uint64 // taking turns among groups (pickGroup)
}

// New returns the API handler.
func New(cfg Config) *API {
	cfg.Limits.setDefaults()
	if cfg.ProposeTimeout <= 0 {
		cfg.ProposeTimeout = 10 * time.Second
	}
	if cfg.LeaderWait <= 0 {
		cfg.LeaderWait = 3 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256
	// Never a proxy from the environment between the nodes.
	transport.Proxy = nil
	if cfg.ForwardTLS != nil {
		transport.TLSClientConfig = cfg.ForwardTLS.Clone()
	}
	a := &API{inFlight: make(chan struct{}, cfg.Limits.MaxConcurrent), cfg: cfg, log: cfg.Logger.With("component", "httpapi"), mux: http.NewServeMux(),
		metrics: newAPIMetrics(cfg.Registry), forwardTransport: transport, scopes: map[string]Scope{}, groups: map[slots.Group]*Backend{}}
	a.handle("POST /v1/tasks", ScopeTasksWrite, a.createTask)
	a.handle("POST /v1/tasks/batch", ScopeTasksWrite, a.createBatch)
	a.handle("GET /v1/tasks", ScopeTasksRead, a.listTasks)
	a.handle("GET /v1/tasks/{id}", ScopeTasksRead, a.getTask)
	a.handle("DELETE /v1/tasks/{id}", ScopeTasksWrite, a.cancelTask)
	a.handle("PATCH /v1/tasks/{id}", ScopeTasksWrite, a.updateTask)
	a.handle("GET /v1/queues", ScopeTasksRead, a.listQueues)
	a.handle("GET /v1/queues/{queue}", ScopeTasksRead, a.getQueue)
	a.handle("PUT /v1/queues/{queue}", ScopeTasksWrite, a.putQueue)
	a.handle("DELETE /v1/queues/{queue}", ScopeTasksWrite, a.deleteQueue)
	a.handle("POST /v1/queues/{queue}/pause", ScopeTasksWrite, a.setPaused(true))
	a.handle("POST /v1/queues/{queue}/resume", ScopeTasksWrite, a.setPaused(false))
	a.handle("POST /v1/queues/{queue}/redrive", ScopeTasksWrite, a.redrive)
	a.handle("POST /v1/queues/{queue}/cancel", ScopeTasksWrite, a.bulk(false))
	a.handle("POST /v1/queues/{queue}/shift", ScopeTasksWrite, a.bulk(true))
	a.handle(leasePattern, ScopeWorker, a.lease)
	a.handle("POST /v1/tasks/{id}/ack", ScopeWorker, a.ack)
	a.handle("POST /v1/tasks/ack", ScopeWorker, a.ackMany)
	a.handle("POST /v1/tasks/{id}/nack", ScopeWorker, a.nack)
	a.handle("POST /v1/tasks/{id}/extend", ScopeWorker, a.extend)
	a.handle("POST /v1/schedules", ScopeTasksWrite, a.createSchedule)
	a.handle("GET /v1/schedules", ScopeTasksRead, a.listSchedules)
	a.handle("GET /v1/schedules/{id}", ScopeTasksRead, a.getSchedule)
	a.handle("PATCH /v1/schedules/{id}", ScopeTasksWrite, a.updateSchedule)
	a.handle("DELETE /v1/schedules/{id}", ScopeTasksWrite, a.deleteSchedule)
	a.handle("POST /v1/schedules/{id}/pause", ScopeTasksWrite, a.setSchedulePaused(true))
	a.handle("POST /v1/schedules/{id}/resume", ScopeTasksWrite, a.setSchedulePaused(false))
	a.handle("GET /v1/stats/due", ScopeTasksRead, a.dueStats)
	a.handle("GET /v1/cluster", ScopeTasksRead, a.getCluster)
	a.handle("DELETE /v1/cluster/nodes/{id}", ScopeAdmin, a.removeNode)
	a.handle("GET "+snapshotPath, ScopeAdmin, a.getSnapshot)
	a.handle("POST "+snapshotPath, ScopeAdmin, a.restoreSnapshot)
	if cfg.Metrics != nil {
		a.handle("GET /metrics", scopePublic, newMetricsCache(cfg.Metrics).ServeHTTP)
	}
	a.handle("GET /healthz", scopePublic, a.healthz)
	a.handle("GET /readyz", scopePublic, a.readyz)
	a.handle("GET /v1/openapi.json", scopePublic, a.openAPI)
	a.handle("GET /{$}", scopePublic, console.Index)
	a.handle("GET /ui/{file...}", scopePublic, console.Assets().ServeHTTP)
	a.across = a.acrossGroups()
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, &apiError{http.StatusNotFound, wire.CodeNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path)})
	})
	return a
}

// handle routes pattern ("METHOD /path") to h, for tokens with scope.
// leasePattern is the lease route, whose queue a token may be limited to.
const leasePattern = "POST /v1/queues/{queue}/lease"

func (a *API) handle(pattern string, scope Scope, h http.HandlerFunc) {
	a.mux.HandleFunc(pattern, h)
	a.routes = append(a.routes, pattern)
	a.scopes[pattern] = scope
}

// Scope is the scope a route pattern needs ("" for a public one).
func (a *API) Scope(pattern string) Scope { return a.scopes[pattern] }

// Routes lists the patterns the API serves ("METHOD /path/{param}").
func (a *API) Routes() []string { return slices.Clone(a.routes) }

// NewServer returns an http.Server for handler with timeouts set, so a
// slow or idle client cannot hold a connection forever.
func NewServer(addr string, handler http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	var route string
	if isHealthCheck(r) || r.URL.Path == "/metrics" {
		route = a.serve(rec, r) // monitoring is never turned away
	} else {
		route = a.serveLimited(rec, r)
	}
	a.observe(rec, r, route, began)
}

// isHealthCheck: r asks for /healthz or /readyz, which a load balancer
// calls without credentials.
func isHealthCheck(r *http.Request) bool {
	return r.URL.Path == "/healthz" || r.URL.Path == "/readyz"
}

// serveLimited serves r if fewer than Limits.MaxConcurrent requests are in
// progress, and answers 429 with Retry-After otherwise.
func (a *API) serveLimited(w http.ResponseWriter, r *http.Request) (route string) {
	select {
	case a.inFlight <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "1")
		a.writeError(w, &apiError{http.StatusTooManyRequests, wire.CodeResourceExhausted,
			fmt.Sprintf("the server is handling its limit of %d requests at once (--max-concurrent-requests); retry after a second", cap(a.inFlight))})
		return routeThrottled
	}
	a.metrics.inFlight.Inc()
	defer func() {
		a.metrics.inFlight.Dec()
		<-a.inFlight
	}()
	return a.serve(w, r)
}

// serve answers r and returns the route label it is counted under.
func (a *API) serve(w http.ResponseWriter, r *http.Request) (route string) {
	if a.cfg.RequireClientCert && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) && !isHealthCheck(r) {
		a.writeError(w, &apiError{http.StatusUnauthorized, wire.CodeUnauthenticated,
			"client certificate: this server requires one, signed by its client CA (hourglass CLI: --client-cert and --client-key)"})
		return routeUnauthenticated
	}
	if a.cfg.Tokens.Len() > 0 {
		// The route's scope; a path the router does not know is answered
		// 404 (or 405) alike with or without a token.
		if _, pattern := a.mux.Handler(r); a.scopes[pattern] != scopePublic {
			var queue string
			if pattern == leasePattern {
				queue = strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/queues/"), "/lease")
			}
			if err := a.authorize(r, a.scopes[pattern], queue); err != nil {
				if err.status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass"`)
				}
				a.writeError(w, err)
				return routeUnauthenticated
			}
		}
	}
	if r.URL.Path == snapshotPath {
		liftDeadlines(w) // here too when it is forwarded
	}
	if !a.servedLocally(r) {
		_, pattern := a.mux.Handler(r)
		id, all, err := a.groupOfRequest(r, pattern)
		if err != nil {
			a.writeError(w, err)
			return routeForwarded
		}
		if all {
			if h := a.across[pattern]; h != nil {
				h(w, r)
			} else {
				a.noRouteAcross(w, r)
			}
			return pattern
		}
		return a.serveGroup(w, r, id)
	}
	a.mux.ServeHTTP(w, r)
	return r.Pattern // set by the mux
}

// writeContext bounds a write made for r: ProposeTimeout, or less when
// the client goes away.
func (a *API) writeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), a.cfg.ProposeTimeout)
}

// builder checks and builds the tasks of r, served by one group: a task
// without an id gets one of that group, and one with another group's id
// is refused.
func (a *API) builder(r *http.Request) *taskBuilder {
	return &taskBuilder{limits: a.cfg.Limits, now: a.cfg.Now(), table: a.cfg.Node.Table(), group: a.backend(r).id}
}

func (a *API) createTask(w http.ResponseWriter, r *http.Request) {
	var req wire.CreateTaskRequest
	if err := decodeBody(w, r, int64(a.cfg.Limits.MaxPayload+bodySlack), &req); err != nil {
		a.writeError(w, err)
		return
	}
	task, err := a.builder(r).build(&req, "")
	if err != nil {
		a.writeError(w, err)
		return
	}
	if err := a.checkQueueRoom(r, map[string]string{task.Task.Queue: "queue"}); err != nil {
		a.writeError(w, err)
		return
	}
	ctx, cancel := a.writeContext(r)
	defer cancel()
	items, err := a.backend(r).Service.CreateTasks(ctx, []service.NewTask{task})
	if err != nil {
		a.writeError(w, err)
		return
	}
	item := items[0]
	switch {
	case item.Err != nil:
		a.writeError(w, item.Err)
	case item.Existed:
		writeJSON(w, http.StatusOK, TaskView(item.Task))
	default:
		a.metrics.created.WithLabelValues(a.cfg.QueueLabels.Value(item.Task.Queue)).Inc()
		writeJSON(w, http.StatusCreated, TaskView(item.Task))
	}
}

func (a *API) createBatch(w http.ResponseWriter, r *http.Request) {
	var req wire.BatchRequest
	if err := decodeBody(w, r, int64(a.cfg.Limits.MaxBodySize), &req); err != nil {
		a.writeError(w, err)
		return
	}
	switch n := len(req.Tasks); {
	case n == 0:
		a.writeError(w, invalid("tasks: required: an array of one or more tasks"))
		return
	case n > a.cfg.Limits.MaxBatch:
		a.writeError(w, invalid("tasks: %d tasks, over the batch limit of %d", n, a.cfg.Limits.MaxBatch))
		return
	}
	b := a.builder(r)
	tasks := make([]service.NewTask, len(req.Tasks))
	queues := map[string]string{} // queue → the field of its first task
	for i := range req.Tasks {
		t, err := b.build(&req.Tasks[i], "tasks["+strconv.Itoa(i)+"].")
		if err != nil {
			a.writeError(w, err) // one bad task refuses the whole batch
			return
		}
		tasks[i] = t
		if _, ok := queues[t.Task.Queue]; !ok {
			queues[t.Task.Queue] = fmt.Sprintf("tasks[%d].queue", i)
		}
	}
	if err := a.checkQueueRoom(r, queues); err != nil {
		a.writeError(w, err)
		return
	}
	ctx, cancel := a.writeContext(r)
	defer cancel()
	items, err := a.backend(r).Service.CreateTasks(ctx, tasks)
	if errors.Is(err, cluster.ErrTooLarge) {
		err = tooLarge("tasks: the batch is too large to commit at once (%v); send fewer or smaller tasks", err)
	}
	if err != nil {
		a.writeError(w, err)
		return
	}
	out := wire.BatchResponse{Results: make([]wire.BatchResult, len(items))}
	created := map[string]int{} // by queue: counted once per batch
	for i, item := range items {
		if item.Err != nil {
			_, body := a.classify(item.Err)
			out.Results[i].Error = &body
			continue
		}
		if !item.Existed {
			created[item.Task.Queue]++
		}
		v := TaskView(item.Task)
		out.Results[i].Task = &v
	}
	for queue, n := range created {
		a.metrics.created.WithLabelValues(a.cfg.QueueLabels.Value(queue)).Add(float64(n))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if err := checkTaskID("id", id); err != nil {
		a.writeError(w, err)
		return "", false
	}
	return id, true
}

func (a *API) getTask(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	if err := checkQuery(r, "stale"); err != nil {
		a.writeError(w, err)
		return
	}
	task, err := a.backend(r).Store.Get(id)
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, TaskView(task))
}

func (a *API) cancelTask(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	ctx, cancel := a.writeContext(r)
	defer cancel()
	task, err := a.backend(r).Service.CancelTask(ctx, id)
	a.answerTask(w, task, err)
}

func (a *API) updateTask(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	ifVersion, err := ifMatch(r, "task")
	if err != nil {
		a.writeError(w, err)
		return
	}
	var req wire.UpdateTaskRequest
	if err := decodeBody(w, r, int64(a.cfg.Limits.MaxPayload+bodySlack), &req); err != nil {
		a.writeError(w, err)
		return
	}
	b := a.builder(r)
	cmd := service.Update{ID: id, IfVersion: ifVersion}
	at, err := b.when(req.ExecuteAt, req.Delay, "", false)
	if err != nil {
		a.writeError(w, err)
		return
	}
	if at != 0 {
		cmd.ExecuteAt = &at
	}
	if len(req.Payload) > 0 {
		p, err := b.payload(req.Payload, "")
		if err != nil {
			a.writeError(w, err)
			return
		}
		if p == nil {
			p = []byte{} // "payload": null clears it
		}
		cmd.Payload = p
	}
	if req.Target != nil {
		if cmd.Target, err = buildTarget(req.Target, ""); err != nil {
			a.writeError(w, err)
			return
		}
	}
	if cmd.ExecuteAt == nil && cmd.Payload == nil && cmd.Target == nil {
		a.writeError(w, invalid("request body: nothing to change; give execute_at or delay, payload, or target"))
		return
	}
	ctx, cancel := a.writeContext(r)
	defer cancel()
	task, err := a.backend(r).Service.UpdateTask(ctx, cmd)
	a.answerTask(w, task, err)
}

// answerTask answers with the task a write returned, or its error.
func (a *API) answerTask(w http.ResponseWriter, task *fsmpb.Task, err error) {
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, TaskView(task))
}

const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

func (a *API) listTasks(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "queue", "state", "limit", "page_token", "stale"); err != nil {
		a.writeError(w, err)
		return
	}
	q := r.URL.Query()
	lq := fsm.ListQuery{Queue: q.Get("queue"), Limit: defaultListLimit, MaxBytes: a.cfg.Limits.MaxListBytes}
	if lq.Queue != "" {
		if err := checkName("queue", lq.Queue, maxQueueLen); err != nil {
			a.writeError(w, err)
			return
		}
	}
	if s := q.Get("state"); s != "" {
		state, ok := fsm.ParseState(s)
		if !ok {
			a.writeError(w, invalid("state: unknown state %q; one of scheduled, running, succeeded, dead, cancelled, expired", s))
			return
		}
		lq.State = state
	}
	limit, err := listLimit(r, defaultListLimit)
	if err != nil {
		a.writeError(w, err)
		return
	}
	lq.Limit = limit
	if s := q.Get("page_token"); s != "" {
		token, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(token) == 0 {
			a.writeError(w, invalid("page_token: not a token from a previous page"))
			return
		}
		lq.After = token
	}
	tasks, next, err := a.backend(r).Store.List(lq)
	if err != nil {
		a.writeError(w, err)
		return
	}
	out := wire.ListResponse{Tasks: make([]wire.Task, len(tasks))}
	for i, t := range tasks {
		out.Tasks[i] = TaskView(t)
	}
	if next != nil {
		out.NextPageToken = base64.RawURLEncoding.EncodeToString(next)
	}
	writeJSON(w, http.StatusOK, out)
}

// listLimit is the page size r asks for (?limit=), def when none.
func listLimit(r *http.Request, def int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxListLimit {
		return 0, invalid("limit: must be a number from 1 to %d, got %q", maxListLimit, s)
	}
	return n, nil
}

// checkQuery refuses query parameters other than the allowed ones.
func checkQuery(r *http.Request, allowed ...string) error {
	for k := range r.URL.Query() {
		found := false
		for _, a := range allowed {
			found = found || k == a
		}
		if !found {
			return invalid("%s: unknown query parameter", k)
		}
	}
	return nil
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Health.Ready(); err != nil {
		a.writeError(w, &apiError{http.StatusServiceUnavailable, wire.CodeUnavailable, err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// classify maps an error to its status and body. Errors of the layers
// below are translated here, once.
func (a *API) classify(err error) (int, wire.ErrorBody) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status, wire.ErrorBody{Code: ae.code, Message: ae.msg}
	case errors.Is(err, fsm.ErrNotFound):
		return http.StatusNotFound, wire.ErrorBody{Code: wire.CodeNotFound, Message: err.Error()}
	case errors.Is(err, fsm.ErrConflict):
		return http.StatusConflict, wire.ErrorBody{Code: wire.CodeConflict, Message: err.Error()}
	case errors.Is(err, fsm.ErrVersionMismatch):
		return http.StatusPreconditionFailed, wire.ErrorBody{Code: wire.CodeFailedPrecondition, Message: err.Error()}
	case errors.Is(err, fsm.ErrInvalid):
		return http.StatusBadRequest, wire.ErrorBody{Code: wire.CodeInvalidArgument, Message: err.Error()}
	case errors.Is(err, cluster.ErrNoSuchMember):
		return http.StatusNotFound, wire.ErrorBody{Code: wire.CodeNotFound, Message: err.Error()}
	case errors.Is(err, archive.ErrInvalid):
		return http.StatusBadRequest, wire.ErrorBody{Code: wire.CodeInvalidArgument, Message: err.Error() + "; nothing was changed"}
	case errors.Is(err, archive.ErrTooBig):
		return http.StatusInsufficientStorage, wire.ErrorBody{Code: wire.CodeResourceExhausted, Message: err.Error() + "; nothing was changed"}
	case errors.Is(err, syscall.ENOSPC):
		// The raft log could not grow: the write was not committed.
		return http.StatusInsufficientStorage, wire.ErrorBody{Code: wire.CodeResourceExhausted,
			Message: "the disk of the data directory is full (" + err.Error() + "); the write did not happen: free space and retry"}
	case errors.Is(err, cluster.ErrNotLeader), errors.Is(err, cluster.ErrClosed), errors.Is(err, cluster.ErrRestoring),
		errors.Is(err, scheduler.ErrLeadershipLost):
		return http.StatusServiceUnavailable, wire.ErrorBody{Code: wire.CodeUnavailable, Message: err.Error() + "; retry shortly"}
	case errors.Is(err, cluster.ErrIndeterminate), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, wire.ErrorBody{Code: wire.CodeUnavailable,
			Message: err.Error() + "; the write may or may not have happened: retry with the same id"}
	default:
		a.log.Error("internal error", "err", err)
		return http.StatusInternalServerError, wire.ErrorBody{Code: wire.CodeInternal, Message: err.Error()}
	}
}

func (a *API) writeError(w http.ResponseWriter, err error) {
	status, body := a.classify(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, wire.ErrorResponse{Error: body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var data []byte
	var err error
	switch v := v.(type) { // the lists of tasks, without reflection (wire/append.go)
	case wire.LeaseResponse:
		data, err = wire.AppendLeaseResponse(nil, &v)
	case wire.BatchResponse:
		data, err = wire.AppendBatchResponse(nil, &v)
	case wire.Task:
		data, err = wire.AppendTask(nil, &v)
	default:
		data, err = json.Marshal(v)
	}
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"code":"internal","message":"encode response"}}`)
	}
	data = append(data, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	w.Write(data)
}

// TaskView is the API form of a stored task.
func TaskView(t *fsmpb.Task) wire.Task {
	ts := func(ns int64) *time.Time {
		if ns == 0 {
			return nil
		}
		v := time.Unix(0, ns).UTC()
		return &v
	}
	v := wire.Task{
		ID: t.Id, Queue: t.Queue, Name: t.Name,
		ExecuteAt:   time.Unix(0, t.ExecuteAt).UTC(),
		MaxAttempts: int(t.MaxAttempts),
		State:       fsm.StateName(t.State),
		Attempts:    int(t.Attempts),
		LastError:   t.LastError,
		CreatedAt:   time.Unix(0, t.CreatedAt).UTC(),
		UpdatedAt:   time.Unix(0, t.UpdatedAt).UTC(),
		FiredAt:     ts(t.FiredAt),
		CompletedAt: ts(t.CompletedAt),
		Version:     t.Version,
	}
	if len(t.Payload) > 0 {
		v.Payload = json.RawMessage(t.Payload)
	}
	if t.State == fsmpb.State_SCHEDULED && t.DueAt != t.ExecuteAt {
		v.NextAttemptAt = ts(t.DueAt)
	}
	if t.MaxLateness > 0 {
		v.MaxLateness = time.Duration(t.MaxLateness).String()
	}
	v.Result = t.Result
	v.LeaseExpiresAt = ts(t.LeaseExpiresAt)
	if t.Target != nil {
		v.Target = &wire.Target{
			URL: t.Target.Url, Method: t.Target.Method, Headers: t.Target.Headers,
			Timeout: time.Duration(t.Target.Timeout).String(),
		}
	}
	if b := t.Backoff; b != nil {
		v.Backoff = &wire.Backoff{Multiplier: b.Multiplier}
		if b.Initial > 0 {
			v.Backoff.Initial = time.Duration(b.Initial).String()
		}
		if b.Max > 0 {
			v.Backoff.Max = time.Duration(b.Max).String()
		}
	}
	return v
}
