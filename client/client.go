package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultAddr is where a server started with no flags listens.
const DefaultAddr = "http://127.0.0.1:7070"

// Sentinel errors; errors.Is matches an *Error against them by code.
var (
	ErrInvalidArgument = errors.New(CodeInvalidArgument)
	ErrNotFound        = errors.New(CodeNotFound)
	ErrConflict        = errors.New(CodeConflict)
	ErrUnavailable     = errors.New(CodeUnavailable)
	// ErrResourceExhausted: the server had too many requests at once (429);
	// retry after a moment.
	ErrResourceExhausted = errors.New(CodeResourceExhausted)
	ErrUnauthenticated   = errors.New(CodeUnauthenticated)
)

// Error is an error answered by the server.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message) }

// Is matches the sentinel of e's code.
func (e *Error) Is(target error) bool {
	return target != nil && target.Error() == e.Code
}

// Client calls one Hourglass server. It is safe for concurrent use.
type Client struct {
	addr  string
	token string
	http  *http.Client
	// stream has no overall timeout: a snapshot takes as long as its size.
	stream *http.Client
	// creates batches concurrent CreateTask calls (nil: each is a
	// request of its own).
	creates *coalescer
}

// New returns a client for the server at addr (DefaultAddr when empty;
// "host:port" means http://host:port, or https:// with WithTLS), sending
// token as a bearer token when it is not empty.
func New(addr, token string, opts ...Option) *Client {
	o := options{batchTasks: DefaultCreateBatch, batchRequests: DefaultCreateRequests, batchLinger: DefaultCreateLinger}
	for _, opt := range opts {
		opt(&o)
	}
	if addr == "" {
		addr = DefaultAddr
	}
	if !strings.Contains(addr, "://") {
		scheme := "http://"
		if o.tls != nil {
			scheme = "https://"
		}
		addr = scheme + addr
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 256
	if o.tls != nil {
		base.TLSClientConfig = o.tls.Clone()
	}
	var transport http.RoundTripper = base
	if o.wrap != nil {
		transport = o.wrap(base)
	}
	c := &Client{
		addr:   strings.TrimRight(addr, "/"),
		token:  token,
		http:   &http.Client{Transport: transport, Timeout: time.Minute},
		stream: &http.Client{Transport: transport},
	}
	if o.batchTasks > 1 && o.batchRequests > 0 {
		c.creates = newCoalescer(c, o.batchTasks, o.batchRequests, o.batchLinger)
	}
	return c
}

// Option configures a Client.
type Option func(*options)

type options struct {
	tls                       *tls.Config
	wrap                      func(http.RoundTripper) http.RoundTripper
	batchTasks, batchRequests int
	batchLinger               time.Duration
}

// WithTLS sets the TLS configuration for an https server: the CA to trust
// if not the system's, a client certificate if the server asks for one
// (LoadTLS reads them from files).
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithTransport wraps the client's HTTP transport in wrap's: for tracing,
// metrics, or recording the calls (as the tests' linearizability check
// does).
func WithTransport(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(o *options) { o.wrap = wrap }
}

// LoadTLS reads a TLS configuration for WithTLS from PEM files: caFile, if
// not empty, is the CA that signed the server's certificate (instead of the
// system's roots); certFile and keyFile, if not empty, are a client
// certificate for a server that requires one.
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s: no PEM certificate in it", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// CreateTask creates a task. An existing task with the same id and body is
// returned as it is; with another body the error is ErrConflict.
// Concurrent calls share batch requests (see WithCreateBatching); each
// still gets its own task or error.
func (c *Client) CreateTask(ctx context.Context, req CreateTaskRequest) (*Task, error) {
	if c.creates != nil {
		return c.creates.create(ctx, req)
	}
	return c.createOne(ctx, req)
}

// createOne creates a task with a request of its own.
func (c *Client) createOne(ctx context.Context, req CreateTaskRequest) (*Task, error) {
	var t Task
	if err := c.do(ctx, http.MethodPost, "/v1/tasks", nil, req, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateTasks creates up to the server's batch limit of tasks in one raft
// entry. Invalid input fails the whole batch; per-task conflicts come back
// as results carrying an error.
func (c *Client) CreateTasks(ctx context.Context, reqs []CreateTaskRequest) ([]BatchResult, error) {
	var out BatchResponse
	err := c.do(ctx, http.MethodPost, "/v1/tasks/batch", nil, BatchRequest{Tasks: reqs}, &out)
	return out.Results, err
}

// GetTask returns a task by id.
func (c *Client) GetTask(ctx context.Context, id string) (*Task, error) {
	var t Task
	return &t, c.do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id), nil, nil, &t)
}

// CancelTask cancels a scheduled task. Cancelling a task that already
// finished is ErrConflict.
func (c *Client) CancelTask(ctx context.Context, id string) (*Task, error) {
	var t Task
	return &t, c.do(ctx, http.MethodDelete, "/v1/tasks/"+url.PathEscape(id), nil, nil, &t)
}

// UpdateTask changes a scheduled task. A non-zero ifVersion makes it a
// compare-and-set against the task's version.
func (c *Client) UpdateTask(ctx context.Context, id string, req UpdateTaskRequest, ifVersion uint64) (*Task, error) {
	var h http.Header
	if ifVersion != 0 {
		h = http.Header{"If-Match": {strconv.FormatUint(ifVersion, 10)}}
	}
	var t Task
	return &t, c.do(ctx, http.MethodPatch, "/v1/tasks/"+url.PathEscape(id), h, req, &t)
}

// ListOptions filters ListTasks; zero values mean any.
type ListOptions struct {
	Queue     string
	State     string
	Limit     int
	PageToken string
}

// ListTasks returns one page of tasks.
func (c *Client) ListTasks(ctx context.Context, opt ListOptions) (*ListResponse, error) {
	q := url.Values{}
	if opt.Queue != "" {
		q.Set("queue", opt.Queue)
	}
	if opt.State != "" {
		q.Set("state", opt.State)
	}
	if opt.Limit > 0 {
		q.Set("limit", strconv.Itoa(opt.Limit))
	}
	if opt.PageToken != "" {
		q.Set("page_token", opt.PageToken)
	}
	path := "/v1/tasks"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out ListResponse
	return &out, c.do(ctx, http.MethodGet, path, nil, nil, &out)
}

// Ready returns nil when the server answers /readyz with 200.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

func (c *Client) do(ctx context.Context, method, path string, h http.Header, in, out any) error {
	return c.doWith(ctx, c.http, method, path, h, in, out)
}

func (c *Client) doWith(ctx context.Context, hc *http.Client, method, path string, h http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(data)
		h = h.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("Content-Type", "application/json")
	}
	resp, err := c.send(ctx, hc, method, path, h, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := readAll(resp, 256<<20)
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	if readAnswer(data, out) {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// readAll reads resp's body, up to limit bytes, into a buffer sized for
// its Content-Length (up to 1 MiB before the bytes arrive) rather than one
// grown by doubling as they come: a batch's answer is tens of kilobytes.
func readAll(resp *http.Response, limit int64) ([]byte, error) {
	size := int64(bytes.MinRead) // ReadFrom wants this much room to see the end
	if resp.ContentLength > 0 {
		size += min(resp.ContentLength, limit, 1<<20)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, limit))
	return buf.Bytes(), err
}

// send makes a request and returns a 2xx response; any other status is
// read into an *Error.
func (c *Client) send(ctx context.Context, hc *http.Client, method, path string, h http.Header, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: HTTP %d, and reading its body: %w", method, path, resp.StatusCode, err)
	}
	var e ErrorResponse
	if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
		return nil, &Error{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(data))}
	}
	return nil, &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
}

// SaveSnapshot streams a backup archive of the whole cluster into w and
// returns the number of bytes written. The archive is only known whole
// once it is verified (the hourglass CLI's "snapshot save" does that).
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, c.stream, http.MethodGet, "/v1/snapshot", nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET /v1/snapshot: after %d bytes: %w", n, err)
	}
	return n, nil
}

// RestoreSnapshot replaces the whole cluster's state with the backup
// archive read from r. The server checks the archive completely before it
// changes anything; a bad one is ErrInvalidArgument.
func (c *Client) RestoreSnapshot(ctx context.Context, r io.Reader) (*RestoreResponse, error) {
	h := http.Header{"Content-Type": {"application/gzip"}}
	resp, err := c.send(ctx, c.stream, http.MethodPost, "/v1/snapshot", h, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out RestoreResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("POST /v1/snapshot: decode response: %w", err)
	}
	return &out, nil
}

// Cluster returns the answering node's view of the cluster.
func (c *Client) Cluster(ctx context.Context) (*ClusterInfo, error) {
	var info ClusterInfo
	return &info, c.do(ctx, http.MethodGet, "/v1/cluster", nil, nil, &info)
}

// RemoveNode takes a node out of the cluster's raft configuration.
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/cluster/nodes/"+url.PathEscape(id), nil, nil, nil)
}

// PutQueue creates or replaces the settings of queue name.
func (c *Client) PutQueue(ctx context.Context, name string, settings QueueSettings) (*Queue, error) {
	var q Queue
	return &q, c.do(ctx, http.MethodPut, "/v1/queues/"+url.PathEscape(name), nil, settings, &q)
}

// GetQueue returns a queue's settings and task counts.
func (c *Client) GetQueue(ctx context.Context, name string) (*Queue, error) {
	var q Queue
	return &q, c.do(ctx, http.MethodGet, "/v1/queues/"+url.PathEscape(name), nil, nil, &q)
}

// ListQueues returns every queue, following the pages.
func (c *Client) ListQueues(ctx context.Context) ([]Queue, error) {
	var all []Queue
	token := ""
	for {
		var out QueueList
		path := "/v1/queues"
		if token != "" {
			path += "?page_token=" + url.QueryEscape(token)
		}
		if err := c.do(ctx, http.MethodGet, path, nil, nil, &out); err != nil {
			return all, err
		}
		all = append(all, out.Queues...)
		if token = out.NextPageToken; token == "" {
			return all, nil
		}
	}
}

// DeleteQueue removes a queue's settings; ErrConflict while it holds
// scheduled or running tasks.
func (c *Client) DeleteQueue(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/queues/"+url.PathEscape(name), nil, nil, nil)
}

// PauseQueue stops a queue's deliveries and leases until ResumeQueue; its
// due tasks wait, still scheduled.
func (c *Client) PauseQueue(ctx context.Context, name string) (*Queue, error) {
	var q Queue
	return &q, c.do(ctx, http.MethodPost, "/v1/queues/"+url.PathEscape(name)+"/pause", nil, nil, &q)
}

// ResumeQueue undoes PauseQueue.
func (c *Client) ResumeQueue(ctx context.Context, name string) (*Queue, error) {
	var q Queue
	return &q, c.do(ctx, http.MethodPost, "/v1/queues/"+url.PathEscape(name)+"/resume", nil, nil, &q)
}

// Redrive moves the dead task id (or, with id empty, every dead task) of
// a queue back to scheduled, due now with its attempts reset, and returns
// how many it moved.
func (c *Client) Redrive(ctx context.Context, queue, id string) (int, error) {
	var out RedriveResponse
	return out.Redriven, c.do(ctx, http.MethodPost, "/v1/queues/"+url.PathEscape(queue)+"/redrive", nil, RedriveRequest{ID: id}, &out)
}

// CancelTasks cancels the scheduled tasks of a queue that req selects
// (req.By must be empty); with req.DryRun it only counts them.
func (c *Client) CancelTasks(ctx context.Context, queue string, req BulkRequest) (*BulkResponse, error) {
	var out BulkResponse
	return &out, c.do(ctx, http.MethodPost, "/v1/queues/"+url.PathEscape(queue)+"/cancel", nil, req, &out)
}

// ShiftTasks moves the scheduled tasks of a queue that req selects by
// req.By; with req.DryRun it only counts them.
func (c *Client) ShiftTasks(ctx context.Context, queue string, req BulkRequest) (*BulkResponse, error) {
	var out BulkResponse
	return &out, c.do(ctx, http.MethodPost, "/v1/queues/"+url.PathEscape(queue)+"/shift", nil, req, &out)
}

// LeaseTasks leases up to req.Max due tasks of a queue without a target,
// waiting up to req.Wait for one to fall due. Each must be acked, nacked
// or extended before its LeaseExpiresAt; one that is not is offered again
// as a failed attempt.
func (c *Client) LeaseTasks(ctx context.Context, queue string, req LeaseRequest) ([]LeasedTask, error) {
	var out LeaseResponse
	// No client timeout: the server holds the request up to req.Wait.
	return out.Tasks, c.doWith(ctx, c.stream, http.MethodPost, "/v1/queues/"+url.PathEscape(queue)+"/lease", nil, req, &out)
}

// AckTask finishes a leased attempt as succeeded, with an optional short
// result. A lease that ran out or was finished, or a token that is not
// the lease's, is ErrConflict.
func (c *Client) AckTask(ctx context.Context, id, leaseToken, result string) (*Task, error) {
	var t Task
	return &t, c.do(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/ack", nil, AckRequest{LeaseToken: leaseToken, Result: result}, &t)
}

// AckTasks acknowledges many leased attempts in one request (and one
// raft entry): a result per ack, in order, with the error of each that
// did not apply.
func (c *Client) AckTasks(ctx context.Context, acks []AckItem) ([]AckResult, error) {
	var out AcksResponse
	return out.Results, c.do(ctx, http.MethodPost, "/v1/tasks/ack", nil, AcksRequest{Acks: acks}, &out)
}

// AckAll acknowledges acks in batch requests, sending again, after a
// growing pause, whatever the server could not take just now: the whole
// request (an election, a node restarting) or the acks of one group
// (answered "unavailable" each, while the other groups took theirs).
// refused (if not nil) hears each ack the server refused for good (its
// lease ran out, the task is gone). It returns nil once every ack is answered, else why
// not: ctx ended first (give it the leases' time), or the request was
// refused as a whole.
func (c *Client) AckAll(ctx context.Context, acks []AckItem, refused func(AckItem, *ErrorBody)) error {
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 2*time.Second) {
		results, err := c.AckTasks(ctx, acks)
		var e *Error
		switch {
		case err == nil:
			var again []AckItem
			for i, r := range results {
				switch {
				case i >= len(acks) || r.Error == nil:
				case r.Error.Code == CodeUnavailable:
					again = append(again, acks[i])
					err = fmt.Errorf("%d of %d acks: %s", len(again), len(acks), r.Error.Message)
				case refused != nil:
					refused(acks[i], r.Error)
				}
			}
			if len(again) == 0 {
				return nil
			}
			acks = again
		case errors.As(err, &e) && e.Status < 500:
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d acks not taken before %v: %w", len(acks), ctx.Err(), err)
		case <-time.After(pause):
		}
	}
}

// NackTask fails a leased attempt: the task is retried (after req.RetryIn,
// or its backoff) or dead when its attempts are used up.
func (c *Client) NackTask(ctx context.Context, id string, req NackRequest) (*Task, error) {
	var t Task
	return &t, c.do(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/nack", nil, req, &t)
}

// ExtendLease makes a live lease last lease from now.
func (c *Client) ExtendLease(ctx context.Context, id, leaseToken string, lease time.Duration) (*Task, error) {
	var t Task
	return &t, c.do(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/extend", nil, ExtendRequest{LeaseToken: leaseToken, Lease: lease.String()}, &t)
}

// DueStats counts the scheduled tasks falling due per step of [from, to)
// (zero values: the server's defaults, the next hour by minute).
func (c *Client) DueStats(ctx context.Context, from, to time.Time, step time.Duration) (*DueStats, error) {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.Format(time.RFC3339Nano))
	}
	if !to.IsZero() {
		q.Set("to", to.Format(time.RFC3339Nano))
	}
	if step > 0 {
		q.Set("step", step.String())
	}
	path := "/v1/stats/due"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out DueStats
	return &out, c.do(ctx, http.MethodGet, path, nil, nil, &out)
}
