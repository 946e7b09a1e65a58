package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/slots"
)

// placedEvenly reports whether the running nodes hold the groups as the
// placement wants them: every group's leader has exactly the replicas the
// placement names, all voters on running nodes, and each node holds
// replicas of the groups placed on it and no others.
func (c *testCluster) placedEvenly(groups, replicas int) bool {
	var p Placement
	for _, n := range c.nodes {
		if q, ok := n.meta.placement(); ok && n.meta.isLeader() {
			p = q
		}
	}
	if p.Groups != groups {
		return false
	}
	held := 0
	for id, n := range c.nodes {
		var have []slots.Group
		for _, g := range n.Groups() {
			have = append(have, g.ID())
		}
		if !slices.Equal(have, p.Hosts(id)) {
			return false
		}
		held += len(have)
		for _, g := range n.Groups() {
			if !g.IsLeader() {
				continue
			}
			voters := g.voters()
			if len(voters) != replicas || len(voters) != len(p.Replicas[g.ID()]) {
				return false
			}
			for _, v := range voters {
				if c.nodes[v] == nil || !slices.Contains(p.Replicas[g.ID()], v) {
					return false
				}
			}
		}
	}
	return held == groups*replicas
}

// leaderOf returns the node leading group id.
func (c *testCluster) leaderOf(id slots.Group) *Node {
	c.t.Helper()
	var leader *Node
	c.waitFor(15*time.Second, fmt.Sprintf("a leader of group %d", id), func() bool {
		for _, n := range c.nodes {
			if g := n.Group(id); g != nil && g.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// proposeToLeader proposes cmd, which must be idempotent, through group
// id's leader, again through the next one if leadership moved (the
// balancer hands it on) between finding the leader and proposing, or
// while the proposal was in flight.
func (c *testCluster) proposeToLeader(id slots.Group, cmd *fsmpb.Command) {
	c.t.Helper()
	c.waitFor(30*time.Second, fmt.Sprintf("a proposal committed through group %d's leader", id), func() bool {
		_, err := c.leaderOf(id).Group(id).Propose(context.Background(), cmd)
		if err != nil && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrIndeterminate) {
			c.t.Fatal(err)
		}
		return err == nil
	})
}

// Five nodes hold three replicas of each of five groups, three groups a
// node, each leading one. When a node dies for good (past DeadAfter), its
// replicas move to the others, one at a time and without losing what
// they hold; replicas moved away are deleted. A node an operator removes
// loses its replicas at once.
func TestPlacementOnFiveNodes(t *testing.T) {
	c := newTestCluster(t)
	cfg := Config{BootstrapExpect: 5, Groups: 5, DeadAfter: 2 * time.Second, BalanceInterval: 100 * time.Millisecond}
	first := c.startWith("n1", cfg)
	cfg.Join = []string{first.Status().GossipAddr}
	for i := 2; i <= 5; i++ {
		c.startWith(fmt.Sprintf("n%d", i), cfg)
	}
	c.waitFor(60*time.Second, "three replicas of each group, three on each node", func() bool { return c.placedEvenly(5, 3) })
	c.waitFor(30*time.Second, "each node leading one group", func() bool {
		leading := map[string]int{}
		for id, n := range c.nodes {
			for _, g := range n.Groups() {
				if g.IsLeader() {
					leading[id]++
				}
			}
		}
		return len(leading) == 5
	})
	c.waitFor(10*time.Second, "the directories of replicas moved away deleted", func() bool {
		for _, n := range c.nodes {
			entries, err := os.ReadDir(filepath.Join(n.cfg.DataDir, "groups"))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 3 {
				return false
			}
		}
		return true
	})

	for id := slots.Group(1); id <= 5; id++ {
		c.proposeToLeader(id, createCmd(fmt.Sprintf("task-%d", id)))
	}

	// n3 dies for good: its three replicas move to the four left.
	c.stop("n3")
	c.waitFor(90*time.Second, "three replicas of each group on the four left", func() bool { return c.placedEvenly(5, 3) })
	for id, n := range c.nodes {
		for _, g := range n.Groups() {
			c.waitFor(10*time.Second, fmt.Sprintf("task-%d on %s", g.ID(), id), func() bool {
				_, err := g.FSM().Get(fmt.Sprintf("task-%d", g.ID()))
				return err == nil
			})
		}
	}

	// An operator removes n5 (still running), as the API does: from each
	// group's configuration, then from the meta group. Its replicas move
	// to the three left at once.
	for id := slots.Group(1); id <= 5; id++ {
		leader := c.leaderOf(id)
		if err := leader.Group(id).RemoveMember("n5"); err != nil && !errors.Is(err, ErrNoSuchMember) {
			t.Fatalf("remove n5 from group %d: %v", id, err)
		}
	}
	metaLeader := c.metaLeader()
	if err := metaLeader.RemoveMember("n5"); err != nil {
		t.Fatal(err)
	}
	if err := metaLeader.RemoveMember("n5"); !errors.Is(err, ErrNoSuchMember) {
		t.Fatalf("removing n5 again: %v, want ErrNoSuchMember", err)
	}
	// The operator stops it (a removed node still running is no longer
	// told where the groups are, so keeps what it held until then).
	c.stop("n5")
	c.waitFor(60*time.Second, "every group on the three left", func() bool { return c.placedEvenly(5, 3) })
}

// A cluster made by the release before the meta group (its nodes hold
// groups but no meta/ directory) starts one when restarted: the lowest
// id among group 1's voters creates it with them, the placement starts
// where the groups are, and nothing they hold is lost.
func TestMetaGroupStartsOnAnOlderCluster(t *testing.T) {
	c := newTestCluster(t)
	cfg := Config{BootstrapExpect: 3, Groups: 2}
	first := c.startWith("n1", cfg)
	cfg.Join = []string{first.Status().GossipAddr}
	c.startWith("n2", cfg)
	c.startWith("n3", cfg)
	c.waitFor(30*time.Second, "two groups on the three nodes", func() bool { return c.placedEvenly(2, 3) })
	for id := slots.Group(1); id <= 2; id++ {
		c.proposeToLeader(id, createCmd(fmt.Sprintf("old-%d", id)))
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		c.stop(id)
		if err := os.RemoveAll(metaDir(c.dirs[id])); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"n3", "n2", "n1"} {
		c.startWith(id, cfg)
	}
	c.waitFor(30*time.Second, "the placement back, with two groups on the three nodes", func() bool { return c.placedEvenly(2, 3) })
	if !c.logs.has("starting the meta group of this node's cluster", "voters=3") {
		t.Fatal("no node started the meta group from the groups' voters")
	}
	for id, n := range c.nodes {
		for _, g := range n.Groups() {
			c.waitFor(10*time.Second, fmt.Sprintf("old-%d on %s", g.ID(), id), func() bool {
				_, err := g.FSM().Get(fmt.Sprintf("old-%d", g.ID()))
				return err == nil
			})
		}
	}
}
