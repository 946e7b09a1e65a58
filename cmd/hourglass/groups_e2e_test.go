package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/fsm/archive"
)

// groupLeaders maps each node id to the groups it leads, as node n sees
// it.
func groupLeaders(t *testing.T, n *clusterNode) map[string][]uint32 {
	t.Helper()
	info, err := n.srv.client("").Cluster(context.Background()) // over TLS where the cluster has it
	if err != nil {
		return nil
	}
	out := map[string][]uint32{}
	for _, g := range info.Groups {
		if g.Leader != nil {
			out[g.Leader.ID] = append(out[g.Leader.ID], g.ID)
		}
	}
	return out
}

// waitSpread waits until each of the nodes leads groups/len(nodes) of the
// groups.
func waitSpread(t *testing.T, nodes []*clusterNode, groups int) map[string][]uint32 {
	t.Helper()
	var leaders map[string][]uint32
	waitFor(t, 30*time.Second, "the groups' leaders spread over the nodes", func() bool {
		leaders = groupLeaders(t, nodes[0])
		if len(leaders) != len(nodes) {
			return false
		}
		for _, gs := range leaders {
			if len(gs) != groups/len(nodes) {
				return false
			}
		}
		return true
	})
	return leaders
}

// TestGroupsLeaderKill is the leader kill of the fault suite with six
// groups, two led by each node: the killed node takes two leaderships
// with it at once. Tasks are created through one node and cancelled
// through another, both forwarding to the groups' leaders; the verdict is
// the same: none lost, none early, no cancelled one delivered.
func TestGroupsLeaderKill(t *testing.T) {
	nodes := startCluster(t, "--groups", "6")
	leaders := waitSpread(t, nodes, 6)
	victim, other := nodes[0], nodes[1]
	t.Logf("groups by leader: %v; killing %s", leaders, victim.id)
	const n = 3000
	recv, due, oldTerm, killed := killWhileFiring(t, victim, other, "g", n, 2*time.Millisecond)

	cancelled := cancelAfterFailover(t, recv.client(nodes[2].addr()), "g", n-cancelTail, n)
	waitFor(t, 60*time.Second, "every task delivered", func() bool { return recv.count() >= n-len(cancelled) })
	time.Sleep(500 * time.Millisecond) // let any late, wrong delivery show up
	recv.verdict(t, "leader kill, 6 groups", due, cancelled, killed, oldTerm)

	// The killed node comes back and takes its groups back.
	victim.rejoin(t, nodes)
	waitSpread(t, nodes, 6)
}

// TestGroupsPlacementUnderLoad: five nodes, five groups of three
// replicas, each node leading one. A node is killed while tasks fire;
// after --dead-after its replicas move to the four left, one at a time
// (add a non-voter, catch up, promote, remove), while tasks go on firing
// and some are cancelled through another node. Nothing is lost, nothing
// fires early, no cancelled task is delivered, and every group ends on
// three live nodes.
func TestGroupsPlacementUnderLoad(t *testing.T) {
	nodes := startClusterOf(t, 5, nil, func(string) []string { return []string{"--groups", "5", "--dead-after", "2s"} })
	waitSpread(t, nodes, 5)
	victim, other := nodes[0], nodes[1]
	const n = 3000
	recv, due, oldTerm, killed := killWhileFiring(t, victim, other, "p", n, 3*time.Millisecond)
	left := nodes[1:]

	cancelled := cancelAfterFailover(t, recv.client(nodes[2].addr()), "p", n-cancelTail, n)
	var last *client.ClusterInfo
	t.Cleanup(func() {
		if t.Failed() {
			if last != nil {
				for _, g := range last.Groups {
					t.Logf("group %d as %s saw it last: leader %+v, replicas %+v", g.ID, other.id, g.Leader, g.Replicas)
				}
			}
			for _, n := range left {
				data, _ := os.ReadFile(n.srv.logPath)
				for _, line := range strings.Split(string(data), "\n") {
					if strings.Contains(line, "placement") || strings.Contains(line, "replica") || strings.Contains(line, "level=WARN") && !strings.Contains(line, "failed to contact") {
						t.Logf("%s: %s", n.id, line)
					}
				}
			}
		}
	})
	waitFor(t, 90*time.Second, "every group on three of the four nodes left", func() bool {
		info, err := client.New(other.addr(), "").Cluster(context.Background())
		if err != nil || len(info.Groups) != 5 {
			return false
		}
		last = info
		for _, g := range info.Groups {
			if len(g.Replicas) != 3 {
				return false
			}
			for _, r := range g.Replicas {
				if r.ID == victim.id || r.State != "leader" && r.State != "follower" {
					return false
				}
			}
		}
		return true
	})
	waitFor(t, 60*time.Second, "every task delivered", func() bool { return recv.count() >= n-len(cancelled) })
	time.Sleep(500 * time.Millisecond) // let any late, wrong delivery show up
	recv.verdict(t, "a node killed and its replicas moved, 5 nodes, 5 groups", due, cancelled, killed, oldTerm)
	waitFor(t, 30*time.Second, "each of the four left leading a group", func() bool {
		leaders := groupLeaders(t, left[0])
		_, victimLeads := leaders[victim.id]
		return len(leaders) == len(left) && !victimLeads
	})
}

// TestGroupsPullWorkers: pull tasks of three groups, leased through one
// node in batches and acknowledged in batches through another; every task
// is leased once and acknowledged, and a long poll on an empty queue is
// answered by the first group with a task.
func TestGroupsPullWorkers(t *testing.T) {
	nodes := startCluster(t, "--groups", "3")
	waitSpread(t, nodes, 3)
	ctx := context.Background()
	creator, worker := client.New(nodes[0].addr(), ""), client.New(nodes[1].addr(), "")
	const n = 200
	var batch []client.CreateTaskRequest
	for i := range n {
		batch = append(batch, client.CreateTaskRequest{ID: fmt.Sprintf("p-%03d", i), Queue: "jobs", Delay: "0s"})
	}
	results, err := creator.CreateTasks(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Error != nil {
			t.Fatalf("create: %+v", r.Error)
		}
	}
	leased := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(leased) < n && time.Now().Before(deadline) {
		got, err := worker.LeaseTasks(ctx, "jobs", client.LeaseRequest{Max: 64, Wait: "1s"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 64 {
			t.Fatalf("leased %d tasks, asking for at most 64", len(got))
		}
		var acks []client.AckItem
		for _, task := range got {
			if leased[task.ID] {
				t.Fatalf("task %s leased twice", task.ID)
			}
			leased[task.ID] = true
			acks = append(acks, client.AckItem{ID: task.ID, LeaseToken: task.LeaseToken})
		}
		if len(acks) == 0 {
			continue
		}
		res, err := worker.AckTasks(ctx, acks)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Error != nil {
				t.Fatalf("ack of %s: %+v", acks[i].ID, r.Error)
			}
		}
	}
	if len(leased) != n {
		t.Fatalf("leased %d of %d tasks", len(leased), n)
	}
	q, err := creator.GetQueue(ctx, "jobs")
	if err != nil || q.Tasks["succeeded"] != n {
		t.Fatalf("queue after the acks: %+v %v", q, err)
	}

	// Acks of tasks of several groups in one request are split over the
	// groups (the acks of one lease, of one group, go whole to it).
	var mixed []client.CreateTaskRequest
	for i := range 12 {
		mixed = append(mixed, client.CreateTaskRequest{ID: fmt.Sprintf("m-%02d", i), Queue: "mixed", Delay: "0s"})
	}
	if _, err := creator.CreateTasks(ctx, mixed); err != nil {
		t.Fatal(err)
	}
	var mixedAcks []client.AckItem
	leases := map[string]bool{} // by their first task: each is of one group
	deadline = time.Now().Add(30 * time.Second)
	for len(mixedAcks) < len(mixed) && time.Now().Before(deadline) {
		got, err := worker.LeaseTasks(ctx, "mixed", client.LeaseRequest{Max: 64, Wait: "1s"})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range got {
			mixedAcks = append(mixedAcks, client.AckItem{ID: task.ID, LeaseToken: task.LeaseToken})
		}
		if len(got) > 0 {
			leases[got[0].ID] = true
		}
	}
	if len(mixedAcks) != len(mixed) || len(leases) < 2 {
		t.Fatalf("leased %d of %d tasks of queue mixed in %d leases", len(mixedAcks), len(mixed), len(leases))
	}
	res, err := worker.AckTasks(ctx, mixedAcks)
	if err != nil || len(res) != len(mixedAcks) {
		t.Fatalf("acks across groups: %d results, %v", len(res), err)
	}
	for i, r := range res {
		if r.Error != nil {
			t.Fatalf("ack of %s: %+v", mixedAcks[i].ID, r.Error)
		}
	}
	if q, err := creator.GetQueue(ctx, "mixed"); err != nil || q.Tasks["succeeded"] != uint64(len(mixed)) {
		t.Fatalf("queue mixed after the acks: %+v %v", q, err)
	}

	// Tasks of every group falling due at once while a long poll waits on
	// all groups: each group grants its share, and every grant is handed
	// out (one dropped would hold its task until its 30s lease ran out).
	const burst = 300
	var due []client.CreateTaskRequest
	for i := range burst {
		due = append(due, client.CreateTaskRequest{ID: fmt.Sprintf("burst-%03d", i), Queue: "burst", Delay: "1500ms"})
	}
	if _, err := creator.CreateTasks(ctx, due); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	deadline = time.Now().Add(10 * time.Second)
	for len(got) < burst && time.Now().Before(deadline) {
		leased, err := worker.LeaseTasks(ctx, "burst", client.LeaseRequest{Max: 1000, Wait: "5s", Lease: "30s"})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range leased {
			got[task.ID] = true
		}
	}
	if len(got) != burst {
		t.Fatalf("%d of %d tasks due at once handed out within 10s", len(got), burst)
	}

	// A long poll on an empty queue waits on every group: a task created
	// meanwhile, in whichever group, is its answer.
	answer := make(chan []client.LeasedTask, 1)
	go func() {
		got, err := worker.LeaseTasks(ctx, "later", client.LeaseRequest{Max: 5, Wait: "20s"})
		if err != nil {
			t.Error(err)
		}
		answer <- got
	}()
	time.Sleep(300 * time.Millisecond) // the poll is waiting
	for i := range 3 {
		if _, err := creator.CreateTask(ctx, client.CreateTaskRequest{ID: fmt.Sprintf("late-%d", i), Queue: "later", Delay: "0s"}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-answer:
		if len(got) == 0 {
			t.Fatal("the long poll ended empty")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the long poll was not answered when tasks fell due")
	}
}

// TestGroupsBackupRestore backs up a cluster of three nodes and three
// groups, one led by each, through a node that leads one: the other two
// groups' states stream in from the other nodes. Restored through another
// node, each group's leader gets its part over the network, and every
// node shows the state of the backup again.
func TestGroupsBackupRestore(t *testing.T) {
	nodes := startCluster(t, "--groups", "3")
	waitSpread(t, nodes, 3)
	ctx := context.Background()
	var batch []client.CreateTaskRequest
	for i := range 300 {
		batch = append(batch, client.CreateTaskRequest{ID: fmt.Sprintf("b-%03d", i), Delay: "1h", Target: &client.Target{URL: "http://127.0.0.1:9/"}})
	}
	if _, err := client.New(nodes[0].addr(), "").CreateTasks(ctx, batch); err != nil {
		t.Fatal(err)
	}
	// Schedules too, spread over the groups by their ids.
	daily := func(id string) client.ScheduleRequest {
		return client.ScheduleRequest{ID: id, Cron: "0 3 * * *", TimeZone: "Asia/Tokyo", Task: &client.TaskTemplate{Target: &client.Target{URL: "http://127.0.0.1:9/"}}}
	}
	for i := range 6 {
		if _, err := client.New(nodes[i%3].addr(), "").CreateSchedule(ctx, daily(fmt.Sprintf("s-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if list, err := client.New(nodes[1].addr(), "").ListSchedules(ctx); err != nil || len(list) != 6 || list[0].ID != "s-0" || list[5].ID != "s-5" {
		t.Fatalf("schedules listed across the groups: %+v %v", list, err)
	}
	var backup bytes.Buffer
	if _, err := client.New(nodes[1].addr(), "").SaveSnapshot(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	meta, err := archive.ExtractGroups(bytes.NewReader(backup.Bytes()), t.TempDir(), nil)
	if err != nil || len(meta.Groups) != 3 || meta.Tasks.Total() != 300 {
		t.Fatalf("the backup: %+v %v", meta, err)
	}

	// Changes after the backup; the restore undoes them.
	c := client.New(nodes[0].addr(), "")
	if _, err := c.CancelTask(ctx, "b-007"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTask(ctx, client.CreateTaskRequest{ID: "after", Delay: "1h", Target: &client.Target{URL: "http://127.0.0.1:9/"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSchedule(ctx, "s-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSchedule(ctx, daily("s-after")); err != nil {
		t.Fatal(err)
	}
	res, err := client.New(nodes[2].addr(), "").RestoreSnapshot(ctx, bytes.NewReader(backup.Bytes()))
	if err != nil || len(res.Restored.Groups) != 3 || res.Restored.TotalTasks != 300 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	for _, n := range nodes {
		nc := client.New(n.addr(), "")
		waitFor(t, 15*time.Second, "the restored state on "+n.id, func() bool {
			task, err := nc.GetTask(ctx, "b-007")
			_, gone := nc.GetTask(ctx, "after")
			if err != nil || task.State != "scheduled" || !errors.Is(gone, client.ErrNotFound) {
				return false
			}
			_, back := nc.GetSchedule(ctx, "s-1")
			_, goneToo := nc.GetSchedule(ctx, "s-after")
			return back == nil && errors.Is(goneToo, client.ErrNotFound)
		})
	}
}

// TestGroupsFiveNodeFaults: five nodes, five groups of three replicas,
// under a steady load of creates and cancels through every node. A node
// that leads a group is paused (SIGSTOP) for longer than --dead-after, so
// its replicas move to the other four while it sleeps; it wakes, and
// while the placement moves replicas back to it, every node is restarted
// in turn. Nothing acknowledged is lost, nothing fires early, no task
// whose cancel returned 200 is delivered, and the placement ends even:
// every group on three live nodes, each node holding three replicas.
func TestGroupsFiveNodeFaults(t *testing.T) {
	nodes := startClusterOf(t, 5, nil, func(string) []string { return []string{"--groups", "5", "--dead-after", "3s"} })
	waitSpread(t, nodes, 5)
	recv := newCheckedReceiver(t)
	load := startSteadyLoad(nodes, "f", recv, 10)
	waitFor(t, 20*time.Second, "firing under way", func() bool { return recv.count() >= 200 })

	victim := nodes[0]
	oldTerm := recv.maxTerm()
	paused := time.Now()
	if err := victim.srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the paused node's replicas moved away", func() bool {
		info, err := client.New(nodes[1].addr(), "").Cluster(context.Background())
		if err != nil {
			return false
		}
		for _, g := range info.Groups {
			for _, r := range g.Replicas {
				if r.ID == victim.id {
					return false
				}
			}
		}
		return true
	})
	if err := victim.srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	rollingRestart(t, nodes)
	due, cancelled := load.finish()
	waitFor(t, 90*time.Second, fmt.Sprintf("%d tasks delivered", len(due)-len(cancelled)), func() bool { return recv.count() >= len(due)-len(cancelled) })
	time.Sleep(500 * time.Millisecond) // let any late, wrong delivery show up
	recv.verdict(t, "pause past --dead-after, then a rolling restart, 5 nodes, 5 groups", due, cancelled, paused, oldTerm)

	waitFor(t, 90*time.Second, "every group on three live nodes, three replicas on each node", func() bool {
		info, err := client.New(nodes[2].addr(), "").Cluster(context.Background())
		if err != nil || len(info.Groups) != 5 {
			return false
		}
		perNode := map[string]int{}
		for _, g := range info.Groups {
			if len(g.Replicas) != 3 {
				return false
			}
			for _, r := range g.Replicas {
				if r.State != "leader" && r.State != "follower" {
					return false
				}
				perNode[r.ID]++
			}
		}
		for _, n := range nodes {
			if perNode[n.id] != 3 {
				return false
			}
		}
		return true
	})
}
