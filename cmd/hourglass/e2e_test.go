package main

// End-to-end tests: they build the real binary, run it as a process on
// loopback ports, and talk to it over HTTP as a user would.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

var binary string

func TestMain(m *testing.M) {
	// The CLI run in-process (cli) checks backups by running this very
	// executable as "check-state FILE": be that command, not the tests.
	if len(os.Args) == 3 && os.Args[1] == "check-state" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	dir, err := os.MkdirTemp("", "hourglass-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "hourglass")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build hourglass:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running hourglass process.
type server struct {
	t        *testing.T
	cmd      *exec.Cmd
	dataDir  string
	raftAddr string
	logPath  string
	addr     string // http://host:port or https://host:port
	exited   chan struct{}
	// clientTLS is how tests reach a server with --tls-cert.
	clientTLS *tls.Config
}

// client returns a client for the server's API.
func (s *server) client(token string) *client.Client {
	if s.clientTLS != nil {
		return client.New(s.addr, token, client.WithTLS(s.clientTLS))
	}
	return client.New(s.addr, token)
}

// handedOut holds the ports freeAddr returned in this test binary: each
// is returned once. A port is free when freeAddr checks it, but a node
// binds it only when launched, and a cluster takes all its nodes' ports
// first: two picks at random could be the same port, and the second
// node to launch would find it taken. (Seen once in CI: a node of a
// three-node cluster failed to start, its gossip port "already in use";
// a repeated pick is the one cause in this process we know of.)
var handedOut = struct {
	sync.Mutex
	ports map[string]bool
}{ports: map[string]bool{}}

// freeAddr returns a loopback address with a port nobody listens on now,
// and that no earlier call returned.
func freeAddr(t *testing.T) string {
	t.Helper()
	// Below the kernel's ephemeral range: the ports handed out for port 0,
	// to this process or any other, come from that range, so a port found
	// free there and released could be taken again before the server
	// binds it (seen: gossip's "bind: address already in use" while other
	// tests ran). Free for TCP and UDP both: gossip listens on both.
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				low = n
			}
		}
	}
	for range 1000 {
		addr := fmt.Sprintf("127.0.0.1:%d", 10000+rand.IntN(low-10000))
		handedOut.Lock()
		taken := handedOut.ports[addr]
		handedOut.ports[addr] = true
		handedOut.Unlock()
		if taken {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return addr
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

var listeningLine = regexp.MustCompile(`msg="hourglass listening".* url=(\S+)`)

// startServer runs the binary on dataDir and waits until /readyz says so.
func startServer(t *testing.T, dataDir, raftAddr string, extra ...string) *server {
	t.Helper()
	s := launchServer(t, dataDir, raftAddr, append([]string{"--gossip-addr", "127.0.0.1:0"}, extra...)...)
	s.waitReady()
	return s
}

// launchServer runs the binary on dataDir and waits until it listens.
func launchServer(t *testing.T, dataDir, raftAddr string, extra ...string) *server {
	t.Helper()
	s := &server{t: t, dataDir: dataDir, raftAddr: raftAddr, exited: make(chan struct{})}
	s.logPath = filepath.Join(t.TempDir(), "server.log")
	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"server", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--raft-addr", raftAddr}, extra...)
	s.cmd = exec.Command(binary, args...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = logFile
	// The server dies with the test process, even if that is killed.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() { s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(s.kill)
	select {
	case a := <-addr:
		s.addr = a
	case <-s.exited:
		t.Fatalf("server exited before it was ready:\n%s", s.logTail())
	case <-time.After(20 * time.Second):
		t.Fatalf("server not listening after 20s:\n%s", s.logTail())
	}
	return s
}

func (s *server) waitReady() {
	s.t.Helper()
	c := s.client("")
	deadline := time.Now().Add(30 * time.Second)
	for c.Ready(context.Background()) != nil {
		select {
		case <-s.exited:
			s.t.Fatalf("server exited:\n%s", s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("server not ready after 30s:\n%s", s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) kill() {
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
	}
}

// terminate stops the server with SIGTERM, as an orchestrator would, and
// waits for it to exit.
func (s *server) terminate(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("server still running 20s after SIGTERM:\n%s", s.logTail())
	}
}

func (s *server) logTail() string {
	data, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receiver is the webhook target: it records every delivery with the time
// it arrived.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  map[string][]arrival
	bad  []string
	seen int
}

type arrival struct {
	at      time.Time
	attempt int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: map[string][]arrival{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		now := time.Now()
		io.Copy(io.Discard, req.Body)
		id := req.Header.Get("Hourglass-Task-Id")
		attempt, err := strconv.Atoi(req.Header.Get("Hourglass-Attempt"))
		r.mu.Lock()
		if id == "" || err != nil || req.Header.Get("Hourglass-Fencing-Token") == "" {
			r.bad = append(r.bad, fmt.Sprintf("delivery without Hourglass headers: %v", req.Header))
		}
		r.got[id] = append(r.got[id], arrival{at: now, attempt: attempt})
		r.seen++
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) count() (ids, deliveries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got), r.seen
}

func (r *receiver) arrivals(id string) []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[id])
}

// createAll creates tasks with 32 concurrent single requests.
func createAll(t *testing.T, c *client.Client, reqs []client.CreateTaskRequest) []*client.Task {
	t.Helper()
	out := make([]*client.Task, len(reqs))
	var wg sync.WaitGroup
	errs := make(chan error, len(reqs))
	next := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				task, err := c.CreateTask(context.Background(), reqs[i])
				if err != nil {
					errs <- err
					continue
				}
				out[i] = task
			}
		}()
	}
	for i := range reqs {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
	return out
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// TestEndToEnd creates 1,000 tasks due over the next 3 seconds through the
// API, cancels 50 of them, and checks that every other one is delivered
// once, never before its execute_at, and ends succeeded; it logs lateness.
func TestEndToEnd(t *testing.T) {
	srv := startServer(t, t.TempDir(), freeAddr(t))
	recv := newReceiver(t)
	c := client.New(srv.addr, "")
	start := time.Now().Add(4 * time.Second) // time for the creates themselves, even on a slow machine
	reqs := make([]client.CreateTaskRequest, 1000)
	for i := range reqs {
		reqs[i] = client.CreateTaskRequest{
			ID:        fmt.Sprintf("e2e-%04d", i),
			ExecuteAt: start.Add(time.Duration(i) * 3 * time.Millisecond).UTC().Format(time.RFC3339Nano),
			Payload:   json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
			Target:    &client.Target{URL: recv.URL + "/hook"},
		}
	}
	tasks := createAll(t, c, reqs)
	if late := time.Since(start); late > 0 {
		t.Fatalf("creating took until %v after the first task was due; the test needs a faster machine", late)
	}
	// Cancel every 20th task of the last two thirds (due at least 1s out).
	cancelled := map[string]bool{}
	for i := 340; i < len(tasks); i += 20 {
		if _, err := c.CancelTask(context.Background(), tasks[i].ID); err != nil {
			t.Fatalf("cancel %s: %v", tasks[i].ID, err)
		}
		cancelled[tasks[i].ID] = true
	}
	want := len(tasks) - len(cancelled)
	waitFor(t, 30*time.Second, fmt.Sprintf("%d deliveries", want), func() bool {
		ids, _ := recv.count()
		return ids >= want
	})
	var lateness []time.Duration
	for _, task := range tasks {
		got := recv.arrivals(task.ID)
		if cancelled[task.ID] {
			if len(got) != 0 {
				t.Errorf("cancelled task %s was delivered", task.ID)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("task %s delivered %d times", task.ID, len(got))
			continue
		}
		if got[0].at.Before(task.ExecuteAt) {
			t.Errorf("task %s delivered %v before its execute_at", task.ID, task.ExecuteAt.Sub(got[0].at))
		}
		lateness = append(lateness, got[0].at.Sub(task.ExecuteAt))
	}
	if len(recv.bad) > 0 {
		t.Fatalf("%d bad deliveries, first: %s", len(recv.bad), recv.bad[0])
	}
	slices.Sort(lateness)
	t.Logf("lateness over %d deliveries: p50 %v, p99 %v, max %v", len(lateness),
		percentile(lateness, 0.50), percentile(lateness, 0.99), lateness[len(lateness)-1])
	// Every delivered task ends succeeded (outcomes are recorded in
	// batches just after delivery).
	for _, task := range tasks {
		wantState := "succeeded"
		if cancelled[task.ID] {
			wantState = "cancelled"
		}
		waitFor(t, 10*time.Second, task.ID+" "+wantState, func() bool {
			got, err := c.GetTask(context.Background(), task.ID)
			return err == nil && got.State == wantState
		})
	}
	// Repeating a cancelled task's create is a repeat; cancelling a
	// finished task is a conflict.
	if _, err := c.CancelTask(context.Background(), tasks[0].ID); err == nil || !strings.Contains(err.Error(), "conflict") {
		t.Fatalf("cancel of a succeeded task: %v", err)
	}
}

// TestKill9 kills the server with 10,000 tasks scheduled, some of which
// fall due while it is down, restarts it on the same data directory, and
// checks that every task is delivered, none early, repeats only as later
// attempts (see verdict), and all end succeeded.
func TestKill9(t *testing.T) {
	dataDir, raftAddr := t.TempDir(), freeAddr(t)
	srv := startServer(t, dataDir, raftAddr)
	recv := newCheckedReceiver(t)
	const n = 10_000
	due := createSpread(t, recv.client(srv.addr), "k9", n, time.Now().Add(2*time.Second), 500*time.Microsecond, recv.URL)
	// Let deliveries start, then kill -9 mid-stream.
	waitFor(t, 20*time.Second, "first deliveries", func() bool { return recv.count() >= 2000 })
	oldTerm := recv.maxTerm()
	srv.kill()
	killed := time.Now()
	time.Sleep(1500 * time.Millisecond) // more tasks fall due while it is down
	srv = startServer(t, dataDir, raftAddr)
	c := client.New(srv.addr, "")
	waitFor(t, 60*time.Second, "every task delivered", func() bool { return recv.count() >= n })
	recv.verdict(t, "kill -9 and restart", due, nil, killed, oldTerm)
	waitFor(t, 30*time.Second, "every task succeeded", func() bool {
		count, token := 0, ""
		for {
			page, err := c.ListTasks(context.Background(), client.ListOptions{State: "succeeded", Limit: 1000, PageToken: token})
			if err != nil {
				return false
			}
			count += len(page.Tasks)
			if token = page.NextPageToken; token == "" {
				return count == n
			}
		}
	})
}

// TestCLI drives the task subcommands against a running server.
func TestCLI(t *testing.T) {
	srv := startServer(t, t.TempDir(), freeAddr(t))
	hg := func(args ...string) (string, error) {
		out, err := exec.Command(binary, append(args, "--addr", srv.addr)...).CombinedOutput()
		return string(out), err
	}
	out, err := hg("task", "create", "--id", "cli-1", "--delay", "1h", "--url", "http://127.0.0.1:9/x", "--payload", `{"a":1}`, "--header", "X-Trace=7")
	if err != nil || !strings.Contains(out, "state:       scheduled") {
		t.Fatalf("create: %v\n%s", err, out)
	}
	out, err = hg("task", "get", "cli-1", "--json")
	var task client.Task
	if err != nil || json.Unmarshal([]byte(out), &task) != nil || task.Target.Headers["X-Trace"] != "7" {
		t.Fatalf("get: %v\n%s", err, out)
	}
	out, err = hg("task", "list", "--state", "scheduled")
	if err != nil || !strings.Contains(out, "cli-1") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = hg("task", "cancel", "cli-1")
	if err != nil || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: %v\n%s", err, out)
	}
	out, err = hg("task", "create", "--delay", "soon", "--url", "http://x/")
	if err == nil || !strings.Contains(out, "delay: not a duration") {
		t.Fatalf("bad create: %v\n%s", err, out)
	}
	if code := err.(*exec.ExitError).ExitCode(); code != 1 {
		t.Fatalf("bad create exited %d, want 1", code)
	}
	bad := exec.Command(binary, "server", "--data-dir", t.TempDir())
	bad.Env = append(os.Environ(), "HOURGLASS_WORKERS=many")
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "HOURGLASS_WORKERS") {
		t.Fatalf("server with a bad HOURGLASS_WORKERS: %v\n%s", err, out)
	}
	out, err = hg("task", "frobnicate")
	if err == nil || err.(*exec.ExitError).ExitCode() != 2 {
		t.Fatalf("unknown subcommand: %v\n%s", err, out)
	}
	// A task without --url is a pull task; its queue shows up, and can be
	// paused and resumed.
	out, err = hg("task", "create", "--queue", "jobs", "--delay", "1h", "--max-lateness", "5m")
	if err != nil || !strings.Contains(out, "pull workers of queue jobs") {
		t.Fatalf("pull create: %v\n%s", err, out)
	}
	out, err = hg("queue", "pause", "jobs")
	if err != nil || !strings.Contains(out, "PAUSED") || !strings.Contains(out, "scheduled=1") {
		t.Fatalf("queue pause: %v\n%s", err, out)
	}
	out, err = hg("queue", "list")
	if err != nil || !strings.Contains(out, "jobs") || !strings.Contains(out, "PAUSED") {
		t.Fatalf("queue list: %v\n%s", err, out)
	}
	out, err = hg("queue", "redrive", "jobs")
	if err != nil || !strings.Contains(out, "redriven: 0") {
		t.Fatalf("queue redrive: %v\n%s", err, out)
	}
	out, err = hg("queue", "get", "nosuch")
	if err == nil || !strings.Contains(out, "no queue") {
		t.Fatalf("queue get of an unknown queue: %v\n%s", err, out)
	}
}

// TestWalkthrough follows the README: a receiver from "hourglass receive",
// a task created with plain JSON over HTTP, its delivery printed by the
// receiver, and its final state read back.
func TestWalkthrough(t *testing.T) {
	srv := startServer(t, t.TempDir(), freeAddr(t))
	recv := exec.Command(binary, "receive", "--addr", "127.0.0.1:0")
	recv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := recv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := recv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Process.Kill(); recv.Wait() })
	banner, err := bufio.NewReader(stderr).ReadString('\n')
	m := regexp.MustCompile(`receiving on (http://\S+/)`).FindStringSubmatch(banner)
	if err != nil || m == nil {
		t.Fatalf("receiver banner %q: %v", banner, err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	body := `{"id":"reminder-1","delay":"2s","payload":{"user":42,"text":"stand up"},"target":{"url":"` + m[1] + `remind"}}`
	resp, err := http.Post(srv.addr+"/v1/tasks", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: HTTP %d", resp.StatusCode)
	}
	select {
	case line := <-lines:
		for _, want := range []string{"POST /remind", "Task-Id=reminder-1", "Attempt=1", `body={"user":42,"text":"stand up"}`} {
			if !strings.Contains(line, want) {
				t.Fatalf("receiver printed %q, missing %q", line, want)
			}
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery printed within 15s")
	}
	c := client.New(srv.addr, "")
	waitFor(t, 10*time.Second, "reminder-1 succeeded", func() bool {
		task, err := c.GetTask(context.Background(), "reminder-1")
		return err == nil && task.State == "succeeded" && task.Attempts == 1
	})
}
