package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/hourglass-scheduler/hourglass/client"
)

// runBenchJSON runs hourglass bench with --json and decodes its report;
// it returns the exit error too (1 when the checker failed the run).
func runBenchJSON(t *testing.T, args ...string) (*benchReport, error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"bench", "--json"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var rep benchReport
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		t.Fatalf("bench %v: %v; report: %v\n%s\n%s", args, err, jerr, out, stderr.String())
	}
	return &rep, err
}

// TestBench runs the load generator against a real server: every task it
// creates comes back to its receiver, on time, once; the leader's metrics
// saw them fired.
func TestBench(t *testing.T) {
	srv := startServer(t, t.TempDir(), freeAddr(t))
	addr := strings.TrimPrefix(srv.addr, "http://") // host:port works too
	rep, err := runBenchJSON(t, "--addr", addr, "--tasks", "2000", "--concurrency", "8", "--batch", "10",
		"--due", "3s", "--spread", "500ms", "--pending", "3000", "--payload", "100")
	if err != nil {
		t.Fatalf("bench failed: %v", err)
	}
	v := rep.Verdict
	if v.Acknowledged != 2000 || v.Delivered != 2000 || v.Lost != 0 || v.Early != 0 || v.Malformed != 0 {
		t.Fatalf("verdict %+v", v)
	}
	if rep.Create.Tasks != 2000 || rep.Create.Requests != 200 || rep.Create.PayloadBytes != 2000*100 {
		t.Fatalf("create report %+v", rep.Create)
	}
	if rep.Pending == nil || rep.Pending.Tasks != 3000 || rep.Pending.RequestBytes < 3000*100 {
		t.Fatalf("background report %+v", rep.Pending)
	}
	if d := rep.Delivery; d.Delivered != 2000 || d.LatenessP50 < 0 || d.LatenessMax < d.LatenessP99 {
		t.Fatalf("delivery report %+v", d)
	}
	if s := rep.Server; s == nil || s.Fired != 2000 || s.AfterCreate == nil || s.AfterCreate.WheelTasks < 2000 {
		t.Fatalf("server report %+v", s)
	}
	t.Logf("bench: %.0f creates/s, delivery lateness p99 %.1fms", rep.Create.PerSecond, rep.Delivery.LatenessP99)
}

// TestBenchCountsLost: deliveries that never reach the receiver are
// counted lost, and the run fails.
func TestBenchCountsLost(t *testing.T) {
	srv := startServer(t, t.TempDir(), freeAddr(t))
	rep, err := runBenchJSON(t, "--addr", srv.addr, "--tasks", "50", "--due", "1s", "--spread", "0",
		"--receiver-url", "http://127.0.0.1:9", "--wait", "1s")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("bench with an unreachable receiver: %v, want exit status 1", err)
	}
	if v := rep.Verdict; v.Acknowledged != 50 || v.Lost != 50 || v.Delivered != 0 {
		t.Fatalf("verdict %+v, want 50 lost", v)
	}
}

// TestBenchPull runs the load generator's pull mode: tasks without a
// target, leased by its workers and acknowledged in batches; every one is
// leased once, none before its time, and the queue ends with all of them
// succeeded.
func TestBenchPull(t *testing.T) {
	srv := startServer(t, t.TempDir(), freeAddr(t))
	rep, err := runBenchJSON(t, "--addr", srv.addr, "--pull", "--pullers", "3", "--lease-max", "50", "--tasks", "2000",
		"--concurrency", "8", "--batch", "10", "--due", "3s", "--spread", "500ms", "--pending", "500")
	if err != nil {
		t.Fatalf("bench --pull failed: %v", err)
	}
	if v := rep.Verdict; v.Acknowledged != 2000 || v.Delivered != 2000 || v.Duplicates != 0 || v.Lost != 0 || v.Early != 0 {
		t.Fatalf("verdict %+v", v)
	}
	if s := rep.Server; s == nil || s.Fired != 2000 {
		t.Fatalf("server report %+v: the leases should count as fired", s)
	}
	queues, err := client.New(srv.addr, "").ListQueues(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var succeeded, pending uint64
	for _, q := range queues {
		if strings.HasPrefix(q.Name, "bench-") && q.Name != "bench-pending" {
			succeeded += q.Tasks["succeeded"]
		}
		if q.Name == "bench-pending" {
			pending = q.Tasks["scheduled"]
		}
	}
	if succeeded != 2000 || pending != 500 {
		t.Fatalf("queues after the run: %d succeeded (want 2000), %d background scheduled (want 500)", succeeded, pending)
	}
	// /metrics shows the same counts, the raft view and the acks.
	resp, err := http.Get(srv.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`hourglass_tasks{queue="bench-pending",state="scheduled"} 500`,
		`hourglass_raft_leader{group="1"} 1`,
		`hourglass_attempts_total{group="1",outcome="succeeded",queue="bench-`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	t.Logf("bench --pull: lateness p99 %.1fms at %.0f/s", rep.Delivery.LatenessP99, rep.Delivery.PerSecond)
}
