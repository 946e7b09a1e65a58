package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"cmp"
	"slices"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-scheduler/hourglass/fsm/archive"
	"github.com/hourglass-scheduler/hourglass/raftmux"
	"github.com/hourglass-scheduler/hourglass/slots"
)

// Config is what a node needs to start.
type Config struct {
	NodeID string
	// Version is the Hourglass version, recorded in backups.
	Version  string
	DataDir  string
	RaftAddr string // to listen on; port 0 picks one
	// RaftAdvertise is the address peers dial; empty means RaftAddr
	// (which then must not be a wildcard address).
	RaftAdvertise string
	Logger        *slog.Logger
	// BootID identifies the running boot of the machine's kernel (empty:
	// read from /proc/sys/kernel/random/boot_id, where there is one). A
	// state file left open under another boot is rebuilt from raft's
	// snapshot and log (see laststop.go).
	BootID string
	// CheckState checks the state file of a backup being restored (nil:
	// fsm.CheckStateFile in this process; the server runs it in a child
	// process, so that a damaged file cannot crash the node).
	CheckState archive.Checker

	// GossipAddr is where memberlist listens (UDP and TCP); empty turns
	// gossip off, which only suits a single node. GossipAdvertise is the
	// address others reach it at, if not GossipAddr.
	GossipAddr      string
	GossipAdvertise string
	// HTTPAdvertise is this node's API address as other nodes reach it,
	// published through gossip so requests can be forwarded to the leader.
	HTTPAdvertise string
	// Join lists gossip addresses of existing members to join.
	Join []string
	// BootstrapExpect: a new cluster forms once this many members see each
	// other (0 or 1 with no Join: a single node bootstraps itself).
	BootstrapExpect int
	// Groups is how many raft groups a cluster this node creates holds
	// (0: one per node it is bootstrapped with, BootstrapExpect, or one
	// for a single node). A node that joins a cluster takes the cluster's
	// count, and a data directory keeps the count it was created with.
	Groups int
	// Replicas is how many voting replicas each group has, on as many
	// nodes (0: DefaultReplicas; fewer while the cluster has fewer nodes).
	Replicas int
	// DeadAfter is how long a member may be unreachable before its
	// replicas move to other nodes (0: DefaultDeadAfter).
	DeadAfter time.Duration
	// BalanceInterval is the least time between two hand-overs of a
	// group's leadership to its preferred leader (0:
	// DefaultBalanceInterval).
	BalanceInterval time.Duration
	// LeaveOnStop: on Close, leave the cluster for good (the leader then
	// removes this node from the raft configuration). Off, a stopped node
	// is expected back and stays a member.
	LeaveOnStop bool

	// Raft log compaction: snapshot after SnapshotThreshold new entries,
	// checked every SnapshotInterval, keeping TrailingLogs entries behind
	// the snapshot for followers to catch up from. Zero: raft's defaults
	// (8192 entries, 2m, 10240 entries).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// SnapshotBytes also snapshots once this many bytes of entries were
	// applied since the last snapshot (DefaultSnapshotBytes): a restart
	// re-reads the log since the last snapshot, and entries holding
	// batches of tasks make an entry count a poor measure of that.
	SnapshotBytes uint64

	// Raft timing. A follower that hears nothing from the leader for
	// HeartbeatTimeout (randomised up to twice that) calls an election,
	// which takes ElectionTimeout or so; a leader that cannot reach a
	// quorum for LeaderLeaseTimeout steps down. Failover takes about
	// HeartbeatTimeout plus ElectionTimeout. Zero: DefaultHeartbeatTimeout,
	// DefaultElectionTimeout, DefaultLeaderLeaseTimeout.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration

	// Group commit: raft entries in flight, and the caps of one entry.
	MaxInflightEntries int
	MaxEntryCommands   int
	MaxEntryBytes      int

	// Metrics, when set, registers the node's metrics (apply latency,
	// leader changes).
	Metrics prometheus.Registerer

	// TLS, when set, carries raft traffic over mutual TLS (MemberTLS
	// makes it): members accept and dial only peers that present a
	// certificate of the cluster's CA, and the leader adds a member to the
	// raft configuration only once its raft address passes that check.
	TLS *tls.Config
	// GossipKeys encrypt and authenticate gossip (AES-GCM; 16, 24 or 32
	// bytes each): the first encrypts, and messages under any of them are
	// accepted, so keys can be rotated. Empty: gossip is not encrypted.
	GossipKeys [][]byte
}

// Default raft timing (see Config): a leader kill -9 is survived in
// about two seconds, with margin for a busy 2-core machine's fsync and
// scheduling stalls.
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 250 * time.Millisecond
)

// DefaultSnapshotBytes bounds the raft log a restart re-reads (about 1.5 s
// of reading per 256 MiB on the development machine).
const DefaultSnapshotBytes = 256 << 20

func (c *Config) setDefaults() {
	if c.BootID == "" {
		c.BootID = readBootID()
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = DefaultSnapshotBytes
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = DefaultLeaderLeaseTimeout
	}
	if c.Groups == 0 {
		// Measured (README, "Raft groups"): one node does best with one
		// group, a cluster with a group led by each node.
		c.Groups = max(1, c.BootstrapExpect)
	}
	if c.BalanceInterval == 0 {
		c.BalanceInterval = DefaultBalanceInterval
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = DefaultDeadAfter
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxInflightEntries == 0 {
		c.MaxInflightEntries = 4
	}
	if c.MaxEntryCommands == 0 {
		c.MaxEntryCommands = 4096
	}
	if c.MaxEntryBytes == 0 {
		c.MaxEntryBytes = 8 << 20
	}
}

// Node is one running member of a cluster: its replica of the meta group,
// the replicas of the raft groups the placement puts on it, over one raft
// listener, and the gossip through which it finds the other members.
type Node struct {
	cfg      Config
	log      *slog.Logger
	mux      *raftmux.Mux
	tls      *tls.Config // raft's mutual TLS; nil without
	gossip   *gossip     // nil when gossip is off
	raftAddr string      // the address other members dial
	meta     *metaGroup

	mu       sync.Mutex
	groups   map[slots.Group]*Group
	table    *slots.Table            // nil until the group count is known
	onLeader func(*Group) LeaderFunc // set by Start
	onRemove func(*Group)            // set by Start
	closed   bool

	stopBackground context.CancelFunc
	background     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	// removed maps ids an operator removed to the instance (process run)
	// gossip saw then: the reconciler must not add that run straight back,
	// but does add the node if it restarts (a new instance) and rejoins.
	removedMu sync.Mutex
	removed   map[string]string
}

// Open starts a node on cfg.DataDir: a new single-node cluster when the
// directory holds no raft state and nothing says to join others, the same
// cluster as before otherwise. A node that joins others learns the
// cluster's groups and their placement from the meta group, and opens
// the replicas placed on it then.
func Open(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if cfg.NodeID == "" {
		return nil, errors.New("cluster: node id is required")
	}
	if cfg.Groups < 1 || cfg.Groups > MaxGroups {
		return nil, fmt.Errorf("cluster: %d groups; want 1 to %d", cfg.Groups, MaxGroups)
	}
	if cfg.Replicas < 1 || cfg.Replicas > maxVoters {
		return nil, fmt.Errorf("cluster: %d replicas; want 1 to %d", cfg.Replicas, maxVoters)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("component", "cluster"), tls: cfg.TLS,
		groups: map[slots.Group]*Group{}, stopBackground: func() {}}
	ok := false
	defer func() {
		if !ok {
			n.closeAll()
		}
	}()
	count, err := readLayout(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := n.listen(); err != nil {
		return nil, err
	}
	if n.meta, err = openMeta(n); err != nil {
		return nil, err
	}
	metaState, err := n.meta.hasState()
	if err != nil {
		return nil, err
	}
	formed := metaState
	if count > 0 {
		if err := n.openExisting(count); err != nil {
			return nil, err
		}
		for _, g := range n.Groups() {
			existing, err := g.hasState()
			if err != nil {
				return nil, err
			}
			formed = formed || existing
		}
	}
	if cfg.GossipAddr != "" {
		if n.gossip, err = newGossip(cfg, n.raftAddr, formed, count); err != nil {
			return nil, err
		}
	}
	single := n.gossip == nil || cfg.BootstrapExpect <= 1 && len(cfg.Join) == 0
	self := []raft.Server{{ID: raft.ServerID(cfg.NodeID), Address: raft.ServerAddress(n.raftAddr), Suffrage: raft.Voter}}
	switch {
	case count == 0 && !metaState && single:
		n.log.Info("bootstrapping a new single-node cluster", "node_id", cfg.NodeID, "raft_addr", n.raftAddr, "groups", cfg.Groups)
		if err := n.create(cfg.Groups, self); err != nil {
			return nil, err
		}
	case count > 0 && !metaState && single:
		// A data directory of a release without the meta group.
		n.log.Info("starting the meta group of this node's cluster", "groups", count)
		if err := n.meta.bootstrap(self); err != nil {
			return nil, err
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	n.stopBackground = cancel
	n.goBackground(func() { n.followPlacement(ctx) })
	n.goBackground(func() { n.placeReplicas(ctx) })
	n.goBackground(func() { n.reconcile(ctx) })
	if n.gossip != nil {
		n.goBackground(func() { n.publishFormed(ctx) })
		if len(cfg.Join) > 0 {
			n.goBackground(func() { n.join(ctx, cfg.Join) })
		}
		if count == 0 && !metaState {
			n.goBackground(func() { n.awaitGroups(ctx) })
		}
		if count > 0 && !metaState && !single {
			n.goBackground(func() { n.awaitMeta(ctx) })
		}
	}
	ok = true
	return n, nil
}

// MaxGroups bounds the groups of a cluster: each node publishes the state
// of its replica of every group in its gossip metadata, which memberlist
// caps at 512 bytes.
const MaxGroups = 256

// listen opens the raft listener (over mutual TLS when cfg.TLS is set)
// and the mux that shares it among the groups.
func (n *Node) listen() error {
	cfg := n.cfg
	var advertise net.Addr
	if cfg.RaftAdvertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise)
		if err != nil {
			return fmt.Errorf("raft advertise address %q: %w", cfg.RaftAdvertise, err)
		}
		advertise = a
	}
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("listen for raft on %s: %w", cfg.RaftAddr, err)
	}
	if advertise == nil {
		addr, ok := ln.Addr().(*net.TCPAddr)
		if !ok || addr.IP == nil || addr.IP.IsUnspecified() {
			ln.Close()
			return fmt.Errorf("listen for raft on %s: %s is not an address other nodes can dial: set the advertise address", cfg.RaftAddr, ln.Addr())
		}
		advertise = addr
	}
	dial := raftmux.TCPDialer
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
		dial = n.dialTLS
	}
	n.mux = raftmux.New(ln, advertise, dial)
	n.raftAddr = advertise.String()
	return nil
}

// dialTLS connects to a member's raft address and completes the cluster's
// TLS handshake.
func (n *Node) dialTLS(ctx context.Context, address string) (net.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{}, Config: n.tls}
	return d.DialContext(ctx, "tcp", address)
}

// create makes the replicas of a new cluster of count groups, each
// bootstrapped with servers as its voters, and the meta group with them,
// and then records the count (a crash in between leaves no count: the
// next start creates them again, keeping what was made). The meta
// group's first leader writes the placement (every group where it was
// made), which then moves to its goals.
func (n *Node) create(count int, servers []raft.Server) error {
	// The table first: a group's owner may ask for it as the group opens.
	if err := n.setTable(count); err != nil {
		return err
	}
	for id := slots.Group(1); id <= slots.Group(count); id++ {
		if err := n.openGroup(id); err != nil {
			return err
		}
		g := n.Group(id)
		existing, err := g.hasState()
		if err != nil {
			return err
		}
		if !existing {
			if err := g.bootstrap(servers); err != nil {
				return err
			}
		}
	}
	existing, err := n.meta.hasState()
	if err != nil {
		return err
	}
	if !existing {
		if err := n.meta.bootstrap(servers); err != nil {
			return err
		}
	}
	return n.adopt(count)
}

// adopt records that the cluster has count groups.
func (n *Node) adopt(count int) error {
	if err := writeLayout(n.cfg.DataDir, count); err != nil {
		return err
	}
	if err := n.setTable(count); err != nil {
		return err
	}
	return n.publishGroups(count)
}

// setTable records the slot table of count groups.
func (n *Node) setTable(count int) error {
	table, err := slots.Even(count)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.table = &table
	n.mu.Unlock()
	return nil
}

func (n *Node) publishGroups(count int) error {
	if n.gossip == nil {
		return nil
	}
	if err := n.gossip.publish(func(m *nodeMeta) { m.Groups = count }); err != nil {
		return err
	}
	n.gossip.pushState()
	return nil
}

// openExisting opens the replicas this node's data directory holds, of a
// cluster of count groups.
func (n *Node) openExisting(count int) error {
	if err := n.setTable(count); err != nil {
		return err
	}
	for id := slots.Group(1); id <= slots.Group(count); id++ {
		// What a crash left of a replica being deleted (removeReplica).
		if err := os.RemoveAll(groupDir(n.cfg.DataDir, id) + removedSuffix); err != nil {
			return fmt.Errorf("group %d: delete a removed replica: %w", id, err)
		}
		if _, err := os.Stat(groupDir(n.cfg.DataDir, id)); err != nil {
			continue
		}
		if err := n.openGroup(id); err != nil {
			return err
		}
	}
	return nil
}

// openGroup opens this node's replica of group id, unless it is open (and
// starts it, once Start was called).
func (n *Node) openGroup(id slots.Group) error {
	n.mu.Lock()
	_, open := n.groups[id]
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if open {
		return nil
	}
	g, err := openGroup(n, id, groupDir(n.cfg.DataDir, id))
	if err != nil {
		return fmt.Errorf("group %d: %w", id, err)
	}
	n.mu.Lock()
	n.groups[id] = g
	start := n.onLeader
	n.mu.Unlock()
	if start != nil {
		g.start(start(g))
	}
	return nil
}

func (n *Node) goBackground(f func()) {
	n.background.Add(1)
	go func() {
		defer n.background.Done()
		f()
	}()
}

// Start begins following the leadership of every group: onLeader(g) is
// what runs whenever this node leads g (see LeaderFunc); it is asked once
// per replica, for those open now and for each opened later. onRemove
// (optional) hears of a replica the placement moved away, before it is
// closed. Call it once, after Open; leadership changes before it are held
// until then.
func (n *Node) Start(onLeader func(*Group) LeaderFunc, onRemove func(*Group)) {
	n.mu.Lock()
	n.onLeader, n.onRemove = onLeader, onRemove
	groups := n.sortedGroups()
	n.mu.Unlock()
	for _, g := range groups {
		g.start(onLeader(g))
	}
}

// Groups lists this node's replicas, by group id.
func (n *Node) Groups() []*Group {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sortedGroups()
}

func (n *Node) sortedGroups() []*Group {
	out := make([]*Group, 0, len(n.groups))
	for _, g := range n.groups {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *Group) int { return cmp.Compare(a.id, b.id) })
	return out
}

// Group is this node's replica of group id; nil when it has none.
func (n *Node) Group(id slots.Group) *Group {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.groups[id]
}

// Table says which group holds each slot; nil while this node does not
// know the cluster's groups yet (it is joining).
func (n *Node) Table() *slots.Table {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.table
}

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// NodeStatus is this node's view: its addresses and each replica's.
type NodeStatus struct {
	NodeID     string
	RaftAddr   string
	GossipAddr string
	Groups     []Status
}

// Status reports the node's addresses and each replica's raft view.
func (n *Node) Status() NodeStatus {
	st := NodeStatus{NodeID: n.cfg.NodeID, RaftAddr: n.raftAddr}
	if n.gossip != nil {
		st.GossipAddr = n.gossip.Addr()
	}
	for _, g := range n.Groups() {
		st.Groups = append(st.Groups, g.Status())
	}
	return st
}

// Ready reports nil when this node knows the cluster's groups and their
// placement, and each replica it holds has a known leader and is caught
// up; otherwise why not.
func (n *Node) Ready() error {
	if n.Table() == nil {
		return errors.New("joining: the cluster's groups are not known yet")
	}
	if _, ok := n.meta.placement(); !ok {
		return errors.New("joining: the placement of the cluster's groups is not known yet")
	}
	for _, g := range n.Groups() {
		if err := g.Ready(); err != nil {
			return err
		}
	}
	return nil
}

// WaitReady waits until Ready reports nil, or ctx ends.
func (n *Node) WaitReady(ctx context.Context) error {
	for {
		err := n.Ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %v: %w", err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// markRemoved remembers that an operator removed member id, as the run
// gossip sees now.
func (n *Node) markRemoved(id string) {
	if n.gossip == nil {
		return
	}
	m, ok := n.gossip.alive()[id]
	if !ok {
		return
	}
	n.removedMu.Lock()
	defer n.removedMu.Unlock()
	if n.removed == nil {
		n.removed = map[string]string{}
	}
	n.removed[id] = m.Instance
}

// wasRemoved reports whether this run (instance) of node id is one an
// operator removed.
func (n *Node) wasRemoved(id, instance string) bool {
	n.removedMu.Lock()
	defer n.removedMu.Unlock()
	removed, ok := n.removed[id]
	if ok && removed != instance {
		delete(n.removed, id) // it restarted since: welcome back
		return false
	}
	return ok
}

// Close stops every group (leader duties, then raft, then the stores),
// gossip and the listener. Calling it again returns the first call's
// error.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.stopBackground()
	n.background.Wait()
	var wg sync.WaitGroup
	groups := n.Groups()
	errs := make([]error, len(groups)+2)
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.close()
		}()
	}
	wg.Wait()
	if n.meta != nil {
		errs = append(errs, n.meta.close())
	}
	if n.gossip != nil {
		// Without LeaveOnStop a node that stops is expected back (a
		// restart or an upgrade) and stays a member.
		if n.cfg.LeaveOnStop {
			n.log.Info("leaving the cluster")
			if err := n.gossip.leave(); err != nil {
				n.log.Warn("gossip leave", "err", err)
			}
		}
		errs[len(groups)] = n.gossip.list.Shutdown()
	}
	if n.mux != nil {
		errs[len(groups)+1] = n.mux.Close()
	}
	return errors.Join(errs...)
}

// closeAll undoes a failed Open.
func (n *Node) closeAll() {
	for _, g := range n.Groups() {
		g.close()
	}
	if n.meta != nil {
		n.meta.close()
	}
	if n.gossip != nil {
		n.gossip.list.Shutdown()
	}
	if n.mux != nil {
		n.mux.Close()
	}
}
