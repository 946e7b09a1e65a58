package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hourglass-scheduler/hourglass/slots"
)

// settle applies nextMove until it has nothing to do, checking that each
// move changes one replica or swaps the preferred leader, and returns the
// placement and the number of moves.
func settle(t *testing.T, p Placement, nodes []candidate, replicas int) (Placement, int) {
	t.Helper()
	for moves := 0; ; moves++ {
		m, ok := nextMove(p, nodes, replicas)
		if !ok {
			return p, moves
		}
		if moves > 1000 {
			t.Fatalf("no end to the moves; last %v", m)
		}
		before := p.Replicas[m.Group]
		added, removed := 0, 0
		for _, id := range m.Replicas {
			if !slices.Contains(before, id) {
				added++
			}
		}
		for _, id := range before {
			if !slices.Contains(m.Replicas, id) {
				removed++
			}
		}
		if added > 1 || removed > 1 || added+removed == 0 && slices.Equal(before, m.Replicas) {
			t.Fatalf("move %v from %v changes more (or less) than one replica", m, before)
		}
		p = p.clone()
		p.Replicas[m.Group] = m.Replicas
	}
}

// checkEven asserts the placement's goals: replicas (or every live node)
// per group, on live nodes only, the load and preferred leaders even give
// or take one.
func checkEven(t *testing.T, p Placement, nodes []candidate, replicas int) {
	t.Helper()
	live, up := 0, 0
	isLive := map[string]bool{}
	for _, n := range nodes {
		if !n.Gone {
			live++
			isLive[n.ID] = true
			if n.Alive {
				up++
			}
		}
	}
	load := map[string]int{}
	for g := slots.Group(1); g <= slots.Group(p.Groups); g++ {
		reps := p.Replicas[g]
		// A node that is down keeps its replicas but takes no new ones.
		if len(reps) > min(replicas, live) || len(reps) < min(replicas, up) {
			t.Fatalf("group %d has %d replicas %v, want %d (%d nodes up)", g, len(reps), reps, min(replicas, live), up)
		}
		for _, id := range reps {
			load[id]++
			if isLive[id] {
				continue
			}
			// Only when no node that is up could take it instead.
			for _, n := range nodes {
				if n.Alive && !n.Gone && !slices.Contains(reps, n.ID) {
					t.Fatalf("group %d keeps a replica on %s, which is gone, though %s could take it", g, id, n.ID)
				}
			}
		}
	}
	lo, hi := 1<<30, 0
	for _, n := range nodes {
		if n.Alive && !n.Gone {
			lo, hi = min(lo, load[n.ID]), max(hi, load[n.ID])
		}
	}
	if hi-lo > 1 {
		t.Fatalf("uneven replicas %v", load)
	}
}

func nodesNamed(ids ...string) []candidate {
	var out []candidate
	for _, id := range ids {
		out = append(out, candidate{ID: id, Alive: true})
	}
	return out
}

func TestPlacementOfANewCluster(t *testing.T) {
	// Made as a cluster is bootstrapped: every group on every node.
	for _, tc := range []struct{ nodes, groups, replicas int }{
		{1, 1, 3}, {1, 4, 3}, {3, 3, 3}, {3, 6, 3}, {5, 5, 3}, {5, 10, 3}, {5, 5, 5}, {4, 6, 3}, {7, 16, 3},
	} {
		t.Run(fmt.Sprintf("%d nodes %d groups %d replicas", tc.nodes, tc.groups, tc.replicas), func(t *testing.T) {
			var ids []string
			for i := range tc.nodes {
				ids = append(ids, fmt.Sprintf("n%d", i+1))
			}
			nodes := nodesNamed(ids...)
			p := Placement{Groups: tc.groups, Replicas: map[slots.Group][]string{}}
			for g := 1; g <= tc.groups; g++ {
				p.Replicas[slots.Group(g)] = slices.Clone(ids)
			}
			p, _ = settle(t, p, nodes, tc.replicas)
			checkEven(t, p, nodes, tc.replicas)
			leads := map[string]int{}
			for g := slots.Group(1); g <= slots.Group(p.Groups); g++ {
				leads[p.Replicas[g][0]]++
			}
			lo, hi := 1<<30, 0
			for _, id := range ids {
				lo, hi = min(lo, leads[id]), max(hi, leads[id])
			}
			if tc.groups >= tc.nodes && hi-lo > 1 {
				t.Fatalf("preferred leaders uneven: %v in %v", leads, p.Replicas)
			}
		})
	}
}

func TestPlacementFollowsNodesThatComeAndGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		groups := 1 + rng.IntN(12)
		replicas := 1 + rng.IntN(5)
		var nodes []candidate
		for i := range 1 + rng.IntN(7) {
			nodes = append(nodes, candidate{ID: fmt.Sprintf("n%d", i), Alive: true})
		}
		p := Placement{Groups: groups, Replicas: map[slots.Group][]string{}}
		for g := 1; g <= groups; g++ {
			p.Replicas[slots.Group(g)] = []string{nodes[0].ID}
		}
		p, _ = settle(t, p, nodes, replicas)
		checkEven(t, p, nodes, replicas)
		// A node joins, one dies for good, one is down for a while.
		nodes = append(nodes, candidate{ID: fmt.Sprintf("n%d", len(nodes)), Alive: true})
		nodes[rng.IntN(len(nodes))].Gone = true
		nodes[rng.IntN(len(nodes))].Alive = false
		p, moves := settle(t, p, nodes, replicas)
		checkEven(t, p, nodes, replicas)
		if moves > 4*groups*replicas+groups {
			t.Fatalf("round %d: %d moves to follow one join and one loss", round, moves)
		}
	}
}

func TestPlacementMovesNothingOnceEven(t *testing.T) {
	nodes := nodesNamed("a", "b", "c", "d")
	p := Placement{Groups: 4, Replicas: map[slots.Group][]string{
		1: {"a", "b", "c"}, 2: {"b", "c", "d"}, 3: {"c", "d", "a"}, 4: {"d", "a", "b"}}}
	if m, ok := nextMove(p, nodes, 3); ok {
		t.Fatalf("an even placement moved: %v", m)
	}
	// A node merely down keeps its replicas.
	nodes[1].Alive = false
	if m, ok := nextMove(p, nodes, 3); ok {
		t.Fatalf("a node that is down lost a replica: %v", m)
	}
	// One that is gone does not.
	nodes[1].Gone = true
	m, ok := nextMove(p, nodes, 3)
	if !ok || m.Group != 1 || !slices.Equal(m.Replicas, []string{"a", "d", "c"}) {
		t.Fatalf("gone b: got %v, %v; want group 1 -> [a d c]", m, ok)
	}
}
