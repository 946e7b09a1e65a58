package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchReport is what hourglass bench prints at the end.
type benchReport struct {
	Config   map[string]any  `json:"config"`
	Pending  *createReport   `json:"background,omitempty"`
	Create   *createReport   `json:"create"`
	Delivery *deliveryReport `json:"delivery"`
	Server   *serverReport   `json:"server,omitempty"`
	CPU      *cpuReport      `json:"server_cpu,omitempty"`
	Verdict  verdict         `json:"verdict"`
}

// cpuReport is the CPU time every node of the cluster spent
// (process_cpu_seconds_total), over the creates and over the whole run
// (creates, the wait for the first due time, fires, deliveries or
// leases, outcomes or acks), per task.
type cpuReport struct {
	Nodes            int     `json:"nodes"`
	CreateSeconds    float64 `json:"create_seconds"`
	CreateMicrosEach float64 `json:"create_us_per_task"`
	RunSeconds       float64 `json:"run_seconds"`
	RunMicrosEach    float64 `json:"run_us_per_task"`
}

// cpuSample is the CPU time the nodes had spent, added up, at one moment.
type cpuSample struct {
	seconds float64
	nodes   []string // the nodes' HTTP addresses, sorted
}

// sampleCPU reads process_cpu_seconds_total of every node of the
// cluster; nil if a node could not be read.
func (b *benchRun) sampleCPU(ctx context.Context) *cpuSample {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, c := range b.clients {
		info, err := c.Cluster(ctx)
		if err != nil {
			continue
		}
		s := &cpuSample{}
		for _, n := range info.Nodes {
			if n.HTTPAddr == "" {
				return nil
			}
			m := &metricsSample{buckets: map[float64]float64{}, values: map[string]float64{}}
			if !m.add(ctx, n.HTTPAddr) {
				return nil
			}
			s.seconds += m.values["process_cpu_seconds_total"]
			s.nodes = append(s.nodes, n.HTTPAddr)
		}
		slices.Sort(s.nodes)
		return s
	}
	return nil
}

// cpuPerTask compares the samples taken before the creates, after them
// and at the end, for tasks tasks; nil unless all three were read, of the
// same nodes.
func cpuPerTask(before, afterCreate, end *cpuSample, tasks int) *cpuReport {
	if before == nil || afterCreate == nil || end == nil || tasks == 0 ||
		!slices.Equal(before.nodes, end.nodes) || !slices.Equal(before.nodes, afterCreate.nodes) {
		return nil
	}
	r := &cpuReport{Nodes: len(end.nodes), CreateSeconds: afterCreate.seconds - before.seconds, RunSeconds: end.seconds - before.seconds}
	r.CreateMicrosEach = r.CreateSeconds / float64(tasks) * 1e6
	r.RunMicrosEach = r.RunSeconds / float64(tasks) * 1e6
	return r
}

type createReport struct {
	Tasks int `json:"tasks"`
	// RequestBytes is the tasks' JSON as sent, each on its own (the raw
	// size of what was stored); counted for the background load only.
	RequestBytes int64   `json:"request_bytes,omitempty"`
	Failed       int     `json:"failed,omitempty"`
	Requests     int     `json:"requests,omitempty"`
	Seconds      float64 `json:"seconds"`
	PerSecond    float64 `json:"tasks_per_second"`
	AckP50       float64 `json:"ack_p50_ms,omitempty"`
	AckP99       float64 `json:"ack_p99_ms,omitempty"`
	// PayloadBytes is the payload bytes of all the tasks sent.
	PayloadBytes int64 `json:"payload_bytes,omitempty"`
	// CreatedAfterDue counts tasks acknowledged only after their due
	// time: their lateness includes the wait for the create.
	CreatedAfterDue int    `json:"created_after_due,omitempty"`
	FirstError      string `json:"first_error,omitempty"`
}

type deliveryReport struct {
	Delivered    int     `json:"delivered"`
	Seconds      float64 `json:"seconds"` // first to last delivery
	PerSecond    float64 `json:"per_second"`
	LatenessP50  float64 `json:"lateness_p50_ms"`
	LatenessP99  float64 `json:"lateness_p99_ms"`
	LatenessP999 float64 `json:"lateness_p999_ms"`
	LatenessMax  float64 `json:"lateness_max_ms"`
	// LongestPause is the longest time between two deliveries: with tasks
	// due steadily, the outage a leader failover caused.
	LongestPause     float64   `json:"longest_pause_ms"`
	LongestPauseFrom time.Time `json:"longest_pause_from"`
	// PullErrors counts lease and ack requests that failed (--pull).
	PullErrors int64 `json:"pull_errors,omitempty"`
}

// serverReport is what the leaders' /metrics said about the run: of the
// one leader, or added up over the nodes that lead a group (Leader lists
// them, comma-separated).
type serverReport struct {
	Leader string `json:"leader"`
	// FireLateness quantiles are upper bounds: the histogram bucket the
	// quantile falls in, in milliseconds.
	FireLatenessP50  float64 `json:"fire_lateness_p50_ms_at_most"`
	FireLatenessP99  float64 `json:"fire_lateness_p99_ms_at_most"`
	FireLatenessP999 float64 `json:"fire_lateness_p999_ms_at_most"`
	Fired            float64 `json:"fired"`
	// The leader's heap and wheel at the end of the run, and once every
	// create was acknowledged (before the first task fell due).
	End         memoryReport  `json:"end"`
	AfterCreate *memoryReport `json:"after_create,omitempty"`
}

type memoryReport struct {
	// HeapLiveBytes is the heap the last GC found live.
	HeapLiveBytes  float64 `json:"heap_live_bytes"`
	HeapInuseBytes float64 `json:"heap_inuse_bytes"`
	WheelTasks     float64 `json:"wheel_tasks"`
}

func (m *metricsSample) memory() memoryReport {
	return memoryReport{
		HeapLiveBytes:  m.values["go_gc_heap_live_bytes"],
		HeapInuseBytes: m.values["go_memstats_heap_inuse_bytes"],
		WheelTasks:     m.values["hourglass_wheel_tasks"],
	}
}

func (c benchConfig) describe() map[string]any {
	return map[string]any{
		"addrs": c.addrs, "tasks": c.tasks, "concurrency": c.concurrency, "batch": c.batch,
		"payload_bytes": c.payload, "due": c.due.String(), "spread": c.spread.String(),
		"pending": c.pending, "pending_spread": c.pendingSpread.String(),
		"pull": c.pull, "pullers": c.pullers, "lease_max": c.leaseMax, "sdk": c.sdk, "sdk_batch": c.sdkBatch, "sdk_requests": c.sdkInFlight, "sdk_linger": c.sdkLinger.String(),
	}
}

func (r *benchReport) print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	c := r.Config
	fmt.Fprintf(w, "hourglass bench: %d tasks, %d clients, batch %d, %d-byte payloads, due from +%s over %s",
		c["tasks"], c["concurrency"], c["batch"], c["payload_bytes"], c["due"], c["spread"])
	if c["pull"] == true {
		fmt.Fprintf(w, ", pulled by %d workers (up to %d tasks a lease)", c["pullers"], c["lease_max"])
	}
	if c["sdk"] == true {
		fmt.Fprintf(w, ", created through the SDK (calls batched up to %d a request, %d requests at once)", c["sdk_batch"], c["sdk_requests"])
	}
	if p := r.Pending; p != nil {
		fmt.Fprintf(w, ", %d background tasks", p.Tasks)
	}
	fmt.Fprintln(w)
	if p := r.Pending; p != nil {
		fmt.Fprintf(w, "background  %d tasks in %.1fs: %.0f tasks/s\n", p.Tasks, p.Seconds, p.PerSecond)
	}
	cr := r.Create
	fmt.Fprintf(w, "create      %d tasks in %.2fs: %.0f tasks/s; ack latency p50 %.2fms p99 %.2fms",
		cr.Tasks, cr.Seconds, cr.PerSecond, cr.AckP50, cr.AckP99)
	if cr.Requests > 0 { // not known of the SDK's
		fmt.Fprintf(w, " (%d requests)", cr.Requests)
	}
	fmt.Fprintln(w)
	if cr.Failed > 0 {
		fmt.Fprintf(w, "            %d tasks not created; first error: %s\n", cr.Failed, cr.FirstError)
	}
	if cr.CreatedAfterDue > 0 {
		fmt.Fprintf(w, "            warning: %d tasks were acknowledged after their due time (raise --due)\n", cr.CreatedAfterDue)
	}
	d := r.Delivery
	verb := "deliver"
	if c["pull"] == true {
		verb = "leased" // the lateness is when a worker had the task
	}
	fmt.Fprintf(w, "%-11s %d tasks in %.2fs: %.0f/s; lateness p50 %.2fms p99 %.2fms p99.9 %.2fms max %.2fms; longest pause %.0fms (from %s)\n",
		verb, d.Delivered, d.Seconds, d.PerSecond, d.LatenessP50, d.LatenessP99, d.LatenessP999, d.LatenessMax, d.LongestPause, d.LongestPauseFrom.Format("15:04:05.000"))
	if d.PullErrors > 0 {
		fmt.Fprintf(w, "            %d lease or ack requests failed\n", d.PullErrors)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "leader      %s: fire lateness p50 ≤ %s p99 ≤ %s p99.9 ≤ %s (%.0f fired)\n",
			s.Leader, bound(s.FireLatenessP50), bound(s.FireLatenessP99), bound(s.FireLatenessP999), s.Fired)
		if m := s.AfterCreate; m != nil {
			fmt.Fprintf(w, "            after the creates: %s\n", m)
		}
		fmt.Fprintf(w, "            at the end: %s\n", s.End)
	}
	if u := r.CPU; u != nil {
		fmt.Fprintf(w, "server cpu  %d nodes: creates %.2fs, %.1fµs a task; whole run %.2fs, %.1fµs a task\n",
			u.Nodes, u.CreateSeconds, u.CreateMicrosEach, u.RunSeconds, u.RunMicrosEach)
	}
	v := r.Verdict
	status := "PASS"
	if !v.ok() {
		status = "FAIL"
	}
	_, err := fmt.Fprintf(w, "verdict     %s: %d lost, %d early, %d duplicate (%d acknowledged, %d delivered, %d unacknowledged delivered)\n",
		status, v.Lost, v.Early, v.Duplicates, v.Acknowledged, v.Delivered, v.Unacknowledged)
	return err
}

func (m memoryReport) String() string {
	return fmt.Sprintf("live heap %.1f MiB (in use %.1f MiB), %.0f tasks in the wheel", m.HeapLiveBytes/(1<<20), m.HeapInuseBytes/(1<<20), m.WheelTasks)
}

func bound(msec float64) string {
	return strconv.FormatFloat(msec, 'f', -1, 64) + "ms"
}

// metricsSample is one scrape of the metrics the report needs.
type metricsSample struct {
	leader  string
	buckets map[float64]float64 // fire lateness: upper bound (s) → count
	values  map[string]float64
}

// scrape reads the /metrics of every node that leads a group (the one
// leader of a single-group cluster) and adds them up; nil if there is
// none to read.
func (b *benchRun) scrape(ctx context.Context) *metricsSample {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var leaders []string
	for _, c := range b.clients {
		info, err := c.Cluster(ctx)
		if err != nil {
			continue
		}
		seen := map[string]bool{}
		for _, g := range info.Groups {
			if g.Leader != nil && g.Leader.HTTPAddr != "" {
				seen[g.Leader.HTTPAddr] = true
			}
		}
		if len(seen) == 0 && info.Leader != nil {
			seen[info.Leader.HTTPAddr] = true
		}
		for addr := range seen {
			leaders = append(leaders, addr)
		}
		break
	}
	if len(leaders) == 0 {
		return nil
	}
	slices.Sort(leaders)
	m := &metricsSample{leader: strings.Join(leaders, ","), buckets: map[float64]float64{}, values: map[string]float64{}}
	for _, leader := range leaders {
		if !m.add(ctx, leader) {
			return nil
		}
	}
	return m
}

// add adds the /metrics of the node at addr to m.
func (m *metricsSample) add(ctx context.Context, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		// The series of every group, and of every leading node, add up.
		name = groupLabel.ReplaceAllString(name, "")
		name = strings.Replace(name, ",}", "}", 1)
		name = strings.TrimSuffix(name, "{}")
		if le, ok := strings.CutPrefix(name, `hourglass_fire_lateness_seconds_bucket{le="`); ok {
			if bound, err := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64); err == nil {
				m.buckets[bound] += v
			}
			continue
		}
		m.values[name] += v
	}
	return sc.Err() == nil
}

// groupLabel matches the group label of a series (and its comma).
var groupLabel = regexp.MustCompile(`group="\d+",?`)

// serverReport compares the leader's metrics now with before the creates.
func (b *benchRun) serverReport(ctx context.Context, before, afterCreate *metricsSample) *serverReport {
	after := b.scrape(ctx)
	if after == nil {
		return nil
	}
	r := &serverReport{Leader: after.leader, End: after.memory()}
	if afterCreate != nil {
		m := afterCreate.memory()
		r.AfterCreate = &m
	}
	// Quantiles over the fires of this run: the buckets' growth, when the
	// leader did not change meanwhile.
	delta := after.buckets
	if before != nil && before.leader == after.leader {
		delta = map[float64]float64{}
		for le, n := range after.buckets {
			delta[le] = n - before.buckets[le]
		}
	}
	r.Fired = delta[math.Inf(1)]
	r.FireLatenessP50 = bucketQuantile(delta, 0.50)
	r.FireLatenessP99 = bucketQuantile(delta, 0.99)
	r.FireLatenessP999 = bucketQuantile(delta, 0.999)
	return r
}

// bucketQuantile is the upper bound, in milliseconds, of the cumulative
// histogram bucket that holds quantile q (the largest finite bound when
// it lies beyond).
func bucketQuantile(cumulative map[float64]float64, q float64) float64 {
	bounds := make([]float64, 0, len(cumulative))
	for le := range cumulative {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	total := cumulative[math.Inf(1)]
	if total == 0 {
		return 0
	}
	last := 0.0
	for _, le := range bounds {
		if math.IsInf(le, 1) {
			break
		}
		last = le * 1000
		if cumulative[le] >= q*total {
			break
		}
	}
	return last
}
