package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/slots"
)

// waitGroupsLead waits until every group of n has a leader.
func waitGroupsLead(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, g := range n.Groups() {
		if err := g.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// A new node makes the groups it is asked for, each a raft group of its
// own; restarted, it keeps them, whatever it is asked for then.
func TestSingleNodeHostsManyGroups(t *testing.T) {
	dir := t.TempDir()
	n, err := Open(Config{NodeID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", Groups: 4})
	if err != nil {
		t.Fatal(err)
	}
	n.Start(func(*Group) LeaderFunc { return func(ctx context.Context, _ uint64) { <-ctx.Done() } }, nil)
	if got := len(n.Groups()); got != 4 {
		t.Fatalf("%d groups, want 4", got)
	}
	waitGroupsLead(t, n)
	ctx := context.Background()
	for _, g := range n.Groups() {
		if _, err := g.Propose(ctx, createCmd(fmt.Sprint("task-of-", g.ID()))); err != nil {
			t.Fatal(err)
		}
		if g.Status().Term == 0 {
			t.Fatalf("group %d: term 0", g.ID())
		}
	}
	// Each group has a log and a state file of its own.
	for id := slots.Group(1); id <= 4; id++ {
		if _, err := os.Stat(filepath.Join(groupDir(dir, id), "raft.db")); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Group(id).FSM().Get(fmt.Sprint("task-of-", id)); err != nil {
			t.Fatalf("group %d: %v", id, err)
		}
		other := id%4 + 1
		if _, err := n.Group(other).FSM().Get(fmt.Sprint("task-of-", id)); err == nil {
			t.Fatalf("task of group %d is in group %d too", id, other)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n, err = Open(Config{NodeID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", Groups: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got := len(n.Groups()); got != 4 {
		t.Fatalf("after a restart with Groups 2: %d groups, want the 4 it was made with", got)
	}
	for id := slots.Group(1); id <= 4; id++ {
		if _, err := n.Group(id).FSM().Get(fmt.Sprint("task-of-", id)); err != nil {
			t.Fatalf("after a restart, group %d: %v", id, err)
		}
	}
}

// A data directory of a single-group release (raft.db, state.db and
// snapshots/ at its top) starts as group 1 of one, with nothing lost.
func TestSingleGroupDataDirIsUpgraded(t *testing.T) {
	dir := t.TempDir()
	n, err := Open(Config{NodeID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	waitGroupsLead(t, n)
	if _, err := n.Group(1).Propose(context.Background(), createCmd("old")); err != nil {
		t.Fatal(err)
	}
	if err := n.Group(1).Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// Put the files back where a single-group release kept them; a crash
	// part way through the upgrade left raft.db moved already.
	for _, name := range []string{"state.db", "snapshots"} {
		if err := os.Rename(filepath.Join(groupDir(dir, 1), name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, layoutFile)); err != nil {
		t.Fatal(err)
	}

	n, err = Open(Config{NodeID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", Groups: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got := len(n.Groups()); got != 1 {
		t.Fatalf("an upgraded single-group directory has %d groups, want 1", got)
	}
	if _, err := n.Group(1).FSM().Get("old"); err != nil {
		t.Fatalf("the task written before the upgrade: %v", err)
	}
	for _, name := range legacyFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s is still at the top of the data directory", name)
		}
	}
	waitGroupsLead(t, n)
	if _, err := n.Group(1).Propose(context.Background(), createCmd("new")); err != nil {
		t.Fatal(err)
	}
}

// Three nodes formed with --bootstrap-expect share every group: each has
// three voters and a leader. A node that joins later takes the count from
// the others and gets its share of the replicas, moved to it one at a
// time, while every group keeps three voters.
func TestThreeNodesShareEveryGroup(t *testing.T) {
	c := newTestCluster(t)
	first := c.startWith("n1", Config{BootstrapExpect: 3, Groups: 3})
	seed := first.Status().GossipAddr
	c.startWith("n2", Config{BootstrapExpect: 3, Groups: 3, Join: []string{seed}})
	c.startWith("n3", Config{BootstrapExpect: 3, Groups: 3, Join: []string{seed}})
	c.waitFor(15*time.Second, "3 groups with 3 voters and a leader on every node", func() bool {
		for _, n := range c.nodes {
			if len(n.Groups()) != 3 {
				return false
			}
			for _, g := range n.Groups() {
				if id, _, _ := g.Leader(); id == "" || len(g.voters()) != 3 {
					return false
				}
			}
		}
		return true
	})
	// A fourth node, started with another count, joins with the cluster's.
	n4 := c.startWith("n4", Config{Join: []string{seed}, Groups: 8})
	c.waitFor(60*time.Second, "n4 holding two of the nine replicas, every group on three nodes", func() bool {
		if len(n4.Groups()) != 2 {
			return false
		}
		for _, g := range n4.Groups() {
			if g.raft.AppliedIndex() == 0 || g.Ready() != nil {
				return false
			}
		}
		held := 0
		for _, n := range c.nodes {
			held += len(n.Groups())
			for _, g := range n.Groups() {
				if g.IsLeader() && len(g.voters()) != 3 {
					return false
				}
			}
		}
		return held == 9
	})
	if n4.Table() == nil || *n4.Table() != *first.Table() {
		t.Fatal("n4 holds another slot table than n1")
	}
}

// The leaders of a three-node cluster's groups spread over the nodes:
// each node leads the group that prefers it; a node that stops hands its
// groups over, and takes them back when it returns.
func TestLeadersSpreadOverTheNodes(t *testing.T) {
	c := newTestCluster(t)
	cfg := Config{BootstrapExpect: 3, Groups: 3, BalanceInterval: 100 * time.Millisecond}
	first := c.startWith("n1", cfg)
	cfg.Join = []string{first.Status().GossipAddr}
	c.startWith("n2", cfg)
	c.startWith("n3", cfg)
	spread := func() bool {
		leaders := map[string]bool{}
		for _, n := range c.nodes {
			for _, g := range n.Groups() {
				if g.IsLeader() {
					leaders[n.cfg.NodeID] = true
				}
			}
		}
		return len(leaders) == 3
	}
	c.waitFor(20*time.Second, "one group led by each node", spread)
	c.stop("n2")
	c.waitFor(20*time.Second, "the two left lead every group", func() bool {
		led := 0
		for _, n := range c.nodes {
			for _, g := range n.Groups() {
				if g.IsLeader() {
					led++
				}
			}
		}
		return led == 3
	})
	cfg.Join = []string{c.nodes["n1"].Status().GossipAddr}
	c.startWith("n2", cfg)
	c.waitFor(20*time.Second, "n2 leading its group again", spread)
}
