package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
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
