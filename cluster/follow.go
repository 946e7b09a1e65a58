package cluster

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hourglass-scheduler/hourglass/slots"
)

// DefaultReplicas is how many voting replicas each group has (fewer while
// the cluster has fewer nodes).
const DefaultReplicas = 3

// DefaultDeadAfter is how long a member may be unreachable before the
// replicas it holds are moved to other nodes (CockroachDB waits five
// minutes too): long enough for a restart or an upgrade, short enough that
// a lost machine is not a lasting risk.
const DefaultDeadAfter = 5 * time.Minute

// DefaultBalanceInterval is the least time between two hand-overs of a
// group's leadership to its preferred leader (see reconcilePlacement).
const DefaultBalanceInterval = 2 * time.Second

// moveTimeout bounds how long the placement waits for a move to be
// carried out before it makes the next: a group without a quorum cannot
// change its configuration, and must not hold up the others for ever.
const moveTimeout = time.Minute

// Replica states, one character per group, published in gossip (see
// nodeMeta.State).
const (
	stateNone     = '.' // no replica here
	stateFollower = 'r' // a replica that is not caught up, or knows no leader
	stateReady    = 'R' // a caught-up follower
	stateLeader   = 'L' // the leader; its configuration is not the placement's yet
	stateSettled  = 'S' // the leader, its configuration the placement's
)

// groupStates is the state of each of the placement's groups on this
// node; a leader's configuration is settled only if it was found to be
// the placement's as it is now.
func (n *Node) groupStates(p Placement) string {
	var b strings.Builder
	for id := slots.Group(1); id <= slots.Group(p.Groups); id++ {
		g := n.Group(id)
		switch {
		case g == nil:
			b.WriteByte(stateNone)
		case g.IsLeader() && g.settledAt.Load() >= max(p.Changed[id], 1):
			b.WriteByte(stateSettled)
		case g.IsLeader():
			b.WriteByte(stateLeader)
		case g.Ready() == nil:
			b.WriteByte(stateReady)
		default:
			b.WriteByte(stateFollower)
		}
	}
	return b.String()
}

// peers is what each member alive in gossip publishes, by id; without
// gossip, this node alone.
func (n *Node) peers() map[string]nodeMeta {
	if n.gossip == nil {
		return map[string]nodeMeta{n.cfg.NodeID: n.localMeta()}
	}
	return n.gossip.alive()
}

// localMeta is what this node would publish, were gossip on.
func (n *Node) localMeta() nodeMeta {
	p, index := n.meta.fsm.read()
	return nodeMeta{ID: n.cfg.NodeID, Raft: n.raftAddr, HTTP: n.cfg.HTTPAdvertise, Groups: p.Groups,
		State: n.groupStates(p), MetaIndex: index}
}

// stateOf is the state member m publishes for group id.
func stateOf(m nodeMeta, id slots.Group) byte {
	if int(id) < 1 || int(id) > len(m.State) {
		return stateNone
	}
	return m.State[id-1]
}

// settled reports whether group id's leader publishes that its
// configuration is the placement's, as of the placement's last move of
// the group.
func settled(peers map[string]nodeMeta, p Placement, id slots.Group) bool {
	for _, m := range peers {
		if stateOf(m, id) == stateSettled && m.MetaIndex >= p.Changed[id] {
			return true
		}
	}
	return false
}

// followPlacement runs on every node: it opens the replicas the placement
// puts here, closes (and deletes) those it moved away once their group's
// configuration no longer has this node, and publishes each replica's
// state in gossip, for the group leaders and the placement to act on.
func (n *Node) followPlacement(ctx context.Context) {
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	for {
		if err := n.followOnce(); err != nil {
			n.log.Warn("follow the placement", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-n.meta.fsm.changed:
		}
	}
}

func (n *Node) followOnce() error {
	p, index := n.meta.fsm.read()
	if p.Groups == 0 {
		return nil
	}
	if n.Table() == nil {
		n.log.Info("joining a cluster", "groups", p.Groups)
		if err := n.adopt(p.Groups); err != nil {
			return err
		}
	}
	for _, id := range p.Hosts(n.cfg.NodeID) {
		if n.Group(id) == nil {
			n.log.Info("opening a replica the placement puts here", "group", uint32(id), "replicas", p.Replicas[id])
			if err := n.openGroup(id); err != nil {
				return err
			}
		}
	}
	peers := n.peers()
	for _, g := range n.Groups() {
		if slices.Contains(p.Replicas[g.id], n.cfg.NodeID) || g.IsLeader() || !settled(peers, p, g.id) {
			continue
		}
		n.log.Info("removing a replica the placement moved away", "group", uint32(g.id), "replicas", p.Replicas[g.id])
		if err := n.removeReplica(g); err != nil {
			return err
		}
	}
	if n.gossip != nil {
		states := n.groupStates(p)
		return n.gossip.publish(func(m *nodeMeta) { m.State, m.MetaIndex = states, index })
	}
	return nil
}

// removedSuffix marks the directory of a replica being deleted.
const removedSuffix = ".removed"

// removeReplica closes replica g and deletes its directory.
func (n *Node) removeReplica(g *Group) error {
	n.mu.Lock()
	delete(n.groups, g.id)
	onRemove := n.onRemove
	n.mu.Unlock()
	if onRemove != nil {
		onRemove(g)
	}
	if err := g.close(); err != nil {
		n.log.Warn("close a replica being removed", "group", uint32(g.id), "err", err)
	}
	g.metrics.unregister()
	// Renamed first, so that a crash part way leaves no half a replica
	// where the next start would open it.
	trash := g.dir + removedSuffix
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("group %d: remove replica: %w", g.id, err)
	}
	if err := os.Rename(g.dir, trash); err != nil {
		return fmt.Errorf("group %d: remove replica: %w", g.id, err)
	}
	return os.RemoveAll(trash)
}

// placeReplicas runs the placement while this node leads the meta group:
// it writes the first placement of a cluster, then makes one move at a
// time (nextMove) as members join, leave, or stay dead for DeadAfter,
// waiting for each to be carried out (every group's leader publishing its
// configuration settled) before the next, for at most moveTimeout. A
// move off a gone node does not wait: a group that has a replica placed
// there may be unable to settle until it is moved.
func (n *Node) placeReplicas(ctx context.Context) {
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	downSince := map[string]time.Time{}
	var lastMove time.Time
	wasLeader := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if !n.meta.isLeader() {
			wasLeader = false
			continue
		}
		if !wasLeader {
			// Deaths count from when this node took over; and the moves
			// of the previous leader get their time.
			wasLeader, lastMove = true, time.Now()
			clear(downSince)
		}
		p, ok := n.meta.placement()
		if !ok {
			if err := n.writeFirstPlacement(); err != nil {
				n.log.Warn("write the first placement", "err", err)
			}
			continue
		}
		peers := n.peers()
		nodes, err := n.candidates(peers, downSince)
		if err != nil {
			n.log.Warn("placement: read the meta group's members", "err", err)
			continue
		}
		m, ok := nextMove(p, nodes, n.cfg.Replicas)
		if !ok {
			continue
		}
		waiting := false
		for id := slots.Group(1); id <= slots.Group(p.Groups); id++ {
			waiting = waiting || !settled(peers, p, id)
		}
		if waiting && !m.Replaces && time.Since(lastMove) < moveTimeout {
			continue
		}
		n.log.Info("placement: moving a replica", "group", uint32(m.Group), "from", p.Replicas[m.Group], "to", m.Replicas, "why", m.Why)
		if err := n.meta.propose(metaCommand{Op: "place", Group: m.Group, Replicas: m.Replicas}); err != nil {
			n.log.Warn("placement: write a move", "err", err)
			continue
		}
		lastMove = time.Now()
	}
}

// candidates are the meta group's members as the placement sees them.
func (n *Node) candidates(peers map[string]nodeMeta, downSince map[string]time.Time) ([]candidate, error) {
	future := n.meta.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return nil, err
	}
	var left []string
	if n.gossip != nil {
		left = n.gossip.left()
	}
	var out []candidate
	now := time.Now()
	for _, s := range future.Configuration().Servers {
		id := string(s.ID)
		m, alive := peers[id]
		if alive {
			delete(downSince, id)
		} else if _, ok := downSince[id]; !ok {
			downSince[id] = now
		}
		gone := slices.Contains(left, id) || m.Leaving ||
			!alive && now.Sub(downSince[id]) >= n.cfg.DeadAfter
		out = append(out, candidate{ID: id, Alive: alive, Gone: gone})
	}
	return out, nil
}

// writeFirstPlacement places a cluster's groups when the meta group has
// no placement yet: each where this node's replica says its voters are
// (a cluster made by an earlier release, or just bootstrapped), or on the
// meta group's voters; the preferred leaders taking the voters in turn.
// The placement then moves to its goals one move at a time.
func (n *Node) writeFirstPlacement() error {
	table := n.Table()
	if table == nil {
		return nil // a leader that joined late learns the count first
	}
	future := n.meta.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return err
	}
	var metaVoters []string
	for _, s := range future.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			metaVoters = append(metaVoters, string(s.ID))
		}
	}
	p := Placement{Groups: table.Groups(), Replicas: map[slots.Group][]string{}, Changed: map[slots.Group]uint64{}}
	for id := slots.Group(1); id <= slots.Group(p.Groups); id++ {
		voters := metaVoters
		if g := n.Group(id); g != nil {
			if v := g.voters(); len(v) > 0 {
				voters = v
			}
		}
		voters = slices.Sorted(slices.Values(voters))
		k := int(id-1) % len(voters)
		p.Replicas[id] = append(slices.Clone(voters[k:]), voters[:k]...)
	}
	n.log.Info("writing the first placement", "groups", p.Groups)
	return n.meta.propose(metaCommand{Op: "init", Init: &p})
}

// voters are the ids of the group's voters, as this replica knows them.
func (g *Group) voters() []string {
	future := g.raft.GetConfiguration()
	if future.Error() != nil {
		return nil
	}
	var out []string
	for _, s := range future.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			out = append(out, string(s.ID))
		}
	}
	return out
}

// reconcilePlacement brings the configuration of a group this node leads
// to its placement, one raft membership change per call: a node placed
// here but missing is added as a non-voter (once it publishes that it has
// seen the placement, and so opened its replica), promoted once it
// publishes that it caught up; then, once every placed node votes, nodes
// not placed are removed (this one last, after handing leadership to a
// placed voter); and leadership goes to the preferred leader. It records
// whether the configuration is the placement's (settledAt), which this
// node publishes: every placed node that is up votes, and no other node
// is in it. A placed node that is down (or was removed by an operator)
// is added when it is back; the placement moves its replica away if it
// stays down.
//
// p is the placement as of meta index index, and peers what the members
// publish: read once for all the groups of a round, and together, so that
// settledAt never names an index later than the placement it compared.
func (g *Group) reconcilePlacement(p Placement, index uint64, peers map[string]nodeMeta) error {
	n := g.node
	want := p.Replicas[g.id]
	if len(want) == 0 {
		return nil // no placement known yet
	}
	future := g.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return err
	}
	servers := future.Configuration().Servers
	self := n.cfg.NodeID
	isSettled := false
	defer func() {
		if !isSettled {
			g.settledAt.Store(0)
		}
	}()
	find := func(id string) (raft.Server, bool) {
		for _, s := range servers {
			if string(s.ID) == id {
				return s, true
			}
		}
		return raft.Server{}, false
	}
	allVoters := true // every placed node votes
	pending := false  // a placed node that is up does not vote yet
	for _, id := range want {
		s, in := find(id)
		m, alive := peers[id]
		up := alive && m.Raft != "" && !n.wasRemoved(id, m.Instance)
		switch {
		case in && up && id != self && string(s.Address) != m.Raft:
			// The node came back at another address (or wiped): take the
			// stale entry out; the next call adds it back.
			g.log.Info("removing a stale raft member", "id", id, "addr", s.Address, "now", m.Raft)
			return g.raft.RemoveServer(s.ID, 0, 0).Error()
		case !in:
			allVoters = false
			if !up {
				continue // added once it is back
			}
			pending = true
			if m.MetaIndex < p.Changed[g.id] {
				continue // not yet: it has not opened its replica
			}
			if err := n.checkMemberTLS(m.Raft); err != nil {
				g.log.Warn("not adding a member: its raft address failed the cluster's TLS check", "id", id, "raft_addr", m.Raft, "err", err)
				continue
			}
			g.log.Info("adding a non-voter the placement puts here", "id", id, "raft_addr", m.Raft)
			return g.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(m.Raft), 0, 0).Error()
		case s.Suffrage != raft.Voter:
			allVoters, pending = false, true
			if stateOf(m, g.id) != stateReady {
				continue // catching up
			}
			g.log.Info("promoting a caught-up replica to voter", "id", id)
			return g.raft.AddVoter(s.ID, s.Address, 0, 0).Error()
		}
	}
	extra := 0 // servers not placed, kept for now
	for _, s := range servers {
		if slices.Contains(want, string(s.ID)) {
			continue
		}
		if _, alive := peers[string(s.ID)]; !allVoters && alive {
			// Removed once every placed node votes (one that is down
			// at once: it keeps no data safe, and counts against the
			// quorum).
			extra++
			continue
		}
		if string(s.ID) == self {
			if time.Since(g.lastTransfer) < n.cfg.BalanceInterval {
				extra++
				continue
			}
			g.lastTransfer = time.Now()
			g.log.Info("handing leadership to a placed voter before leaving the group", "placed", want)
			return g.transferTo(want, peers)
		}
		g.log.Info("removing a member the placement moved away", "id", s.ID)
		return g.raft.RemoveServer(s.ID, 0, 0).Error()
	}
	if pending || extra > 0 {
		return nil
	}
	// The configuration is the placement's. Leadership goes to the
	// preferred leader when it is up and caught up (with one group,
	// wherever it was elected is as good).
	if first := want[0]; first != self && p.Groups > 1 && stateOf(peers[first], g.id) == stateReady {
		if time.Since(g.lastTransfer) >= n.cfg.BalanceInterval {
			g.lastTransfer = time.Now()
			g.log.Info("handing leadership to the group's preferred leader", "to", first)
			return g.transferTo([]string{first}, peers)
		}
		return nil
	}
	g.settledAt.Store(max(index, 1))
	isSettled = true
	return nil
}

// transferTo hands leadership to the first of ids that is a voter and
// publishes a caught-up replica, if any: a transfer to a node that cannot
// take over holds every write of the group until it times out.
func (g *Group) transferTo(ids []string, peers map[string]nodeMeta) error {
	future := g.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return err
	}
	for _, id := range ids {
		if id == g.node.cfg.NodeID || stateOf(peers[id], g.id) != stateReady {
			continue
		}
		for _, s := range future.Configuration().Servers {
			if string(s.ID) == id && s.Suffrage == raft.Voter {
				return g.raft.LeadershipTransferToServer(s.ID, s.Address).Error()
			}
		}
	}
	return nil // none can take over now: the next call looks again
}

// LeaderOf names the leader of group id (MetaGroup: the meta group) and
// its HTTP address: as this
// node's replica knows it, or, for a group without a replica here, as
// gossip tells it (a member publishing that it leads the group). The id
// is empty while no leader is known.
func (n *Node) LeaderOf(id slots.Group) (leaderID, httpAddr string) {
	if id == MetaGroup {
		return n.metaLeader()
	}
	if g := n.Group(id); g != nil {
		leaderID, httpAddr, _ = g.Leader()
		return leaderID, httpAddr
	}
	for pid, m := range n.peers() {
		if c := stateOf(m, id); (c == stateLeader || c == stateSettled) && (leaderID == "" || pid < leaderID) {
			leaderID, httpAddr = pid, m.HTTP
		}
	}
	return leaderID, httpAddr
}

// Replica is one node the placement puts a group on, as gossip tells it.
type Replica struct {
	ID string
	// State is leader, follower (caught up), catching-up, or absent
	// (no replica yet).
	State string
	Alive bool
}

// PlacedReplicas lists the nodes the placement puts group id on, with
// what each publishes of its replica.
func (n *Node) PlacedReplicas(id slots.Group) []Replica {
	p, _ := n.meta.placement()
	peers := n.peers()
	var out []Replica
	for _, rid := range p.Replicas[id] {
		m, alive := peers[rid]
		r := Replica{ID: rid, Alive: alive, State: "absent"}
		switch stateOf(m, id) {
		case stateLeader, stateSettled:
			r.State = "leader"
		case stateReady:
			r.State = "follower"
		case stateFollower:
			r.State = "catching-up"
		}
		out = append(out, r)
	}
	return out
}

// metaLeader names the meta group's leader and its HTTP address.
func (n *Node) metaLeader() (leaderID, httpAddr string) {
	_, id := n.meta.raft.LeaderWithID()
	leaderID = string(id)
	switch {
	case leaderID == "":
	case leaderID == n.cfg.NodeID:
		httpAddr = n.cfg.HTTPAdvertise
	default:
		httpAddr = n.peers()[leaderID].HTTP
	}
	return leaderID, httpAddr
}

// RemoveMember takes a node out of the meta group, and so out of the
// placement: the replicas it held move to other nodes at once, and this
// run of it is not added back (the groups' leaders take it out of their
// configurations as the replicas move, or at once with
// Group.RemoveMember). Only the meta group's leader can (ErrNotLeader).
func (n *Node) RemoveMember(id string) error {
	if err := n.removeServer(n.meta.raft, id); err != nil {
		return err
	}
	n.meta.log.Info("removed a member", "id", id)
	return nil
}
