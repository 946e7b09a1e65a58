package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/httpapi"
)

const benchUsage = `Usage: hourglass bench [flags]

Creates --tasks tasks against a running server or cluster, receives their
deliveries on a built-in webhook receiver (or, with --pull, leases them with
built-in pull workers), and reports create throughput and ack latency,
delivery lateness and throughput, the leader's fire lateness, and the
checker's verdict: tasks lost, delivered early or delivered twice. Exits 1
when a task was lost or delivered early.

Examples:
  hourglass bench --tasks 100000 --concurrency 64
  hourglass bench --tasks 100000 --batch 100 --spread 1s --due 20s
  hourglass bench --pending 1000000 --tasks 300000 --batch 100 --due 20s --spread 3s
  hourglass bench --pull --tasks 100000 --batch 100 --spread 1s --due 20s

Flags:
`

type benchConfig struct {
	addrs         []string
	token         string
	tls           *tls.Config // for https servers
	tasks         int
	concurrency   int
	batch         int
	payload       int
	due, spread   time.Duration
	pending       int
	pendingSpread time.Duration
	receiverAddr  string
	receiverURL   string
	wait          time.Duration
	asJSON        bool
	// pull: tasks without a target, leased by pullers workers, up to
	// leaseMax at a time each, and acknowledged in batches.
	pull     bool
	pullers  int
	leaseMax int
	// lease is how long a lease lasts: a task whose grant was lost (the
	// leader changed as it committed) is offered again after it.
	lease time.Duration
	// sdk: create through the Go SDK's CreateTask, one task a call,
	// which batches concurrent calls up to sdkBatch a request (1: off).
	sdk                   bool
	sdkBatch, sdkInFlight int
	sdkLinger             time.Duration
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg benchConfig
	var addrs listFlag
	fs := flag.NewFlagSet("hourglass bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage); fs.PrintDefaults() }
	fs.Var(&addrs, "addr", "HTTP address of a node to create tasks through; repeatable (requests take turns over them, and the others are tried when one fails) (default "+client.DefaultAddr+")")
	fs.StringVar(&cfg.token, "token", "", "bearer token, if the server requires one")
	var caCert, clientCert, clientKey string
	fs.StringVar(&caCert, "ca-cert", "", "CA certificate (PEM) that signed the servers', if not one the system trusts")
	fs.StringVar(&clientCert, "client-cert", "", "client certificate (PEM), for servers started with --tls-client-ca")
	fs.StringVar(&clientKey, "client-key", "", "the client certificate's key (PEM)")
	fs.IntVar(&cfg.tasks, "tasks", 10000, "tasks to create and see delivered")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "concurrent create requests (clients)")
	fs.IntVar(&cfg.batch, "batch", 1, "tasks per create request (more than 1: the batch endpoint)")
	fs.IntVar(&cfg.payload, "payload", 64, "payload size in bytes (at least the task's index fits)")
	fs.DurationVar(&cfg.due, "due", 10*time.Second, "when the first task falls due, counted from the start of the create phase")
	fs.DurationVar(&cfg.spread, "spread", time.Second, "due times are spread evenly over this window (0: all at the same instant)")
	fs.IntVar(&cfg.pending, "pending", 0, "background load: tasks created first, due far beyond the run")
	fs.DurationVar(&cfg.pendingSpread, "pending-spread", 30*24*time.Hour, "the background tasks fall due evenly over this window, starting an hour out")
	fs.StringVar(&cfg.receiverAddr, "receiver-addr", "127.0.0.1:0", "where the built-in webhook receiver listens")
	fs.StringVar(&cfg.receiverURL, "receiver-url", "", "the receiver's URL as the servers reach it (default: http://RECEIVER-ADDR)")
	fs.DurationVar(&cfg.wait, "wait", time.Minute, "how long after the last due time to wait for deliveries before counting the rest lost")
	fs.BoolVar(&cfg.asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&cfg.pull, "pull", false, "create tasks without a target and lease them with built-in pull workers (lateness: when a worker got the task)")
	fs.IntVar(&cfg.pullers, "pullers", 8, "with --pull: concurrent lease requests (workers)")
	fs.IntVar(&cfg.leaseMax, "lease-max", 1000, "with --pull: most tasks one lease request takes")
	fs.DurationVar(&cfg.lease, "lease", 30*time.Second, "with --pull: how long a lease lasts; a task whose lease grant was lost in a leader change is offered again after it (keep it below --wait)")
	fs.BoolVar(&cfg.sdk, "sdk", false, "create through the Go SDK's CreateTask, one task a call from each of --concurrency goroutines (instead of the benchmark's own lean requests; not with --batch)")
	fs.IntVar(&cfg.sdkBatch, "sdk-batch", client.DefaultCreateBatch, "with --sdk: most concurrent calls the SDK sends in one request (1: every call a request of its own)")
	fs.IntVar(&cfg.sdkInFlight, "sdk-requests", client.DefaultCreateRequests, "with --sdk: most create requests the SDK has in flight at once (to each node) while it batches, all but one of them full")
	fs.DurationVar(&cfg.sdkLinger, "sdk-linger", client.DefaultCreateLinger, "with --sdk: longest a batch request waits for the calls of callers it just answered (0: none)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this benchmark process (the clients and the receiver, not the servers) to this file")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: bench takes no arguments, got %q", errUsage, rest)
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer stop()
	}
	if caCert != "" || clientCert != "" || clientKey != "" {
		if cfg.tls, err = client.LoadTLS(caCert, clientCert, clientKey); err != nil {
			return fmt.Errorf("%w: --ca-cert, --client-cert, --client-key: %v", errUsage, err)
		}
	}
	cfg.addrs = addrs
	if len(cfg.addrs) == 0 {
		cfg.addrs = []string{client.DefaultAddr}
	}
	if err := cfg.check(); err != nil {
		return err
	}
	rep, err := bench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if err := rep.print(stdout, cfg.asJSON); err != nil {
		return err
	}
	if rep.Verdict.Acknowledged == 0 {
		return fmt.Errorf("no task was created: %s", rep.Create.FirstError)
	}
	if !rep.Verdict.ok() {
		return fmt.Errorf("the checker failed the run: %d lost, %d early, %d malformed", rep.Verdict.Lost, rep.Verdict.Early, rep.Verdict.Malformed)
	}
	return nil
}

func (c *benchConfig) check() error {
	switch {
	case c.tasks < 1:
		return fmt.Errorf("%w: --tasks %d: want at least 1", errUsage, c.tasks)
	case c.concurrency < 1:
		return fmt.Errorf("%w: --concurrency %d: want at least 1", errUsage, c.concurrency)
	case c.batch < 1:
		return fmt.Errorf("%w: --batch %d: want at least 1", errUsage, c.batch)
	case c.payload < 0:
		return fmt.Errorf("%w: --payload %d: want 0 or more bytes", errUsage, c.payload)
	case c.due <= 0:
		return fmt.Errorf("%w: --due %v: want a positive duration", errUsage, c.due)
	case c.spread < 0:
		return fmt.Errorf("%w: --spread %v: want 0 or more", errUsage, c.spread)
	case c.pending < 0:
		return fmt.Errorf("%w: --pending %d: want 0 or more", errUsage, c.pending)
	case c.pendingSpread <= 0:
		return fmt.Errorf("%w: --pending-spread %v: want a positive duration", errUsage, c.pendingSpread)
	case c.wait <= 0:
		return fmt.Errorf("%w: --wait %v: want a positive duration", errUsage, c.wait)
	case c.pullers < 1:
		return fmt.Errorf("%w: --pullers %d: want at least 1", errUsage, c.pullers)
	case c.leaseMax < 1 || c.leaseMax > 1000:
		return fmt.Errorf("%w: --lease-max %d: want 1 to 1000", errUsage, c.leaseMax)
	case c.lease < time.Second || c.lease > time.Hour:
		return fmt.Errorf("%w: --lease %v: want 1s to 1h", errUsage, c.lease)
	case c.sdk && c.batch > 1:
		return fmt.Errorf("%w: --sdk makes one call a task; --batch %d is for the benchmark's own requests", errUsage, c.batch)
	case c.sdkBatch < 1:
		return fmt.Errorf("%w: --sdk-batch %d: want at least 1", errUsage, c.sdkBatch)
	case c.sdkInFlight < 1:
		return fmt.Errorf("%w: --sdk-requests %d: want at least 1", errUsage, c.sdkInFlight)
	case c.sdkLinger < 0:
		return fmt.Errorf("%w: --sdk-linger %v: want 0 or more", errUsage, c.sdkLinger)
	}
	return nil
}

// bench runs the whole benchmark: background load, creates, deliveries.
func bench(ctx context.Context, cfg benchConfig, progress io.Writer) (*benchReport, error) {
	runID := make([]byte, 4)
	rand.Read(runID)
	due := make([]int64, cfg.tasks)
	chk := newChecker(hex.EncodeToString(runID), due)
	if !cfg.pull {
		ln, err := net.Listen("tcp", cfg.receiverAddr)
		if err != nil {
			return nil, fmt.Errorf("receiver: listen on %s: %w", cfg.receiverAddr, err)
		}
		if cfg.receiverURL == "" {
			cfg.receiverURL = "http://" + ln.Addr().String()
		}
		srv := httpapi.NewServer(ln.Addr().String(), chk)
		go srv.Serve(ln)
		defer srv.Close()
	}

	clients := make([]*client.Client, len(cfg.addrs))
	for i, a := range cfg.addrs {
		if !strings.Contains(a, "://") {
			scheme := "http://"
			if cfg.tls != nil {
				scheme = "https://"
			}
			cfg.addrs[i] = scheme + a
		}
		opts := []client.Option{client.WithCreateBatching(cfg.sdkBatch, cfg.sdkInFlight), client.WithCreateLinger(cfg.sdkLinger)}
		if cfg.tls != nil {
			opts = append(opts, client.WithTLS(cfg.tls))
		}
		clients[i] = client.New(cfg.addrs[i], cfg.token, opts...)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = cfg.tls
	transport.MaxIdleConnsPerHost = cfg.concurrency + 4
	b := &benchRun{cfg: cfg, clients: clients, chk: chk, progress: progress,
		http:  &http.Client{Transport: transport, Timeout: time.Minute},
		queue: "bench-" + hex.EncodeToString(runID)}
	if err := b.ready(ctx); err != nil {
		return nil, err
	}
	rep := &benchReport{Config: cfg.describe(), Verdict: verdict{}}
	var err error
	if cfg.pending > 0 {
		if rep.Pending, err = b.createPending(ctx); err != nil {
			return nil, err
		}
	}
	before := b.scrape(ctx)
	cpuBefore := b.sampleCPU(ctx)

	start := time.Now()
	first := start.Add(cfg.due)
	for i := range due {
		due[i] = first.Add(time.Duration(float64(cfg.spread) * float64(i) / float64(cfg.tasks))).UnixNano()
	}
	stopPulling := func() {}
	if cfg.pull {
		stopPulling = b.pull(ctx)
	}
	rep.Create = b.create(ctx, start)
	cpuAfterCreate := b.sampleCPU(ctx)
	var afterCreate *metricsSample
	if time.Now().Before(first) {
		afterCreate = b.scrape(ctx)
	}
	rep.Delivery = b.waitDelivered(ctx, time.Unix(0, due[len(due)-1]).Add(cfg.wait))
	stopPulling()
	rep.Verdict = chk.verdict()
	rep.Server = b.serverReport(ctx, before, afterCreate)
	rep.CPU = cpuPerTask(cpuBefore, cpuAfterCreate, b.sampleCPU(ctx), rep.Create.Tasks)
	return rep, nil
}

// benchRun is one benchmark under way.
type benchRun struct {
	cfg      benchConfig
	clients  []*client.Client // for readiness and /v1/cluster
	turn     atomic.Uint64    // which node a create tries first
	http     *http.Client     // for the creates
	chk      *checker
	progress io.Writer
	queue    string // with --pull: this run's tasks' queue
}

// ready waits (a while) for some node to answer /readyz.
func (b *benchRun) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	for {
		for _, c := range b.clients {
			if err = c.Ready(ctx); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no server ready at %v: %w", b.cfg.addrs, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// The create path is lean on purpose: the load generator shares the cores
// with the server it measures. Request bodies are built by hand and only
// the status and the per-task errors of a response are read.

// appendTask appends task i's JSON: due at (unix ns), its payload of the
// given size, and where it goes: to a target whose URL is given already
// JSON-quoted, or (quotedURL nil) to the pull workers of the queue
// quotedQueue. It returns the payload's length too.
func appendTask(dst []byte, i int, at int64, size int, quotedURL, quotedQueue []byte) ([]byte, int) {
	dst = append(dst, `{"execute_at":"`...)
	dst = time.Unix(0, at).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","payload":`...)
	n := len(dst)
	dst = appendPayload(dst, i, size)
	n = len(dst) - n
	if quotedURL == nil {
		dst = append(dst, `,"queue":`...)
		dst = append(dst, quotedQueue...)
		return append(dst, '}'), n
	}
	dst = append(dst, `,"target":{"url":`...)
	dst = append(dst, quotedURL...)
	return append(dst, `}}`...), n
}

// batchAnswer is what the benchmark reads of a batch create's answer.
type batchAnswer struct {
	Results []struct {
		Error *client.ErrorBody `json:"error"`
	} `json:"results"`
}

// send makes one create request of n tasks (body holds one task's JSON,
// or with n > 1 a batch), through the nodes in turn (requests take turns
// at which node they try first, so a cluster's nodes share the load): a
// node that cannot be reached is skipped, an answer is final. It returns
// which tasks were created.
func (b *benchRun) send(ctx context.Context, body []byte, n int) ([]bool, error) {
	path := "/v1/tasks"
	if n > 1 {
		path = "/v1/tasks/batch"
	}
	var err error
	first := int(b.turn.Add(1) % uint64(len(b.cfg.addrs)))
	for k := range b.cfg.addrs {
		addr := b.cfg.addrs[(first+k)%len(b.cfg.addrs)]
		var resp *http.Response
		resp, err = b.post(ctx, addr+path, body)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			continue
		}
		data, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
			return nil, fmt.Errorf("POST %s: read answer: %w", path, rerr)
		case resp.StatusCode/100 != 2:
			var e client.ErrorResponse
			json.Unmarshal(data, &e)
			return nil, fmt.Errorf("POST %s: HTTP %d: %s: %s", path, resp.StatusCode, e.Error.Code, e.Error.Message)
		case n == 1:
			return []bool{true}, nil
		}
		var ans batchAnswer
		if err := json.Unmarshal(data, &ans); err != nil || len(ans.Results) != n {
			return nil, fmt.Errorf("POST %s: %d results for %d tasks (%v)", path, len(ans.Results), n, err)
		}
		created := make([]bool, n)
		for i, r := range ans.Results {
			created[i] = r.Error == nil
		}
		return created, nil
	}
	return nil, err
}

func (b *benchRun) post(ctx context.Context, url string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if b.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+b.cfg.token)
	}
	return b.http.Do(req)
}

// request is one create request's body, reused from request to request.
type request struct {
	body         []byte
	payloadBytes int // of the tasks in body
}

// build makes the body creating tasks lo..hi-1, each due at(i), for the
// target url (or the pull workers of queue, when url is nil).
func (r *request) build(lo, hi, payload int, url, queue []byte, at func(int) int64) {
	r.body, r.payloadBytes = r.body[:0], 0
	if hi-lo > 1 {
		r.body = append(r.body, `{"tasks":[`...)
	}
	for i := lo; i < hi; i++ {
		if i > lo {
			r.body = append(r.body, ',')
		}
		var n int
		r.body, n = appendTask(r.body, i, at(i), payload, url, queue)
		r.payloadBytes += n
	}
	if hi-lo > 1 {
		r.body = append(r.body, `]}`...)
	}
}

// createPending creates the background load: tasks due an hour out and
// later, spread over --pending-spread, in batches.
func (b *benchRun) createPending(ctx context.Context) (*createReport, error) {
	const batch, clients = 1000, 4
	url, queue := quote(b.cfg.receiverURL+"/pending"), []byte(nil)
	if b.cfg.pull {
		url, queue = nil, quote("bench-pending") // nobody leases these within the run
	}
	from := time.Now().Add(time.Hour).UnixNano()
	at := func(i int) int64 {
		return from + int64(float64(b.cfg.pendingSpread)*float64(i)/float64(b.cfg.pending))
	}
	var next, done, raw atomic.Int64
	var failed atomic.Pointer[error]
	stop := b.report("background", &done, b.cfg.pending)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			var req request
			for failed.Load() == nil && ctx.Err() == nil {
				lo := int(next.Add(batch)) - batch
				if lo >= b.cfg.pending {
					return
				}
				hi := min(lo+batch, b.cfg.pending)
				req.build(lo, hi, b.cfg.payload, url, queue, at)
				created, err := b.send(ctx, req.body, hi-lo)
				if err != nil {
					err = fmt.Errorf("create background tasks: %w", err)
					failed.CompareAndSwap(nil, &err)
					return
				}
				if n := count(created); n != hi-lo {
					err = fmt.Errorf("create background tasks: %d of %d refused", hi-lo-n, hi-lo)
					failed.CompareAndSwap(nil, &err)
					return
				}
				// Each task's own JSON: the batch less its frame and commas.
				raw.Add(int64(len(req.body) - len(`{"tasks":[]}`) - (hi - lo - 1)))
				done.Add(int64(hi - lo))
			}
		})
	}
	wg.Wait()
	stop()
	if err := failed.Load(); err != nil {
		return nil, *err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	return &createReport{Tasks: b.cfg.pending, RequestBytes: raw.Load(), Seconds: elapsed.Seconds(), PerSecond: float64(b.cfg.pending) / elapsed.Seconds()}, nil
}

// create runs the measured create phase.
func (b *benchRun) create(ctx context.Context, start time.Time) *createReport {
	cfg := b.cfg
	url, queue := quote(cfg.receiverURL+b.chk.path), []byte(nil)
	if cfg.pull {
		url, queue = nil, quote(b.queue)
	}
	at := func(i int) int64 { return b.chk.due[i] }
	var next, done, requests, failures, late, bodyBytes atomic.Int64
	var firstErr atomic.Pointer[error]
	latencies := make([][]time.Duration, cfg.concurrency)
	stop := b.report("create", &done, cfg.tasks)
	var wg sync.WaitGroup
	for w := range cfg.concurrency {
		wg.Go(func() {
			if cfg.sdk {
				b.createThroughSDK(ctx, &next, &done, &failures, &late, &firstErr, &latencies[w])
				return
			}
			var req request
			for ctx.Err() == nil {
				lo := int(next.Add(int64(cfg.batch))) - cfg.batch
				if lo >= cfg.tasks {
					return
				}
				hi := min(lo+cfg.batch, cfg.tasks)
				req.build(lo, hi, cfg.payload, url, queue, at)
				sent := time.Now()
				created, err := b.send(ctx, req.body, hi-lo)
				acked := time.Now()
				requests.Add(1)
				latencies[w] = append(latencies[w], acked.Sub(sent))
				if err != nil {
					failures.Add(int64(hi - lo))
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				for k, ok := range created {
					if !ok {
						failures.Add(1)
						continue
					}
					b.chk.acked[lo+k].Store(true)
					if acked.UnixNano() > b.chk.due[lo+k] {
						late.Add(1)
					}
				}
				bodyBytes.Add(int64(req.payloadBytes))
				done.Add(int64(hi - lo))
			}
		})
	}
	wg.Wait()
	stop()
	elapsed := time.Since(start)
	all := slices.Concat(latencies...)
	slices.Sort(all)
	created := cfg.tasks - int(failures.Load())
	r := &createReport{
		Tasks: created, Failed: int(failures.Load()), Requests: int(requests.Load()),
		Seconds: elapsed.Seconds(), PerSecond: float64(created) / elapsed.Seconds(),
		AckP50: ms(quantile(all, 0.50)), AckP99: ms(quantile(all, 0.99)),
		PayloadBytes: bodyBytes.Load(), CreatedAfterDue: int(late.Load()),
	}
	if err := firstErr.Load(); err != nil {
		r.FirstError = (*err).Error()
	}
	return r
}

// createThroughSDK creates tasks, one a CreateTask call, until none are
// left: what an application creating tasks one at a time does.
func (b *benchRun) createThroughSDK(ctx context.Context, next, done, failures, late *atomic.Int64, firstErr *atomic.Pointer[error], latencies *[]time.Duration) {
	for ctx.Err() == nil {
		i := int(next.Add(1)) - 1
		if i >= b.cfg.tasks {
			return
		}
		req := client.CreateTaskRequest{
			ExecuteAt: time.Unix(0, b.chk.due[i]).UTC().Format(time.RFC3339Nano),
			Payload:   appendPayload(nil, i, b.cfg.payload),
		}
		if b.cfg.pull {
			req.Queue = b.queue
		} else {
			req.Target = &client.Target{URL: b.cfg.receiverURL + b.chk.path}
		}
		c := b.clients[int(b.turn.Add(1)%uint64(len(b.clients)))]
		sent := time.Now()
		_, err := c.CreateTask(ctx, req)
		acked := time.Now()
		*latencies = append(*latencies, acked.Sub(sent))
		if err != nil {
			failures.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			continue
		}
		b.chk.acked[i].Store(true)
		if acked.UnixNano() > b.chk.due[i] {
			late.Add(1)
		}
		done.Add(1)
	}
}

func quote(s string) []byte {
	q, _ := json.Marshal(s)
	return q
}

func count(created []bool) int {
	n := 0
	for _, ok := range created {
		if ok {
			n++
		}
	}
	return n
}

// waitDelivered waits until every acknowledged task arrived, or deadline.
func (b *benchRun) waitDelivered(ctx context.Context, deadline time.Time) *deliveryReport {
	total := 0
	for i := range b.chk.acked {
		if b.chk.acked[i].Load() {
			total++
		}
	}
	var delivered atomic.Int64
	stop := b.report("deliver", &delivered, total)
	tick := time.NewTicker(50 * time.Millisecond)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		left := b.chk.undelivered()
		delivered.Store(int64(total - left))
		if left == 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	tick.Stop()
	stop()
	// Duplicates may trail the last first delivery: give them a moment.
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}

	late, at := b.chk.deliveries()
	slices.Sort(late)
	slices.Sort(at)
	r := &deliveryReport{Delivered: len(late), PullErrors: b.chk.pullErrors.Load()}
	if len(late) == 0 {
		return r
	}
	r.LatenessP50, r.LatenessP99 = ms(quantile(late, 0.50)), ms(quantile(late, 0.99))
	r.LatenessP999, r.LatenessMax = ms(quantile(late, 0.999)), ms(late[len(late)-1])
	span := time.Duration(at[len(at)-1] - at[0])
	r.Seconds = span.Seconds()
	if span > 0 {
		r.PerSecond = float64(len(at)-1) / span.Seconds()
	}
	var gap, gapAt int64
	for i := 1; i < len(at); i++ {
		if d := at[i] - at[i-1]; d > gap {
			gap, gapAt = d, at[i-1]
		}
	}
	r.LongestPause = ms(time.Duration(gap))
	if gap > 0 {
		r.LongestPauseFrom = time.Unix(0, gapAt).UTC()
	}
	return r
}

// report prints progress every second until the returned stop is called.
func (b *benchRun) report(phase string, done *atomic.Int64, total int) (stop func()) {
	quit := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-quit:
				return
			case now := <-tick.C:
				n := done.Load()
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				fmt.Fprintf(b.progress, "%-10s %10d / %d  (%.0f/s)\n", phase, n, total, rate)
				last, lastAt = n, now
			}
		}
	}()
	return func() { close(quit); <-finished }
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// ms is d in milliseconds, for the report.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// startCPUProfile profiles this process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
