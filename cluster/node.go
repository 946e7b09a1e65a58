package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/archive"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// LeaderFunc runs leader-only work. It is called once this node is leader
// and its state machine has applied everything committed before (a
// Barrier), with the raft term of that leadership; ctx is cancelled when
// leadership ends, or while a restore replaces the state (it is called
// again after, in the same term), and the node waits for the function to
// return before it reports any later leadership.
type LeaderFunc func(ctx context.Context, term uint64)

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

// Node is one running member of a cluster.
type Node struct {
	cfg       Config
	log       *slog.Logger
	fsm       *fsm.FSM
	store     *raftboltdb.BoltStore
	transport *raft.NetworkTransport
	tlsLayer  *tlsStreamLayer // nil without TLS
	raft      *raft.Raft
	proposer  *proposer
	notifyCh  chan bool
	gossip    *gossip           // nil when gossip is off
	exclusive chan exclusiveRun // work that needs leader duties stopped
	metrics   *nodeMetrics

	stopBackground context.CancelFunc
	background     sync.WaitGroup
	stopWatching   context.CancelFunc
	watching       sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	// removed maps ids an operator removed to the instance (process run)
	// gossip saw then: the reconciler must not add that run straight back,
	// but does add the node if it restarts (a new instance) and rejoins.
	removedMu sync.Mutex
	removed   map[string]string
}

// Open starts a node on cfg.DataDir: a new single-node cluster when the
// directory holds no raft state, the same cluster as before otherwise.
func Open(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if cfg.NodeID == "" {
		return nil, errors.New("cluster: node id is required")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("component", "cluster"), notifyCh: make(chan bool, 16), exclusive: make(chan exclusiveRun),
		metrics: newNodeMetrics(cfg.Metrics)}
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()

	if err := removeStaleRestores(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("remove an interrupted restore: %w", err)
	}
	var err error
	if n.fsm, err = fsm.Open(filepath.Join(cfg.DataDir, "state.db")); err != nil {
		return nil, err
	}
	n.fsm.SetLogger(cfg.Logger.With("component", "fsm"))
	// The raft log's freelist is rebuilt on open rather than written with
	// every commit (as etcd does): the log is small, compacted behind
	// snapshots, and every commit is two fdatasyncs already.
	logOptions := &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}
	if n.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db"), BoltOptions: logOptions}); err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", filepath.Join(cfg.DataDir, "raft.db"), err)
	}
	snaps, err := newSnapshotStore(filepath.Join(cfg.DataDir, "snapshots"), 2, newHCLog(cfg.Logger, "raft"))
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	if err := n.catchUpFromSnapshot(snaps); err != nil {
		return nil, err
	}
	if n.transport, n.tlsLayer, err = newTransport(cfg); err != nil {
		return nil, err
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = newHCLog(cfg.Logger, "raft")
	rc.NotifyCh = n.notifyCh
	// The FSM keeps its own state and applied index across restarts
	// (fsm package): replaying the snapshot on every start would reload
	// every task.
	rc.NoSnapshotRestoreOnStart = true
	rc.BatchApplyCh = true
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.store, n.store, snaps, n.transport); err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}

	existing, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	if cfg.GossipAddr != "" {
		if n.gossip, err = newGossip(cfg, string(n.transport.LocalAddr()), existing); err != nil {
			return nil, err
		}
	}
	single := n.gossip == nil || cfg.BootstrapExpect <= 1 && len(cfg.Join) == 0
	if !existing && single {
		n.log.Info("bootstrapping a new single-node cluster", "node_id", cfg.NodeID, "raft_addr", n.transport.LocalAddr())
		err := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			ID: rc.LocalID, Address: n.transport.LocalAddr(), Suffrage: raft.Voter,
		}}}).Error()
		if err != nil {
			return nil, fmt.Errorf("bootstrap cluster: %w", err)
		}
	}

	n.proposer = newProposer(n.raft, cfg.MaxInflightEntries, cfg.MaxEntryCommands, cfg.MaxEntryBytes, n.metrics.applyDuration)
	ctx, cancel := context.WithCancel(context.Background())
	n.stopBackground, n.stopWatching = cancel, func() {}
	n.goBackground(func() { n.snapshotBySize(ctx) })
	n.goBackground(func() { n.countLeaderChanges(ctx) })
	if n.gossip != nil {
		n.goBackground(func() { n.reconcile(ctx) })
		n.goBackground(func() { n.publishFormed(ctx) })
		if len(cfg.Join) > 0 {
			n.goBackground(func() { n.join(ctx, cfg.Join) })
		}
		if !existing && cfg.BootstrapExpect > 1 {
			n.goBackground(func() { n.awaitBootstrap(ctx) })
		} else if !existing && !single {
			n.log.Info("waiting to be added to the cluster by its leader", "join", cfg.Join)
		}
	}
	ok = true
	return n, nil
}

func (n *Node) goBackground(f func()) {
	n.background.Add(1)
	go func() {
		defer n.background.Done()
		f()
	}()
}

// Start begins following leadership: onLeader runs whenever this node
// leads (see LeaderFunc). Call it once, after Open; leadership changes
// before it are held until then.
func (n *Node) Start(onLeader LeaderFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	n.stopWatching = cancel
	n.watching.Add(1)
	go n.watchLeadership(ctx, onLeader)
}

// newTransport listens for raft traffic: over mutual TLS when cfg.TLS is
// set (the layer is returned too), plain TCP otherwise.
func newTransport(cfg Config) (*raft.NetworkTransport, *tlsStreamLayer, error) {
	advertise := cfg.RaftAdvertise
	var addr net.Addr
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			return nil, nil, fmt.Errorf("raft advertise address %q: %w", advertise, err)
		}
		addr = a
	}
	const maxPool, timeout = 3, 10 * time.Second
	if cfg.TLS == nil {
		t, err := raft.NewTCPTransportWithLogger(cfg.RaftAddr, addr, maxPool, timeout, newHCLog(cfg.Logger, "raft-net"))
		if err != nil {
			return nil, nil, fmt.Errorf("listen for raft on %s: %w", cfg.RaftAddr, err)
		}
		return t, nil, nil
	}
	layer, err := newTLSStreamLayer(cfg.RaftAddr, addr, cfg.TLS)
	if err != nil {
		return nil, nil, fmt.Errorf("listen for raft on %s: %w", cfg.RaftAddr, err)
	}
	return raft.NewNetworkTransportWithLogger(layer, maxPool, timeout, newHCLog(cfg.Logger, "raft-net")), layer, nil
}

// catchUpFromSnapshot restores the state machine from the newest snapshot
// when the state file is behind it. Raft starts applying after the
// snapshot's index (NoSnapshotRestoreOnStart), and the log before it may be
// compacted away, so a state file that lost writes (it is not fsynced on
// every apply) must be brought up to the snapshot first.
func (n *Node) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) == 0 || list[0].Index <= n.fsm.AppliedIndex() {
		return nil
	}
	n.log.Warn("state file is behind the latest snapshot: restoring it",
		"applied_index", n.fsm.AppliedIndex(), "snapshot_index", list[0].Index)
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	if err := n.fsm.Restore(rc); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", list[0].ID, err)
	}
	return nil
}

// watchLeadership follows raft's NotifyCh and runs OnLeader while this node
// leads. It also runs the work that needs leader duties stopped (a
// restore), between stopping them and starting them again.
func (n *Node) watchLeadership(ctx context.Context, onLeader LeaderFunc) {
	defer n.watching.Done()
	type term struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	var current *term
	stopLeading := func() {
		if current != nil {
			current.cancel()
			<-current.done
			current = nil
			n.log.Info("leader duties stopped")
		}
	}
	startLeading := func() {
		lctx, cancel := context.WithCancel(ctx)
		current = &term{cancel: cancel, done: make(chan struct{})}
		go func(done chan struct{}) {
			defer close(done)
			n.lead(lctx, onLeader)
		}(current.done)
	}
	defer stopLeading()
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-n.notifyCh:
			if !leader {
				stopLeading()
				continue
			}
			if current == nil {
				startLeading()
			}
		case run := <-n.exclusive:
			stopLeading()
			run.done <- run.fn()
			if n.raft.State() == raft.Leader {
				startLeading()
			}
		}
	}
}

func (n *Node) lead(ctx context.Context, onLeader LeaderFunc) {
	// The leader is told before its state machine has applied the entries
	// of earlier terms: wait until it has (hashicorp/raft#509).
	for {
		err := n.raft.Barrier(5 * time.Second).Error()
		if err == nil {
			break
		}
		n.log.Warn("barrier after election failed", "err", err)
		if n.raft.State() != raft.Leader {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	term := n.raft.CurrentTerm()
	n.log.Info("leader duties starting", "term", term, "applied_index", n.raft.AppliedIndex())
	onLeader(ctx, term)
}

// Propose replicates cmd (coalesced with concurrent proposals into one raft
// entry) and returns its result from the state machine (see
// fsm.FSM.ApplyBatch for the result types).
func (n *Node) Propose(ctx context.Context, cmd *fsmpb.Command) (any, error) {
	return n.proposer.propose(ctx, cmd)
}

// FSM is the node's state machine, for reads.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// IsLeader reports whether this node is the raft leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Status is a snapshot of the node's raft view.
type Status struct {
	NodeID       string
	RaftAddr     string
	GossipAddr   string
	State        string
	LeaderID     string
	LeaderAddr   string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
}

// Status reports the node's raft view.
func (n *Node) Status() Status {
	addr, id := n.raft.LeaderWithID()
	st := Status{
		NodeID:     n.cfg.NodeID,
		RaftAddr:   string(n.transport.LocalAddr()),
		State:      n.raft.State().String(),
		LeaderID:   string(id),
		LeaderAddr: string(addr),
		Term:       n.raft.CurrentTerm(),
	}
	st.CommitIndex, st.AppliedIndex = n.indexes()
	if n.gossip != nil {
		st.GossipAddr = n.gossip.Addr()
	}
	return st
}

// indexes are the node's commit and applied index. Raft starts both from
// its last snapshot (or zero) and learns the commit index from the next
// entry a leader sends, which on an idle cluster may be a long time; the
// state machine remembers what it applied across restarts, and everything
// it applied was committed.
func (n *Node) indexes() (commit, applied uint64) {
	applied = max(n.raft.AppliedIndex(), n.fsm.AppliedIndex())
	return max(n.raft.CommitIndex(), applied), applied
}

// maxReadyLag is how many committed entries a node may not have applied
// yet and still call itself ready.
const maxReadyLag = 1000

// Ready reports nil when a leader is known and this node has applied
// nearly everything committed; otherwise why not.
func (n *Node) Ready() error {
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		return errors.New("no raft leader is known yet")
	}
	if commit, applied := n.indexes(); commit > applied+maxReadyLag {
		return fmt.Errorf("catching up: applied %d of %d committed raft entries", applied, commit)
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

// WaitLeader waits until a leader is known (any node), or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) error {
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no raft leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// snapshotBySize takes a raft snapshot whenever SnapshotBytes of entries
// were applied since the last one this loop took (raft's own, by entry
// count, come on top).
func (n *Node) snapshotBySize(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var mark uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		applied := n.fsm.AppliedBytes()
		if applied-mark < n.cfg.SnapshotBytes {
			continue
		}
		n.log.Info("raft log grew past the snapshot size: taking a snapshot", "bytes", applied-mark)
		err := n.raft.Snapshot().Error()
		if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			n.log.Warn("snapshot by size", "err", err)
			continue // try again at the next tick
		}
		mark = applied
	}
}

// Snapshot asks raft to take a snapshot now (and compact its log).
func (n *Node) Snapshot() error {
	return n.raft.Snapshot().Error()
}

// Close stops leader duties, then raft, then the stores, in that order.
// Calling it again returns the first call's error.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	n.handOverLeadership()
	n.stopWatching()
	n.watching.Wait()
	n.stopBackground()
	n.background.Wait()
	n.proposer.close()
	var errs []error
	if n.gossip != nil {
		// Without LeaveOnStop a node that stops is expected back (a
		// restart or an upgrade) and stays a member.
		if n.cfg.LeaveOnStop {
			n.log.Info("leaving the cluster")
			if err := n.gossip.leave(); err != nil {
				n.log.Warn("gossip leave", "err", err)
			}
		}
		errs = append(errs, n.gossip.list.Shutdown())
	}
	// Heartbeats are handled on the transport's goroutines, not raft's: one
	// arriving during Shutdown can write the term after the stores closed,
	// and raft panics (hashicorp/raft#717). Route them through raft's main
	// loop from here on, which stops with Shutdown.
	if n.transport != nil {
		n.transport.SetHeartbeatHandler(nil)
	}
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("shut down raft: %w", err))
	}
	return errors.Join(append(errs, n.closeStores())...)
}

// handOverLeadership transfers leadership to another voter before a
// leader stops, so firing resumes at once rather than after an election.
func (n *Node) handOverLeadership() {
	if n.raft.State() != raft.Leader {
		return
	}
	future := n.raft.GetConfiguration()
	if future.Error() != nil {
		return
	}
	others := 0
	for _, s := range future.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.cfg.NodeID {
			others++
		}
	}
	if others == 0 {
		return
	}
	n.log.Info("stopping: handing leadership over")
	if err := n.raft.LeadershipTransfer().Error(); err != nil {
		n.log.Warn("leadership transfer failed; the others will elect a leader", "err", err)
	}
}

// Leader returns the leader's id and HTTP address (as gossip publishes it),
// and whether that is this node. The id is empty while no leader is known.
func (n *Node) Leader() (id, httpAddr string, self bool) {
	_, leaderID := n.raft.LeaderWithID()
	id = string(leaderID)
	if id == "" {
		return "", "", false
	}
	if id == n.cfg.NodeID {
		return id, n.cfg.HTTPAdvertise, true
	}
	if n.gossip != nil {
		httpAddr = n.gossip.alive()[id].HTTP
	}
	return id, httpAddr, false
}

// VerifyLeader confirms, with a round of messages to a quorum, that this
// node still leads (ErrNotLeader when it does not).
func (n *Node) VerifyLeader() error {
	return translate(n.raft.VerifyLeader().Error())
}

// Members lists the cluster's members, from raft's configuration and
// gossip.
func (n *Node) Members() ([]Member, error) { return n.members() }

// ErrNoSuchMember: the id is not in the raft configuration.
var ErrNoSuchMember = errors.New("no such member in the cluster configuration")

// RemoveMember takes a node out of the raft configuration. Only the leader
// can; elsewhere it is ErrNotLeader.
func (n *Node) RemoveMember(id string) error {
	future := n.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return translate(err)
	}
	found := false
	for _, s := range future.Configuration().Servers {
		found = found || string(s.ID) == id
	}
	if !found {
		return fmt.Errorf("%w: %q", ErrNoSuchMember, id)
	}
	if n.gossip != nil {
		if m, ok := n.gossip.alive()[id]; ok {
			n.removedMu.Lock()
			if n.removed == nil {
				n.removed = map[string]string{}
			}
			n.removed[id] = m.Instance
			n.removedMu.Unlock()
		}
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 0).Error(); err != nil {
		return translate(err)
	}
	n.log.Info("removed a member", "id", id)
	return nil
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

func (n *Node) closeStores() error {
	var errs []error
	if n.transport != nil {
		errs = append(errs, n.transport.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.fsm != nil {
		errs = append(errs, n.fsm.Close())
	}
	return errors.Join(errs...)
}
