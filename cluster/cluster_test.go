package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// testCluster is a set of real nodes on loopback: raft over TCP and gossip
// over UDP/TCP, each with its own data directory.
type testCluster struct {
	t      *testing.T
	nodes  map[string]*Node
	dirs   map[string]string
	raft   map[string]string // raft address of each node, kept across restarts
	gossip map[string]string // and its gossip address
	logs   *logBuffer        // every node's log, shown when the test fails
	// replicas, when set, is every node's Config.Replicas: 5 puts every
	// group on each of up to five nodes.
	replicas int
}

func newTestCluster(t *testing.T) *testCluster {
	c := &testCluster{t: t, nodes: map[string]*Node{}, dirs: map[string]string{}, raft: map[string]string{}, gossip: map[string]string{}, logs: &logBuffer{}}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.Close()
		}
		if t.Failed() {
			lines := strings.Split(c.logs.String(), "\n")
			t.Logf("the nodes' last %d log lines:\n%s", min(3000, len(lines)), strings.Join(lines[max(0, len(lines)-3000):], "\n"))
		}
	})
	return c
}

func (c *testCluster) start(id string, expect int, join ...string) *Node {
	c.t.Helper()
	return c.startWith(id, Config{BootstrapExpect: expect, Join: join, Groups: 1})
}

func (c *testCluster) startWith(id string, cfg Config) *Node {
	c.t.Helper()
	if c.dirs[id] == "" {
		c.dirs[id] = c.t.TempDir()
		c.raft[id], c.gossip[id] = "127.0.0.1:0", "127.0.0.1:0"
	}
	cfg.NodeID, cfg.DataDir, cfg.RaftAddr = id, c.dirs[id], c.raft[id]
	if cfg.Replicas == 0 {
		cfg.Replicas = c.replicas
	}
	cfg.GossipAddr, cfg.HTTPAdvertise = c.gossip[id], "http-of-"+id
	if cfg.Logger == nil {
		cfg.Logger = c.logs.logger().With("node", id)
	}
	n, err := Open(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	n.Start(func(*Group) LeaderFunc { return func(ctx context.Context, _ uint64) { <-ctx.Done() } }, nil)
	c.nodes[id] = n
	c.raft[id], c.gossip[id] = n.Status().RaftAddr, n.Status().GossipAddr
	return n
}

func (c *testCluster) stop(id string) {
	c.t.Helper()
	if err := c.nodes[id].Close(); err != nil {
		c.t.Fatal(err)
	}
	delete(c.nodes, id)
}

func (c *testCluster) waitFor(within time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leader waits until exactly one running node leads and every running node
// agrees on it.
func (c *testCluster) leader() *Node {
	c.t.Helper()
	var leader *Node
	c.waitFor(15*time.Second, "one leader all nodes agree on", func() bool {
		leader = nil
		for _, n := range c.nodes {
			if n.Group(1) == nil {
				return false // still joining
			}
			if n.Group(1).IsLeader() {
				if leader != nil {
					return false
				}
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range c.nodes {
			if id, _, _ := n.Group(1).Leader(); id != leader.cfg.NodeID {
				return false
			}
		}
		return true
	})
	return leader
}

// metaLeader waits for the node leading the meta group.
func (c *testCluster) metaLeader() *Node {
	c.t.Helper()
	var leader *Node
	c.waitFor(15*time.Second, "a meta group leader", func() bool {
		for _, n := range c.nodes {
			if n.meta.isLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

func (c *testCluster) voters(n *Node) int {
	members, err := n.Members()
	if err != nil {
		return -1
	}
	v := 0
	for _, m := range members {
		if m.Voter {
			v++
		}
	}
	return v
}

func (c *testCluster) hasTask(n *Node, id string) bool {
	if n.Group(1) == nil {
		return false // still joining
	}
	_, err := n.Group(1).FSM().Get(id)
	return err == nil
}

func TestThreeNodeCluster(t *testing.T) {
	c := newTestCluster(t)
	c.replicas = 5 // every node in group 1
	first := c.start("n1", 3)
	seed := first.Status().GossipAddr
	c.start("n2", 3, seed)
	c.start("n3", 3, seed)

	leader := c.leader()
	c.waitFor(10*time.Second, "3 voters", func() bool { return c.voters(leader) == 3 })
	ctx := context.Background()
	if _, err := leader.Group(1).Propose(ctx, createCmd("a")); err != nil {
		t.Fatal(err)
	}
	for id, n := range c.nodes {
		c.waitFor(5*time.Second, "task a on "+id, func() bool { return c.hasTask(n, "a") })
		if lid, httpAddr, self := n.Group(1).Leader(); lid != leader.cfg.NodeID || httpAddr != "http-of-"+lid || self != (n == leader) {
			t.Fatalf("%s sees leader %q at %q (self %v)", id, lid, httpAddr, self)
		}
		if n != leader {
			if _, err := n.Group(1).Propose(ctx, createCmd("x")); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("propose on follower %s: %v, want ErrNotLeader", id, err)
			}
		}
	}
	members, err := leader.Members()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if !m.Alive || !m.InRaft || !m.Voter || m.GossipAddr == "" || m.RaftAddr == "" {
			t.Fatalf("member %+v", m)
		}
	}

	// The leader stops (handing leadership over); the others carry on.
	old := leader.cfg.NodeID
	stopped := time.Now()
	c.stop(old)
	leader = c.leader()
	t.Logf("new leader %s %v after the old one stopped", leader.cfg.NodeID, time.Since(stopped).Round(time.Millisecond))
	if _, err := leader.Group(1).Propose(ctx, createCmd("b")); err != nil {
		t.Fatal(err)
	}

	// The old leader comes back on its data and catches up.
	var alive string
	for id := range c.nodes {
		alive = c.nodes[id].Status().GossipAddr
	}
	back := c.start(old, 3, alive)
	c.waitFor(10*time.Second, old+" catching up", func() bool { return c.hasTask(back, "b") })

	// A fourth node that only joins is added by the leader as a voter.
	n4 := c.start("n4", 0, alive)
	c.waitFor(10*time.Second, "n4 a voter", func() bool { return c.voters(c.leader()) == 4 })
	c.waitFor(10*time.Second, "n4 replicating", func() bool { return c.hasTask(n4, "b") })

	// And an operator can remove it again (from the group, then from the
	// meta group, as the API does).
	leader = c.leader()
	if err := leader.Group(1).RemoveMember("n4"); err != nil {
		t.Fatal(err)
	}
	if err := c.metaLeader().RemoveMember("n4"); err != nil {
		t.Fatal(err)
	}
	if err := leader.Group(1).RemoveMember("nobody"); !errors.Is(err, ErrNoSuchMember) {
		t.Fatalf("remove of an unknown member: %v", err)
	}
	c.stop("n4")
	// The removals reach the leader's replica of the meta group; n4 still
	// looks alive in gossip for a while: it must not be re-added.
	c.waitFor(5*time.Second, "3 voters after removing n4", func() bool { return c.voters(leader) == 3 })
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if v := c.voters(leader); v != 3 {
			t.Fatalf("%d voters after removing n4", v)
		}
	}

	// A node that stops with LeaveOnStop is taken out by the leader; one
	// that just stops (above) stays a member.
	c.startWith("n5", Config{Join: []string{alive}, LeaveOnStop: true})
	c.waitFor(10*time.Second, "n5 a voter", func() bool { return c.voters(c.leader()) == 4 })
	c.stop("n5")
	c.waitFor(10*time.Second, "n5 removed after leaving", func() bool { return c.voters(c.leader()) == 3 })
}
