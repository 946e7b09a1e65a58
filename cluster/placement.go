package cluster

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hourglass-scheduler/hourglass/slots"
)

// Placement says where the replicas of the cluster's groups live: for
// each group, the nodes that hold a voting replica of it, the first of
// them the group's preferred leader. The meta group holds it; its leader
// changes it one move at a time (nextMove), and each group's leader
// brings the group's raft configuration to it.
type Placement struct {
	// Groups is how many groups the cluster has (fixed at creation).
	Groups int `json:"groups"`
	// Replicas lists each group's nodes, by id.
	Replicas map[slots.Group][]string `json:"replicas"`
	// Changed is the meta log index of each group's last move: a report
	// that a group's configuration matches its placement counts only from
	// a node that has applied that index.
	Changed map[slots.Group]uint64 `json:"changed"`
}

// clone is a deep copy of p.
func (p Placement) clone() Placement {
	out := Placement{Groups: p.Groups, Replicas: make(map[slots.Group][]string, len(p.Replicas)),
		Changed: make(map[slots.Group]uint64, len(p.Changed))}
	for g, r := range p.Replicas {
		out.Replicas[g] = slices.Clone(r)
	}
	for g, i := range p.Changed {
		out.Changed[g] = i
	}
	return out
}

// Hosts lists the groups that place a replica on node id.
func (p Placement) Hosts(id string) []slots.Group {
	var out []slots.Group
	for g := slots.Group(1); g <= slots.Group(p.Groups); g++ {
		if slices.Contains(p.Replicas[g], id) {
			out = append(out, g)
		}
	}
	return out
}

// candidate is a member of the cluster as the placement sees it.
type candidate struct {
	ID string
	// Alive: gossip hears from it, so it can take a new replica.
	Alive bool
	// Gone: it left, was removed, or has been dead for longer than
	// Config.DeadAfter: its replicas move to other nodes.
	Gone bool
}

// move is one change of the placement: group's replicas become Replicas.
type move struct {
	Group    slots.Group
	Replicas []string
	Why      string
	// Replaces says the move takes a replica off a gone node: it does not
	// wait for other moves to be carried out, since a group with a
	// replica placed on a node that is gone may not finish its own.
	Replaces bool
}

func (m move) String() string {
	return fmt.Sprintf("group %d -> [%s]: %s", m.Group, strings.Join(m.Replicas, " "), m.Why)
}

// nextMove is the one change that brings p closest to where it should be,
// or false when it is there: every group on replicas nodes (or on every
// node that is not gone, when there are fewer), none on a gone node,
// each node holding as many replicas as any other and being the preferred
// leader of as many groups, give or take one. The first rule that finds
// something to do makes the move, in this order: replace a gone node, add
// a missing replica, drop a surplus one, even out the replicas, even out
// the preferred leaders. Every move changes one replica (or swaps two
// places), and each rule moves towards its goal, so repeated moves end.
func nextMove(p Placement, nodes []candidate, replicas int) (move, bool) {
	nodes = slices.Clone(nodes)
	slices.SortFunc(nodes, func(a, b candidate) int { return strings.Compare(a.ID, b.ID) })
	live := map[string]bool{} // not gone
	alive := map[string]bool{}
	for _, n := range nodes {
		if !n.Gone {
			live[n.ID] = true
			alive[n.ID] = n.Alive
		}
	}
	target := min(replicas, len(live))
	if target == 0 || p.Groups == 0 {
		return move{}, false
	}
	load, leads := map[string]int{}, map[string]int{}
	for g := slots.Group(1); g <= slots.Group(p.Groups); g++ {
		for i, id := range p.Replicas[g] {
			load[id]++
			if i == 0 {
				leads[id]++
			}
		}
	}
	// addTo picks the alive node that takes a new replica of g: the one
	// with the fewest replicas, then the fewest groups it prefers to lead.
	addTo := func(g slots.Group) (string, bool) {
		best := ""
		for _, n := range nodes {
			if !live[n.ID] || !alive[n.ID] || slices.Contains(p.Replicas[g], n.ID) {
				continue
			}
			if best == "" || load[n.ID] < load[best] || load[n.ID] == load[best] && leads[n.ID] < leads[best] {
				best = n.ID
			}
		}
		return best, best != ""
	}
	with := func(g slots.Group, reps []string, why string, args ...any) (move, bool) {
		return move{Group: g, Replicas: reps, Why: fmt.Sprintf(why, args...)}, true
	}
	// 1. Replace the replicas of gone nodes.
	for g := slots.Group(1); g <= slots.Group(p.Groups); g++ {
		reps := p.Replicas[g]
		for i, id := range reps {
			if live[id] {
				continue
			}
			if to, ok := addTo(g); ok {
				next := slices.Clone(reps)
				next[i] = to
				m, _ := with(g, next, "%s is gone: its replica moves to %s", id, to)
				m.Replaces = true
				return m, true
			}
			if len(reps) > 1 {
				m, _ := with(g, slices.Delete(slices.Clone(reps), i, i+1), "%s is gone, and no other node can take its replica", id)
				m.Replaces = true
				return m, true
			}
		}
	}
	// 2. Add missing replicas.
	for g := slots.Group(1); g <= slots.Group(p.Groups); g++ {
		if len(p.Replicas[g]) < target {
			if to, ok := addTo(g); ok {
				return with(g, append(slices.Clone(p.Replicas[g]), to), "%d of %d replicas: adding one on %s", len(p.Replicas[g]), target, to)
			}
		}
	}
	// 3. Drop surplus replicas: the busiest node's.
	for g := slots.Group(1); g <= slots.Group(p.Groups); g++ {
		reps := p.Replicas[g]
		if len(reps) <= target {
			continue
		}
		drop := len(reps) - 1
		for i := len(reps) - 2; i >= 0; i-- {
			if load[reps[i]] > load[reps[drop]] {
				drop = i
			}
		}
		return with(g, slices.Delete(slices.Clone(reps), drop, drop+1), "%d of %d replicas: dropping the one on %s", len(reps), target, reps[drop])
	}
	// 4. Even out the replicas: from the node holding the most to the
	// alive node holding the fewest.
	var most, fewest string
	for _, n := range nodes {
		if !live[n.ID] {
			continue
		}
		if most == "" || load[n.ID] > load[most] {
			most = n.ID
		}
		if alive[n.ID] && (fewest == "" || load[n.ID] < load[fewest]) {
			fewest = n.ID
		}
	}
	if fewest != "" && load[most]-load[fewest] > 1 {
		for g := slots.Group(1); g <= slots.Group(p.Groups); g++ {
			reps := p.Replicas[g]
			if i := slices.Index(reps, most); i >= 0 && !slices.Contains(reps, fewest) {
				next := slices.Clone(reps)
				next[i] = fewest
				return with(g, next, "evening out replicas: %s holds %d, %s %d", most, load[most], fewest, load[fewest])
			}
		}
	}
	// 5. Even out the preferred leaders: a group preferring a node that is
	// preferred by the most hands the place to one of its replicas, or
	// along a chain of such hand-overs to a node preferred by at least
	// two fewer. The last hand-over of the shortest chain goes first, so
	// the next call finds the chain one shorter.
	if g, to, ok := leaderHandover(p, nodes, live, alive, leads); ok {
		next := slices.Clone(p.Replicas[g])
		i := slices.Index(next, to)
		next[0], next[i] = next[i], next[0]
		return with(g, next, "evening out leaders: %s is preferred by %d groups, %s by %d", p.Replicas[g][0], leads[p.Replicas[g][0]], to, leads[to])
	}
	return move{}, false
}

// leaderHandover finds the shortest chain of preferred-leader hand-overs
// from a node preferred by the most groups to an alive one preferred by
// two fewer, and returns its last step: the group and its new first.
func leaderHandover(p Placement, nodes []candidate, live, alive map[string]bool, leads map[string]int) (slots.Group, string, bool) {
	top := maxOf(leads, live)
	type step struct {
		from  string
		group slots.Group
	}
	via := map[string]step{}
	var queue []string
	for _, n := range nodes {
		if live[n.ID] && leads[n.ID] == top {
			via[n.ID] = step{}
			queue = append(queue, n.ID)
		}
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for g := slots.Group(1); g <= slots.Group(p.Groups); g++ {
			reps := p.Replicas[g]
			if len(reps) == 0 || reps[0] != u {
				continue
			}
			for _, v := range reps[1:] {
				if _, seen := via[v]; seen || !live[v] || !alive[v] {
					continue
				}
				via[v] = step{from: u, group: g}
				if leads[v] <= top-2 {
					return g, v, true
				}
				queue = append(queue, v)
			}
		}
	}
	return 0, "", false
}

func maxOf(counts map[string]int, among map[string]bool) int {
	m := 0
	for id := range among {
		m = max(m, counts[id])
	}
	return m
}
