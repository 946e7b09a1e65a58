package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	"github.com/hourglass-scheduler/hourglass/slots"
)

// maxVoters is how many voting members the leader keeps; more members join
// as non-voters (they replicate, and can be promoted by removing a voter).
const maxVoters = 5

// Member is a node as gossip and raft see it.
type Member struct {
	ID         string
	HTTPAddr   string
	RaftAddr   string
	GossipAddr string
	// Alive: gossip hears from it.
	Alive bool
	// InRaft: it is in the raft configuration; Voter says how.
	InRaft bool
	Voter  bool
	Leader bool
}

// nodeMeta is what a node tells the others about itself through gossip.
type nodeMeta struct {
	ID   string `json:"id"`
	Raft string `json:"raft"`
	HTTP string `json:"http"`
	// Formed: this node belongs to a cluster that has formed (it has raft
	// state, or has heard from a leader). A node without state never
	// bootstraps while a formed member is in sight.
	Formed bool `json:"formed,omitempty"`
	// Leaving: the node is leaving the cluster for good (LeaveOnStop).
	Leaving bool `json:"leaving,omitempty"`
	// Groups is how many raft groups the cluster has, published once
	// this node hosts its replicas of them (0 before): a joining node
	// learns the count here, and a leader adds only members that host
	// the group.
	Groups int `json:"groups,omitempty"`
	// Instance is new at every start of the process, so a removal can
	// name the run it removed.
	Instance string `json:"instance"`
	// State is the state of this node's replica of each group, one
	// character per group (stateNone and the others), and MetaIndex the
	// last meta group entry this node has applied and followed: the
	// group leaders and the placement act on them.
	State     string `json:"state,omitempty"`
	MetaIndex uint64 `json:"mi,omitempty"`
}

// gossip wraps memberlist: it publishes this node's addresses and pokes the
// reconciler when members come and go.
type gossip struct {
	list    *memberlist.Memberlist
	changed chan struct{} // poked on every membership event

	// publishMu serializes changes of this node's metadata with their
	// broadcasts: a change reads, edits and stores the metadata (two at
	// once would lose one), and memberlist's UpdateNode is not safe to
	// call concurrently (it reads the local node's record unlocked, and
	// two calls may take their incarnations in one order and the
	// metadata in the other, so the older metadata would win).
	publishMu sync.Mutex

	mu       sync.Mutex
	meta     nodeMeta
	encoded  []byte
	peers    map[string]peer // alive members by name, this node included
	departed map[string]bool // ids that left gracefully
}

// peer is what the events told of a member. memberlist's Members hands out
// its own node structs, which it goes on changing, so the members are
// copied here, from its events, instead.
type peer struct {
	meta nodeMeta
	addr string // gossip address
}

func newGossip(cfg Config, raftAddr string, formed bool, groups int) (*gossip, error) {
	g := &gossip{changed: make(chan struct{}, 1), peers: map[string]peer{}, departed: map[string]bool{}}
	instance := strconv.FormatUint(rand.Uint64(), 36)
	if err := g.setMeta(nodeMeta{ID: cfg.NodeID, Raft: raftAddr, HTTP: cfg.HTTPAdvertise, Formed: formed, Groups: groups, Instance: instance}); err != nil {
		return nil, err
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeID
	host, port, err := splitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.GossipAdvertise != "" {
		// memberlist wants an IP: resolve a host name.
		addr, err := net.ResolveTCPAddr("tcp", cfg.GossipAdvertise)
		if err != nil {
			return nil, fmt.Errorf("gossip advertise address %q: %w", cfg.GossipAdvertise, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = addr.IP.String(), addr.Port
	}
	if len(cfg.GossipKeys) > 0 {
		if mc.Keyring, err = memberlist.NewKeyring(cfg.GossipKeys, cfg.GossipKeys[0]); err != nil {
			return nil, fmt.Errorf("gossip keys: %w", err)
		}
	}
	// A member that restarts at another address (a container's new IP,
	// a test's new port) is taken back once the old one is declared dead;
	// without this memberlist refuses the new address for ever.
	mc.DeadNodeReclaimTime = time.Second
	// Replica states travel in the metadata, and group leaders and the
	// placement act on them: a state update is broadcast over UDP a few
	// times, and one lost under load (a full receive queue drops it) is
	// otherwise learnt only at the next full sync, 30 s by default. A
	// sync exchanges a few hundred bytes per member over TCP.
	mc.PushPullInterval = 5 * time.Second
	mc.Delegate = g
	mc.Events = g
	mc.Logger = newStdLog(cfg.Logger, "memberlist")
	if g.list, err = memberlist.Create(mc); err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.GossipAddr, err)
	}
	return g, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// Addr is the gossip address others reach this node at (from our own
// table: memberlist's LocalNode, like Members, hands out a struct it goes
// on changing).
func (g *gossip) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peers[g.meta.ID].addr
}

func (g *gossip) poke() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

func (g *gossip) setMeta(m nodeMeta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(data) > memberlist.MetaMaxSize {
		return fmt.Errorf("node metadata is %d bytes, over memberlist's %d", len(data), memberlist.MetaMaxSize)
	}
	g.mu.Lock()
	g.meta, g.encoded = m, data
	g.mu.Unlock()
	return nil
}

// markFormed publishes that this node belongs to a formed cluster.
func (g *gossip) markFormed() error {
	return g.publish(func(m *nodeMeta) { m.Formed = true })
}

// pushState exchanges state with every other member over TCP (a
// push-pull, as a join does), so that they learn this node's new
// metadata now: the leaders add a member only once they know it hosts
// the groups, and the UDP gossip that carries an update can be lost under
// load, leaving them to learn it at the next periodic push-pull (30 s).
func (g *gossip) pushState() {
	var addrs []string
	self := g.Addr()
	for _, addr := range g.gossipAddrs() {
		if addr != self {
			addrs = append(addrs, addr)
		}
	}
	if len(addrs) > 0 {
		g.list.Join(addrs) // best effort: the gossip gets there anyway
	}
}

// leave announces that this node is leaving for good, then leaves. (A
// receiver of memberlist's leave event cannot tell a leave from a failure,
// so the metadata says it first, and over TCP too: the UDP gossip that
// carries it can be lost under load, and the leader would then take the
// leave for a failure and keep the member.)
func (g *gossip) leave() error {
	if err := g.publish(func(m *nodeMeta) { m.Leaving = true }); err != nil {
		return err
	}
	// Best effort, and bounded: a member that is gone without gossip
	// knowing it yet would hold the push for memberlist's TCP timeout.
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		g.pushState()
	}()
	select {
	case <-pushed:
	case <-time.After(2 * time.Second):
	}
	return g.list.Leave(5 * time.Second)
}

// publish changes this node's metadata and queues its broadcast, without
// waiting for it to go out: waiting would hold publishMu, and with it
// every other change (the placement follower's replica states among
// them), for as long as the broadcast takes. Gossip gets it there; a
// caller that needs it there at once pushes it over TCP (pushState).
func (g *gossip) publish(change func(*nodeMeta)) error {
	g.publishMu.Lock()
	defer g.publishMu.Unlock()
	if changed, err := g.change(change); err != nil || !changed {
		return err
	}
	// The broadcast is queued before UpdateNode waits for it to be sent
	// (with no timeout it would wait for ever): its timeout is no error.
	g.list.UpdateNode(time.Millisecond)
	return nil
}

// change applies change to this node's metadata, reporting whether it
// changed anything. The caller holds publishMu.
func (g *gossip) change(change func(*nodeMeta)) (bool, error) {
	g.mu.Lock()
	m := g.meta
	g.mu.Unlock()
	before := m
	change(&m)
	if m == before {
		return false, nil
	}
	return true, g.setMeta(m)
}

// NodeMeta implements memberlist.Delegate: only metadata is used.
func (g *gossip) NodeMeta(limit int) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.encoded
}
func (g *gossip) NotifyMsg([]byte)                           {}
func (g *gossip) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (g *gossip) LocalState(join bool) []byte                { return nil }
func (g *gossip) MergeRemoteState(buf []byte, join bool)     {}

// NotifyJoin implements memberlist.EventDelegate.
func (g *gossip) NotifyJoin(n *memberlist.Node) { g.saw(n) }

// NotifyUpdate implements memberlist.EventDelegate.
func (g *gossip) NotifyUpdate(n *memberlist.Node) { g.saw(n) }

// saw records an alive member (memberlist holds its lock during events,
// so n is safe to read here, and only here). Metadata naming another id
// than the member's gossip name is ignored: one member cannot speak for
// another.
func (g *gossip) saw(n *memberlist.Node) {
	var m nodeMeta
	if json.Unmarshal(n.Meta, &m) != nil || m.ID != n.Name {
		m = nodeMeta{}
	}
	addr := net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	g.mu.Lock()
	g.peers[n.Name] = peer{meta: m, addr: addr}
	delete(g.departed, n.Name)
	g.mu.Unlock()
	g.poke()
}

// NotifyLeave implements memberlist.EventDelegate: the member is gone; if
// it had announced it was leaving, it is remembered as departed (for the
// leader to remove); a failure is not.
func (g *gossip) NotifyLeave(n *memberlist.Node) {
	g.mu.Lock()
	if p, ok := g.peers[n.Name]; ok && p.meta.Leaving {
		g.departed[n.Name] = true
	}
	delete(g.peers, n.Name)
	g.mu.Unlock()
	g.poke()
}

// alive returns the metadata of the members gossip hears from, by id.
func (g *gossip) alive() map[string]nodeMeta {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]nodeMeta, len(g.peers))
	for _, p := range g.peers {
		if p.meta.ID != "" {
			out[p.meta.ID] = p.meta
		}
	}
	return out
}

// left returns the ids of members that left the cluster gracefully (and
// have not rejoined since).
func (g *gossip) left() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.departed))
	for id := range g.departed {
		out = append(out, id)
	}
	return out
}

// gossipAddrs maps member ids to their gossip addresses.
func (g *gossip) gossipAddrs() map[string]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]string, len(g.peers))
	for name, p := range g.peers {
		out[name] = p.addr
	}
	return out
}

// join keeps trying to join the given gossip addresses, with backoff, until
// one answers or ctx ends.
func (n *Node) join(ctx context.Context, addrs []string) {
	delay := 200 * time.Millisecond
	for {
		joined, err := n.gossip.list.Join(addrs)
		if joined > 0 {
			n.log.Info("joined the cluster's gossip", "contacted", joined, "members", n.gossip.list.NumMembers())
			return
		}
		n.log.Warn("could not join yet; retrying", "addrs", addrs, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// awaitGroups runs on a node that does not know the cluster's groups yet
// (a new data directory, joining or forming a cluster). A member that
// leads the meta group adds it there, and it learns the groups and their
// placement from it (followPlacement). With BootstrapExpect, once that
// many members are alive in gossip and none belongs to a cluster yet, the
// one with the lowest id creates the cluster with all of them as voters
// of every group. Every node started with the same --bootstrap-expect and
// --join flags makes the same choice.
func (n *Node) awaitGroups(ctx context.Context) {
	expect := n.cfg.BootstrapExpect
	if expect > 1 {
		n.log.Info("waiting for members before bootstrapping", "expect", expect)
	} else {
		n.log.Info("waiting to learn the cluster's groups from its members", "join", n.cfg.Join)
	}
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	bootstrapper := ""
	for {
		if n.Table() != nil {
			return
		}
		alive := n.gossip.alive()
		formed := false
		for id, m := range alive {
			formed = formed || id != n.cfg.NodeID && (m.Groups > 0 || m.Formed)
		}
		if expect > 1 && !formed && len(alive) >= expect {
			ids := make([]string, 0, len(alive))
			for id := range alive {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			if ids[0] != n.cfg.NodeID {
				if bootstrapper != ids[0] {
					bootstrapper = ids[0]
					n.log.Info("members seen; another node bootstraps", "bootstrapper", ids[0])
				}
			} else if servers := n.bootstrapServers(ids, alive, expect); servers != nil {
				n.log.Info("bootstrapping the cluster", "voters", len(servers), "groups", n.cfg.Groups)
				if err := n.create(n.cfg.Groups, servers); err != nil {
					n.log.Error("bootstrap failed", "err", err)
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-n.gossip.changed:
			n.gossip.poke() // keep the signal for the reconciler too
		}
	}
}

// awaitMeta runs on a member of a cluster made by a release without the
// meta group: the member with the lowest id among the voters of its
// lowest group starts the meta group with those voters (who open their
// replicas of it at start and so take part), and writes the placement
// where the groups are. The others wait to hear from it.
func (n *Node) awaitMeta(ctx context.Context) {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		if existing, err := n.meta.hasState(); err != nil || existing {
			return
		}
		if groups := n.Groups(); len(groups) > 0 {
			future := groups[0].raft.GetConfiguration()
			if future.Error() == nil {
				var servers []raft.Server
				for _, s := range future.Configuration().Servers {
					if s.Suffrage == raft.Voter {
						servers = append(servers, s)
					}
				}
				slices.SortFunc(servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
				if len(servers) > 0 && string(servers[0].ID) == n.cfg.NodeID {
					n.log.Info("starting the meta group of this node's cluster", "voters", len(servers))
					if err := n.meta.bootstrap(servers); err != nil {
						n.log.Error("start the meta group", "err", err)
					}
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// bootstrapServers are the first expect members (by id) that pass the
// TLS check, or nil while there are fewer.
func (n *Node) bootstrapServers(ids []string, alive map[string]nodeMeta, expect int) []raft.Server {
	var servers []raft.Server
	for _, id := range ids {
		if err := n.checkMemberTLS(alive[id].Raft); err != nil {
			n.log.Warn("not bootstrapping with a member: its raft address failed the cluster's TLS check", "id", id, "raft_addr", alive[id].Raft, "err", err)
			continue
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(alive[id].Raft), Suffrage: raft.Voter})
		if len(servers) == expect {
			return servers
		}
	}
	return nil
}

// reconcile runs the membership of the groups this node leads: the meta
// group takes in every member alive in gossip (reconcileMeta), and each
// other group follows its placement (reconcilePlacement).
func (n *Node) reconcile(ctx context.Context) {
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	for {
		if n.meta.isLeader() {
			if err := n.reconcileMeta(); err != nil {
				n.meta.log.Warn("reconcile members", "err", err)
			}
		}
		p, index := n.meta.fsm.read()
		peers := n.peers()
		for _, g := range n.Groups() {
			if g.IsLeader() {
				if err := g.reconcilePlacement(p, index, peers); err != nil {
					g.log.Warn("reconcile the group with its placement", "err", err)
				}
			}
		}
		var gossipChanged chan struct{}
		if n.gossip != nil {
			gossipChanged = n.gossip.changed
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-gossipChanged:
		}
	}
}

// reconcileMeta puts every member alive in gossip into the meta group's
// configuration (voters up to maxVoters, then non-voters), and takes out
// one that left gracefully. A member that merely looks dead is left alone
// (it may come back); removing one is an operator's decision.
func (n *Node) reconcileMeta() error {
	if n.gossip == nil {
		return nil
	}
	r, log := n.meta.raft, n.meta.log
	future := r.GetConfiguration()
	if err := future.Error(); err != nil {
		return err
	}
	servers := future.Configuration().Servers
	voters := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	for _, id := range n.gossip.left() {
		for _, s := range servers {
			if string(s.ID) == id && id != n.cfg.NodeID {
				log.Info("removing a member that left", "id", id)
				if err := r.RemoveServer(s.ID, 0, 0).Error(); err != nil {
					return fmt.Errorf("remove %s, which left: %w", id, err)
				}
				return nil // the configuration changed: look again
			}
		}
	}
	alive := n.gossip.alive()
	for id, m := range alive {
		if m.Raft == "" || n.wasRemoved(id, m.Instance) {
			continue
		}
		current := false
		var stale []raft.Server
		for _, s := range servers {
			sameID, sameAddr := string(s.ID) == id, string(s.Address) == m.Raft
			switch {
			case sameID && sameAddr:
				current = true
			case sameID || sameAddr:
				// A stale entry: the id moved to a new address, or the
				// address now belongs to a new id (a wiped node).
				stale = append(stale, s)
			}
		}
		if current && len(stale) == 0 {
			continue
		}
		// Nothing changes for a member that fails the TLS check.
		if err := n.checkMemberTLS(m.Raft); err != nil {
			log.Warn("not adding a member: its raft address failed the cluster's TLS check", "id", id, "raft_addr", m.Raft, "err", err)
			continue
		}
		for _, s := range stale {
			log.Info("removing a stale raft member", "id", s.ID, "addr", s.Address, "for", id)
			if err := r.RemoveServer(s.ID, 0, 0).Error(); err != nil {
				return fmt.Errorf("remove stale %s: %w", s.ID, err)
			}
			if s.Suffrage == raft.Voter {
				voters--
			}
		}
		if current {
			continue
		}
		var f raft.IndexFuture
		if voters < maxVoters {
			log.Info("adding a voter", "id", id, "raft_addr", m.Raft)
			f = r.AddVoter(raft.ServerID(id), raft.ServerAddress(m.Raft), 0, 0)
		} else {
			log.Info("adding a non-voter", "id", id, "raft_addr", m.Raft)
			f = r.AddNonvoter(raft.ServerID(id), raft.ServerAddress(m.Raft), 0, 0)
		}
		if err := f.Error(); err != nil {
			return fmt.Errorf("add %s: %w", id, err)
		}
		return nil // the configuration changed: look again from the start
	}
	return nil
}

// members merges gossip and the group's raft configuration into one
// list, sorted by id.
func (g *Group) members() ([]Member, error) { return g.node.raftMembers(g.raft) }

// raftMembers merges gossip and a raft configuration into one list,
// sorted by id.
func (n *Node) raftMembers(r *raft.Raft) ([]Member, error) {
	future := r.GetConfiguration()
	if err := future.Error(); err != nil {
		return nil, err
	}
	_, leaderID := r.LeaderWithID()
	byID := map[string]*Member{}
	get := func(id string) *Member {
		if m, ok := byID[id]; ok {
			return m
		}
		m := &Member{ID: id, Leader: id == string(leaderID)}
		byID[id] = m
		return m
	}
	for _, s := range future.Configuration().Servers {
		m := get(string(s.ID))
		m.RaftAddr, m.InRaft, m.Voter = string(s.Address), true, s.Suffrage == raft.Voter
	}
	if n.gossip == nil {
		self := get(n.cfg.NodeID)
		self.Alive, self.HTTPAddr = true, n.cfg.HTTPAdvertise
	} else {
		gossipAddrs := n.gossip.gossipAddrs()
		for id, meta := range n.gossip.alive() {
			m := get(id)
			m.Alive, m.HTTPAddr, m.GossipAddr = true, meta.HTTP, gossipAddrs[id]
			if m.RaftAddr == "" {
				m.RaftAddr = meta.Raft
			}
		}
	}
	out := make([]Member, 0, len(byID))
	for _, m := range byID {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// publishFormed marks this node formed in gossip once it hears of a
// leader of any group (it is then part of a cluster, even before it has
// raft state on disk to prove it after a restart).
func (n *Node) publishFormed(ctx context.Context) {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		if n.anyLeader() {
			if err := n.gossip.markFormed(); err != nil {
				n.log.Warn("publish cluster membership", "err", err)
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// anyLeader reports whether any of this node's groups knows a leader.
func (n *Node) anyLeader() bool {
	for _, g := range n.Groups() {
		if addr, _ := g.raft.LeaderWithID(); addr != "" {
			return true
		}
	}
	return false
}

// Members lists the cluster's members as this node sees them: gossip,
// and the raft configurations of the meta group and of its groups. A
// member is in raft (and a voter) when it is in (and votes in) the meta
// group's or any group's configuration, and Leader when it leads any
// group holding tasks (as gossip tells, for a group without a replica
// here).
func (n *Node) Members() ([]Member, error) {
	byID := map[string]*Member{}
	rafts := []*raft.Raft{n.meta.raft}
	for _, g := range n.Groups() {
		rafts = append(rafts, g.raft)
	}
	for i, r := range rafts {
		members, err := n.raftMembers(r)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			for j := range members {
				members[j].Leader = false // the meta group leads no tasks
			}
		}
		for _, m := range members {
			have, ok := byID[m.ID]
			if !ok {
				m := m
				byID[m.ID] = &m
				continue
			}
			have.InRaft = have.InRaft || m.InRaft
			have.Voter = have.Voter || m.Voter
			have.Leader = have.Leader || m.Leader
			have.Alive = have.Alive || m.Alive
			if have.RaftAddr == "" {
				have.RaftAddr = m.RaftAddr
			}
			if have.HTTPAddr == "" {
				have.HTTPAddr, have.GossipAddr = m.HTTPAddr, m.GossipAddr
			}
		}
	}
	// The leaders of groups without a replica here, as gossip tells.
	if table := n.Table(); table != nil {
		for id := slots.Group(1); id <= slots.Group(table.Groups()); id++ {
			if n.Group(id) != nil {
				continue
			}
			if leader, _ := n.LeaderOf(id); byID[leader] != nil {
				byID[leader].Leader = true
			}
		}
	}
	if len(byID) == 0 && n.gossip != nil {
		gossipAddrs := n.gossip.gossipAddrs()
		for id, meta := range n.gossip.alive() {
			byID[id] = &Member{ID: id, Alive: true, HTTPAddr: meta.HTTP, GossipAddr: gossipAddrs[id], RaftAddr: meta.Raft}
		}
	}
	out := make([]Member, 0, len(byID))
	for _, m := range byID {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
