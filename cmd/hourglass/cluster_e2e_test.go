package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/internal/history"
)

// clusterNode is one process of a three-node cluster on loopback.
type clusterNode struct {
	id, dataDir, raftAddr, gossipAddr string
	extra                             []string
	clientTLS                         *tls.Config
	srv                               *server

	mu       sync.Mutex // guards httpAddr, which changes on a restart
	httpAddr string
}

// addr is the node's current HTTP address, safe to read while it restarts.
func (n *clusterNode) addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.httpAddr
}

// startCluster launches three nodes with identical cluster flags
// (--bootstrap-expect 3 and every node's gossip address in --join), plus
// extra flags, and waits until all three are ready.
func startCluster(t *testing.T, extra ...string) []*clusterNode {
	t.Helper()
	if !slices.Contains(extra, "--groups") {
		// The scenarios written for one group name "the leader".
		extra = append([]string{"--groups", "1"}, extra...)
	}
	return startClusterWith(t, nil, func(string) []string { return extra })
}

// startClusterWith starts three nodes like startCluster, with the flags
// flagsOf gives each node id, reaching them with clientTLS.
func startClusterWith(t *testing.T, clientTLS *tls.Config, flagsOf func(id string) []string) []*clusterNode {
	t.Helper()
	return startClusterOf(t, 3, clientTLS, flagsOf)
}

// startClusterOf starts count nodes like startClusterWith.
func startClusterOf(t *testing.T, count int, clientTLS *tls.Config, flagsOf func(id string) []string) []*clusterNode {
	t.Helper()
	nodes := make([]*clusterNode, count)
	var gossip []string
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		nodes[i] = &clusterNode{id: id, dataDir: t.TempDir(), raftAddr: freeAddr(t), gossipAddr: freeAddr(t), extra: flagsOf(id), clientTLS: clientTLS}
		gossip = append(gossip, nodes[i].gossipAddr)
	}
	for _, n := range nodes {
		n.launch(t, gossip)
	}
	for _, n := range nodes {
		n.srv.waitReady()
	}
	return nodes
}

func (n *clusterNode) launch(t *testing.T, join []string) {
	t.Helper()
	n.srv = launchServer(t, n.dataDir, n.raftAddr, append([]string{"--node-id", n.id, "--gossip-addr", n.gossipAddr,
		"--join", strings.Join(join, ","), "--bootstrap-expect", strconv.Itoa(len(join))}, n.extra...)...)
	n.srv.clientTLS = n.clientTLS
	n.mu.Lock()
	n.httpAddr = n.srv.addr
	n.mu.Unlock()
}

// restart starts a stopped node again, with every node's gossip address in
// --join, and waits until it listens.
func (n *clusterNode) restart(t *testing.T, nodes []*clusterNode) {
	t.Helper()
	var seeds []string
	for _, other := range nodes {
		seeds = append(seeds, other.gossipAddr)
	}
	n.launch(t, seeds)
}

// rejoin restarts a node and waits until it is ready.
func (n *clusterNode) rejoin(t *testing.T, nodes []*clusterNode) {
	t.Helper()
	n.restart(t, nodes)
	n.srv.waitReady()
}

// waitHasTask waits until n's own copy of the state holds task id.
func (n *clusterNode) waitHasTask(t *testing.T, id string) {
	t.Helper()
	waitFor(t, 30*time.Second, n.id+" holding task "+id, func() bool {
		resp, err := http.Get(n.addr() + "/v1/tasks/" + id + "?stale=true")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// leaderAndFollower returns the node that leads and one that does not.
func leaderAndFollower(t *testing.T, nodes []*clusterNode) (leader, follower *clusterNode) {
	t.Helper()
	leader = leaderOf(t, nodes, nodes[0])
	for _, n := range nodes {
		if n != leader {
			return leader, n
		}
	}
	t.Fatal("no follower")
	return nil, nil
}

// leaderOf asks a node which node leads.
func leaderOf(t *testing.T, nodes []*clusterNode, ask *clusterNode) *clusterNode {
	t.Helper()
	var leader *clusterNode
	waitFor(t, 15*time.Second, "a leader", func() bool {
		info, err := ask.srv.client("").Cluster(context.Background())
		if err != nil || info.Leader == nil {
			return false
		}
		for _, n := range nodes {
			if n.id == info.Leader.ID {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// termOf reads the raft term out of a fencing token ("term.index").
func termOf(token string) int {
	term, _, _ := strings.Cut(token, ".")
	v, _ := strconv.Atoi(term)
	return v
}

// checkedReceiver records every delivery with its attempt and the raft
// term of its fencing token, for the invariant checks.
type checkedReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string][]checkedDelivery
	// hist records the deliveries, and the task calls of the clients
	// made with client (internal/history): verdict checks it is
	// linearizable.
	hist *history.Recorder
}

// client is a client of the node at addr whose task calls go into the
// history that verdict checks.
func (r *checkedReceiver) client(addr string) *client.Client {
	return client.New(addr, "", client.WithTransport(r.hist.Transport))
}

type checkedDelivery struct {
	at      time.Time
	attempt int
	term    int
}

func newCheckedReceiver(t *testing.T) *checkedReceiver {
	r := &checkedReceiver{got: map[string][]checkedDelivery{}, hist: history.NewRecorder()}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		now := time.Now()
		attempt, _ := strconv.Atoi(req.Header.Get("Hourglass-Attempt"))
		r.mu.Lock()
		id := req.Header.Get("Hourglass-Task-Id")
		r.got[id] = append(r.got[id], checkedDelivery{now, attempt, termOf(req.Header.Get("Hourglass-Fencing-Token"))})
		r.mu.Unlock()
		r.hist.Delivered(id, now)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *checkedReceiver) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }

func (r *checkedReceiver) maxTerm() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	term := 0
	for _, ds := range r.got {
		for _, d := range ds {
			term = max(term, d.term)
		}
	}
	return term
}

// createSpread creates n tasks through c, due every step from start, in
// batches, and returns their due times.
func createSpread(t *testing.T, c *client.Client, prefix string, n int, start time.Time, step time.Duration, url string) map[string]time.Time {
	t.Helper()
	due := map[string]time.Time{}
	createRange(t, c, prefix, 0, n, start, step, url, due)
	return due
}

// createRange creates tasks prefix-from to prefix-(to-1) through c, the
// k-th due at start+k*step, in batches, and adds their due times to due.
func createRange(t *testing.T, c *client.Client, prefix string, from, to int, start time.Time, step time.Duration, url string, due map[string]time.Time) {
	t.Helper()
	for b := from; b < to; b += 500 {
		var batch []client.CreateTaskRequest
		for k := b; k < min(to, b+500); k++ {
			id := fmt.Sprintf("%s-%04d", prefix, k)
			at := start.Add(time.Duration(k) * step)
			due[id] = at.Round(0)
			batch = append(batch, client.CreateTaskRequest{ID: id, ExecuteAt: at.UTC().Format(time.RFC3339Nano), Target: &client.Target{URL: url}})
		}
		// A group whose leadership moves just then (the placement hands
		// it to its preferred node) answers its items "unavailable":
		// those are sent again, as the answer says to, with the same ids.
		for attempt := 0; len(batch) > 0; attempt++ {
			results, err := c.CreateTasks(context.Background(), batch)
			if err != nil {
				t.Fatal(err)
			}
			var again []client.CreateTaskRequest
			for i, r := range results {
				switch {
				case r.Error == nil:
				case r.Error.Code == client.CodeUnavailable && attempt < 50:
					again = append(again, batch[i])
				default:
					t.Fatalf("create %s: %+v", batch[i].ID, r.Error)
				}
			}
			if batch = again; len(batch) > 0 {
				time.Sleep(100 * time.Millisecond) // a leadership move takes a moment
			}
		}
	}
}

// cancelAfterFailover cancels tasks prefix-from to prefix-(to-1) through
// c, retrying through the election, and returns those whose cancel
// returned 200 (which must never be delivered).
func cancelAfterFailover(t *testing.T, c *client.Client, prefix string, from, to int) map[string]bool {
	t.Helper()
	cancelled := map[string]bool{}
	for k := from; k < to; k++ {
		id := fmt.Sprintf("%s-%04d", prefix, k)
		for attempt := 0; attempt < 50; attempt++ {
			_, err := c.CancelTask(context.Background(), id)
			if err == nil {
				cancelled[id] = true
				break
			}
			if strings.Contains(err.Error(), "conflict") {
				break // already delivered or being delivered: fine
			}
			time.Sleep(100 * time.Millisecond) // 503 during the election
		}
	}
	if len(cancelled) == 0 {
		t.Fatal("no cancel succeeded after the failover")
	}
	return cancelled
}

// maxInFlight is how many deliveries a leader can have under way at once
// to the receiver, one host (the default --target-concurrency): the bound on stale deliveries when a leader is
// cut off with requests already sent.
const maxInFlight = 64

// verdict checks the invariants over what the receiver got: every task in
// due but not in cancelled delivered, none early, no cancelled one
// delivered, and each repeat a higher attempt than the deliveries before
// it, except a stale one: a request a cut-off leader had already under way,
// which carries an older fencing term (receivers drop it by the token), and
// of which there are at most maxInFlight. It logs the time from the fault
// until the first delivery of a term after oldTerm.
func (r *checkedReceiver) verdict(t *testing.T, scenario string, due map[string]time.Time, cancelled map[string]bool, fault time.Time, oldTerm int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	lost, early, repeats, stale, delivered := 0, 0, 0, 0, 0
	resumed := time.Duration(-1)
	for id, at := range due {
		ds := r.got[id]
		if cancelled[id] {
			if len(ds) > 0 {
				t.Errorf("%s: task %s was delivered after its cancel returned 200", scenario, id)
			}
			continue
		}
		if len(ds) == 0 {
			lost++
			continue
		}
		delivered++
		maxAttempt, maxTerm := 0, 0
		for i, d := range ds {
			if d.at.Before(at) {
				early++
			}
			if i > 0 {
				repeats++
				switch {
				case d.attempt > maxAttempt:
				case d.term < maxTerm:
					stale++ // fenced: an older leader's request, already under way
				default:
					t.Errorf("%s: task %s delivered with attempt %d (term %d) after attempt %d (term %d)",
						scenario, id, d.attempt, d.term, maxAttempt, maxTerm)
				}
			}
			maxAttempt, maxTerm = max(maxAttempt, d.attempt), max(maxTerm, d.term)
			if d.term > oldTerm && d.at.After(fault) && (resumed < 0 || d.at.Sub(fault) < resumed) {
				resumed = d.at.Sub(fault)
			}
		}
	}
	t.Logf("%s: %d acknowledged, %d cancelled, %d delivered, %d lost, %d early, %d repeats (%d stale, fenced); firing resumed %v after the fault",
		scenario, len(due), len(cancelled), delivered, lost, early, repeats, stale, resumed.Round(time.Millisecond))
	if lost > 0 || early > 0 || stale > maxInFlight {
		t.Fatalf("%s: %d lost, %d early, %d stale (at most %d may be in flight)", scenario, lost, early, stale, maxInFlight)
	}
	checkHistory(t, scenario, r.hist)
}

// checkHistory checks that the calls and deliveries hist recorded are
// linearizable (internal/history); if not, it names the tasks at fault
// and keeps porcupine's visualization of the history as an artifact.
func checkHistory(t *testing.T, scenario string, hist *history.Recorder) {
	t.Helper()
	if hist == nil {
		return
	}
	res, err := hist.Check(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: history of %d calls and deliveries checked: %s", scenario, res.Ops, res.Verdict)
	switch res.Verdict {
	case porcupine.Ok:
	case porcupine.Illegal:
		name := "history-" + strings.NewReplacer(" ", "-", ",", "", "(", "", ")", "").Replace(scenario) + ".html"
		saveArtifact(t, name, res.Visualization)
		t.Errorf("%s: the history is not linearizable for %d tasks (%s); open %s to see why",
			scenario, len(res.Bad), strings.Join(res.Bad[:min(10, len(res.Bad))], ", "), name)
	default:
		t.Errorf("%s: the linearizability check of %d operations ran out of time", scenario, res.Ops)
	}
}

// TestClusterLeaderKill kills the leader of a three-node cluster while it
// fires, cancels tasks through a survivor after, and checks the
// invariants (see verdict); then the killed node restarts, rejoins and
// catches up.
func TestClusterLeaderKill(t *testing.T) {
	nodes := startCluster(t)
	leader, follower := leaderAndFollower(t, nodes)
	// Created through a follower: every create is forwarded to the leader.
	const n = 3000
	recv, due, oldTerm, killed := killWhileFiring(t, leader, follower, "c", n, 2*time.Millisecond)

	// Cancel the last 100 through the survivor; those answered 200 must
	// never be delivered.
	cancelled := cancelAfterFailover(t, recv.client(follower.addr()), "c", n-cancelTail, n)
	waitFor(t, 60*time.Second, "every task delivered", func() bool { return recv.count() >= n-len(cancelled) })
	time.Sleep(500 * time.Millisecond) // let any late, wrong delivery show up
	recv.verdict(t, "leader kill", due, cancelled, killed, oldTerm)

	// The killed node restarts on its data, rejoins and catches up.
	leader.rejoin(t, nodes)
	leader.waitHasTask(t, fmt.Sprintf("c-%04d", n-1))
	info, err := client.New(leader.addr(), "").Cluster(context.Background())
	if err != nil || len(info.Nodes) != 3 {
		t.Fatalf("cluster after the restart: %+v %v", info, err)
	}
}

// TestClusterLeaderPause stops the leader (SIGSTOP) for 5 s while it fires,
// then lets it go on. The others elect a new leader and fire; the old one,
// on waking, must not deliver anything it had lined up before the pause.
func TestClusterLeaderPause(t *testing.T) {
	// One raft group, and three (one led by each node).
	for _, groups := range []string{"1", "3"} {
		t.Run("groups="+groups, func(t *testing.T) {
			nodes := startCluster(t, "--groups", groups)
			if groups != "1" {
				waitSpread(t, nodes, 3)
			}
			leader, other := leaderAndFollower(t, nodes)
			recv := newCheckedReceiver(t)
			due := createSpread(t, recv.client(other.srv.addr), "p", 3000, time.Now().Add(2*time.Second), 2*time.Millisecond, recv.URL)
			// Watched: due in an hour, cancelled during the pause through
			// another node, and read through the paused one meanwhile.
			watched := createSpread(t, recv.client(other.srv.addr), "w", 50, time.Now().Add(time.Hour), time.Millisecond, recv.URL)
			waitFor(t, 20*time.Second, "firing under way", func() bool { return recv.count() >= 500 })
			oldTerm := recv.maxTerm()
			paused := time.Now()
			if err := leader.srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			// A write forwarded to the paused leader gives up once the
			// others elect another, rather than wait for the sleeper.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			began := time.Now()
			_, err := recv.client(other.srv.addr).CreateTask(ctx, client.CreateTaskRequest{ID: "during-pause", Delay: "1h", Target: &client.Target{URL: recv.URL}})
			cancel()
			if waited := time.Since(began); waited > 20*time.Second {
				t.Fatalf("a create through %s, forwarded to the paused leader, waited %v: %v", other.id, waited, err)
			} else {
				t.Logf("a create through %s while the leader sleeps: %v after %v", other.id, err, waited.Round(time.Millisecond))
			}
			// Once every group has a leader on the other nodes.
			waitFor(t, 30*time.Second, "new leaders", func() bool {
				info, err := client.New(other.srv.addr, "").Cluster(context.Background())
				if err != nil {
					return false
				}
				for _, g := range info.Groups {
					if g.Leader == nil || g.Leader.ID == leader.id {
						return false
					}
				}
				return true
			})
			cancelled := cancelAfterFailover(t, recv.client(other.srv.addr), "w", 0, len(watched))
			// Reads sent to the paused node after the cancels returned:
			// answered once it wakes, they must see them, not what it
			// held before (it may still take itself for the leader then).
			var reads sync.WaitGroup
			stale := recv.client(leader.srv.addr)
			for id := range watched {
				reads.Add(1)
				go func() {
					defer reads.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					began := time.Now()
					if _, err := stale.GetTask(ctx, id); err != nil {
						t.Logf("read %s through the paused node after %v: %v", id, time.Since(began).Round(time.Millisecond), err)
					}
				}()
			}
			time.Sleep(time.Until(paused.Add(5 * time.Second)))
			if err := leader.srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			reads.Wait()
			t.Logf("%d of %d watched tasks cancelled during the pause", len(cancelled), len(watched))
			waitFor(t, 60*time.Second, "every task delivered", func() bool { return recv.count() >= len(due) })
			time.Sleep(time.Second) // anything the woken leader still sends arrives now
			recv.verdict(t, "leader paused 5s", due, nil, paused, oldTerm)
		})
	}
}

// TestClusterQuorumLoss kills two of three nodes (the leader among them)
// before the tasks fall due: the survivor fires nothing and refuses
// writes; once the two are back, everything that fell due is delivered.
func TestClusterQuorumLoss(t *testing.T) {
	nodes := startCluster(t)
	leader := leaderOf(t, nodes, nodes[0])
	recv := newCheckedReceiver(t)
	due := createSpread(t, recv.client(leader.srv.addr), "q", 1000, time.Now().Add(3*time.Second), 2*time.Millisecond, recv.URL)

	var survivor *clusterNode
	var down []*clusterNode
	for _, n := range nodes {
		if n != leader && survivor == nil {
			survivor = n
			continue
		}
		n.srv.kill()
		down = append(down, n)
	}
	lost := time.Now()
	sc := client.New(survivor.srv.addr, "")
	start := time.Now()
	_, err := sc.CreateTask(context.Background(), client.CreateTaskRequest{Delay: "1s", Target: &client.Target{URL: recv.URL}})
	if err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("write without quorum: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("write without quorum answered after %v", took)
	}
	// Everything falls due while the majority is down; nothing may fire.
	time.Sleep(time.Until(lost.Add(6 * time.Second)))
	if n := recv.count(); n != 0 {
		t.Fatalf("%d tasks delivered without a quorum", n)
	}

	for _, n := range down { // both first: neither is ready without the other
		n.restart(t, nodes)
	}
	for _, n := range down {
		n.srv.waitReady()
	}
	waitFor(t, 60*time.Second, "every task delivered after recovery", func() bool { return recv.count() >= len(due) })
	recv.verdict(t, "quorum lost", due, nil, lost, 0)
}

// TestClusterFollowerCatchesUpBySnapshot stops a follower, writes enough
// raft entries that the others snapshot and compact their logs past it,
// and restarts it: it must catch up from the leader's snapshot. Then the
// leader is killed, and every task is still delivered.
func TestClusterFollowerCatchesUpBySnapshot(t *testing.T) {
	nodes := startCluster(t, "--raft-snapshot-threshold", "40", "--raft-snapshot-interval", "200ms", "--raft-trailing-logs", "10")
	leader, follower := leaderAndFollower(t, nodes)
	follower.srv.kill()
	recv := newCheckedReceiver(t)
	c := recv.client(leader.srv.addr)
	start := time.Now().Add(6 * time.Second)
	due := map[string]time.Time{}
	for k := 0; k < 200; k++ { // one raft entry each: far past the trailing 10
		id := fmt.Sprintf("s-%03d", k)
		at := start.Add(time.Duration(k) * 5 * time.Millisecond)
		due[id] = at.Round(0)
		if _, err := c.CreateTask(context.Background(), client.CreateTaskRequest{ID: id, ExecuteAt: at.UTC().Format(time.RFC3339Nano), Target: &client.Target{URL: recv.URL}}); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the leader has compacted its log past the follower.
	waitFor(t, 10*time.Second, "the leader compacting its log", func() bool {
		data, _ := os.ReadFile(leader.srv.logPath)
		return strings.Contains(string(data), "compacting logs")
	})
	follower.rejoin(t, nodes)
	follower.waitHasTask(t, "s-199")
	if data, _ := os.ReadFile(follower.srv.logPath); !strings.Contains(string(data), "Installed remote snapshot") {
		t.Fatalf("the follower did not install a snapshot; its log:\n%s", follower.srv.logTail())
	}
	// The caught-up follower may be the next leader: kill this one.
	killed := time.Now()
	leader.srv.kill()
	waitFor(t, 30*time.Second, "every task delivered", func() bool { return recv.count() >= len(due) })
	recv.verdict(t, "follower back after compaction, then leader kill", due, nil, killed, 0)
}

// TestClusterRollingRestart restarts the three nodes one after another
// (SIGTERM, then start again on the same data) while tasks are created and
// fire: every acknowledged task is delivered, none early.
func TestClusterRollingRestart(t *testing.T) {
	// One raft group, and three (one led by each node).
	for _, groups := range []string{"1", "3"} {
		t.Run("groups="+groups, func(t *testing.T) {
			nodes := startCluster(t, "--groups", groups)
			if groups != "1" {
				waitSpread(t, nodes, 3)
			}
			recv := newCheckedReceiver(t)
			load := startSteadyLoad(nodes, "r", recv, 0)
			restarted := time.Now()
			rollingRestart(t, nodes)
			due, _ := load.finish()
			waitFor(t, 30*time.Second, fmt.Sprintf("%d tasks delivered", len(due)), func() bool { return recv.count() >= len(due) })
			recv.verdict(t, "rolling restart", due, nil, restarted, 0)
		})
	}
}

// rollingRestart stops each node in turn with SIGTERM, a second apart,
// and starts it again, waiting until it is ready; then a second more.
func rollingRestart(t *testing.T, nodes []*clusterNode) {
	t.Helper()
	for _, n := range nodes {
		time.Sleep(time.Second)
		n.srv.terminate(t)
		n.rejoin(t, nodes)
	}
	time.Sleep(time.Second)
}

// cancelTail is how many of killWhileFiring's tasks, the last ones, are
// left to be cancelled after the fault.
const cancelTail = 100

// killWhileFiring creates n tasks through via, prefix-0000 on, due from
// 2 s on every step, and kills victim (kill -9) once 500 are delivered.
// The last cancelTail are due 10 s after the others are created rather
// than in the spread: under the race detector, on a busy machine,
// creating the spread can take longer than it lasts, and the tests
// cancel these after the fault while they must still be scheduled. It
// returns the receiver, the tasks' due times, the highest fencing term
// delivered before the kill, and when it was.
func killWhileFiring(t *testing.T, victim, via *clusterNode, prefix string, n int, step time.Duration) (recv *checkedReceiver, due map[string]time.Time, oldTerm int, killed time.Time) {
	t.Helper()
	recv = newCheckedReceiver(t)
	c := recv.client(via.addr())
	due = map[string]time.Time{}
	createRange(t, c, prefix, 0, n-cancelTail, time.Now().Add(2*time.Second), step, recv.URL, due)
	tail := time.Now().Add(10 * time.Second)
	createRange(t, c, prefix, n-cancelTail, n, tail.Add(-time.Duration(n-cancelTail)*step), step, recv.URL, due)
	waitFor(t, 20*time.Second, "firing under way", func() bool { return recv.count() >= 500 })
	oldTerm = recv.maxTerm()
	killed = time.Now()
	victim.srv.kill()
	return recv, due, oldTerm, killed
}

// steadyLoad creates a task every few milliseconds through the nodes in
// turn, due 1-2 s later, retrying through the next node when one fails
// (it is restarting, or the task's group has no leader just now), reads
// every fourth back through another node, and lists a page of the queue
// every fiftieth; with cancelEvery > 0,
// every cancelEvery-th task is due 5 s later instead, moved a second
// later with If-Match at the version its create returned, and cancelled
// through another node. Every call goes into recv's history.
type steadyLoad struct {
	stop, done chan struct{}
	mu         sync.Mutex
	due        map[string]time.Time // acknowledged creates
	cancelled  map[string]bool      // of those, the ones whose cancel returned 200
}

func startSteadyLoad(nodes []*clusterNode, prefix string, recv *checkedReceiver, cancelEvery int) *steadyLoad {
	l := &steadyLoad{stop: make(chan struct{}), done: make(chan struct{}), due: map[string]time.Time{}, cancelled: map[string]bool{}}
	// try calls f through the nodes in turn from the k-th until one
	// answers without an error (giving up after 100 tries).
	try := func(k int, f func(ctx context.Context, c *client.Client) error) error {
		for attempt := 0; ; attempt++ {
			n := nodes[(k+attempt)%len(nodes)]
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := f(ctx, recv.client(n.addr()))
			cancel()
			if err == nil || attempt >= 100 {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	go func() {
		defer close(l.done)
		for k := 0; ; k++ {
			select {
			case <-l.stop:
				return
			default:
			}
			id := fmt.Sprintf("%s-%05d", prefix, k)
			doomed := cancelEvery > 0 && k%cancelEvery == 0
			at := time.Now().Add(time.Second + time.Duration(k%1000)*time.Millisecond)
			if doomed {
				at = time.Now().Add(5 * time.Second)
			}
			req := client.CreateTaskRequest{ID: id, ExecuteAt: at.UTC().Format(time.RFC3339Nano), Target: &client.Target{URL: recv.URL}}
			var created *client.Task
			if err := try(k, func(ctx context.Context, c *client.Client) (err error) {
				created, err = c.CreateTask(ctx, req)
				return err
			}); err != nil {
				continue // never acknowledged: no verdict on it
			}
			if k%4 == 0 {
				try(k+1, func(ctx context.Context, c *client.Client) error {
					_, err := c.GetTask(ctx, id)
					return err
				})
			}
			if k%50 == 25 { // a page of the queue, across the groups
				try(k+2, func(ctx context.Context, c *client.Client) error {
					_, err := c.ListTasks(ctx, client.ListOptions{Queue: "default", Limit: 100})
					return err
				})
			}
			if doomed {
				later := client.UpdateTaskRequest{ExecuteAt: at.Add(time.Second).UTC().Format(time.RFC3339Nano)}
				try(k+1, func(ctx context.Context, c *client.Client) error {
					_, err := c.UpdateTask(ctx, id, later, created.Version)
					var refused *client.Error
					if errors.As(err, &refused) && refused.Status < 500 {
						return nil // 412 or 409: an answer, which the history has
					}
					return err
				})
				err := try(k+1, func(ctx context.Context, c *client.Client) error {
					_, err := c.CancelTask(ctx, id)
					return err
				})
				l.mu.Lock()
				if err == nil {
					l.cancelled[id] = true
				} else {
					// An attempt that failed may have committed: whether
					// it is delivered is not known.
					delete(l.due, id)
				}
				l.mu.Unlock()
			}
			l.mu.Lock()
			if !doomed || l.cancelled[id] {
				l.due[id] = at.Round(0)
			}
			l.mu.Unlock()
			time.Sleep(3 * time.Millisecond)
		}
	}()
	return l
}

// finish stops the load and returns the acknowledged tasks' due times and
// those whose cancel returned 200.
func (l *steadyLoad) finish() (due map[string]time.Time, cancelled map[string]bool) {
	close(l.stop)
	<-l.done
	return l.due, l.cancelled
}

// TestClusterWipedNodeRejoins wipes a node's data directory (n1, the
// lowest id, which would bootstrap a new cluster if it forgot that one
// exists), removes it with "hourglass cluster remove", and starts it again
// with the same flags: it must rejoin the existing cluster as a fresh
// member and receive its data.
func TestClusterWipedNodeRejoins(t *testing.T) {
	// One raft group, and three (one led by each node).
	for _, groups := range []string{"1", "3"} {
		t.Run("groups="+groups, func(t *testing.T) {
			nodes := startCluster(t, "--groups", groups)
			if groups != "1" {
				waitSpread(t, nodes, 3)
			}
			wiped := nodes[0]
			other := nodes[1]
			c := client.New(other.srv.addr, "")
			if _, err := c.CreateTask(context.Background(), client.CreateTaskRequest{ID: "before-wipe", Delay: "1h", Target: &client.Target{URL: "http://127.0.0.1:9/"}}); err != nil {
				t.Fatal(err)
			}
			wiped.srv.kill()
			err := os.RemoveAll(wiped.dataDir)
			if err != nil {
				t.Fatal(err)
			}
			// Until the others elect a leader the answer is 503 "retry".
			var out []byte
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("cluster remove said last: %s", out)
				}
			})
			// A retry after a 503 may find the node removed already (the
			// groups and the meta group remove it apart, and the 503 may
			// have hidden a removal that happened): only then is "no such
			// member" the removal's success.
			var unavailableBefore bool
			waitFor(t, 15*time.Second, "cluster remove to succeed", func() bool {
				out, err = exec.Command(binary, "cluster", "remove", wiped.id, "--addr", other.addr()).CombinedOutput()
				if err != nil && unavailableBefore && strings.Contains(string(out), "no such member") {
					out = []byte("removed " + wiped.id + " (by an earlier attempt)")
					return true
				}
				unavailableBefore = err != nil && strings.Contains(string(out), "HTTP 503")
				return err == nil
			})
			if !strings.Contains(string(out), "removed "+wiped.id) {
				t.Fatalf("cluster remove said %q", out)
			}
			wiped.rejoin(t, nodes)
			wiped.waitHasTask(t, "before-wipe")
			// It is promoted to voter once it has caught up.
			waitFor(t, 15*time.Second, "3 voters after the wiped node rejoined", func() bool {
				info, err := c.Cluster(context.Background())
				if err != nil {
					return false
				}
				voters := 0
				for _, n := range info.Nodes {
					if n.Voter {
						voters++
					}
				}
				return voters == 3
			})
			if data, _ := os.ReadFile(wiped.srv.logPath); strings.Contains(string(data), "bootstrapping the cluster") {
				t.Fatal("the wiped node bootstrapped a cluster of its own")
			}
		})
	}
}
