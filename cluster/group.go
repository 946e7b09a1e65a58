package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/slots"
)

// LeaderFunc runs a group's leader-only work. It is called once this node
// leads the group and the group's state machine has applied everything
// committed before (a Barrier), with the raft term of that leadership; ctx
// is cancelled when leadership ends, or while a restore replaces the state
// (it is called again after, in the same term), and the group waits for
// the function to return before it reports any later leadership.
type LeaderFunc func(ctx context.Context, term uint64)

// LeaderFuncs runs every one of fs at once, for the same leadership, and
// returns when all have.
func LeaderFuncs(fs ...LeaderFunc) LeaderFunc {
	return func(ctx context.Context, term uint64) {
		var wg sync.WaitGroup
		for _, f := range fs {
			wg.Go(func() { f(ctx, term) })
		}
		wg.Wait()
	}
}

// Group is this node's replica of one raft group: its raft log, state
// machine and snapshots, in a directory of its own, with raft traffic
// over the node's shared listener.
type Group struct {
	id        slots.Group
	node      *Node
	dir       string
	log       *slog.Logger
	fsm       *fsm.FSM
	store     *raftboltdb.BoltStore
	snaps     raft.SnapshotStore
	transport *raft.NetworkTransport
	raft      *raft.Raft
	proposer  *proposer
	notifyCh  chan bool
	exclusive chan exclusiveRun // work that needs leader duties stopped
	metrics   *groupMetrics
	// rebuilding says why the state file was discarded at open, to be
	// rebuilt from raft's snapshot and log ("": it was trusted).
	rebuilding string
	// caughtUpTerm is the term in which this replica, leading, has
	// applied every entry committed before it (a Barrier returned):
	// only then does it serve as the leader (see Leader). barrierTerm is
	// the term of the Barrier under way to find out (see caughtUp).
	caughtUpTerm, barrierTerm atomic.Uint64
	// confirmer confirms leadership for VerifyLeader.
	confirmer leadershipConfirmer

	// settledAt is the meta index at which this replica, leading, last
	// found its configuration to be the placement's (0: not settled).
	settledAt atomic.Uint64
	// lastTransfer is when reconcilePlacement last handed leadership to
	// the preferred leader (only it reads and writes it).
	lastTransfer time.Time

	stopBackground context.CancelFunc
	background     sync.WaitGroup
	stopWatching   context.CancelFunc
	watching       sync.WaitGroup
	startOnce      sync.Once

	closeOnce sync.Once
	closeErr  error
}

// openGroup opens (or creates) the replica of group id in dir; its raft
// has no configuration until it is bootstrapped or a leader adds it.
func openGroup(n *Node, id slots.Group, dir string) (*Group, error) {
	cfg := n.cfg
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create group directory: %w", err)
	}
	logger := cfg.Logger.With("group", uint32(id))
	g := &Group{id: id, node: n, dir: dir, log: logger.With("component", "cluster"), notifyCh: make(chan bool, 16),
		exclusive: make(chan exclusiveRun), stopBackground: func() {}, stopWatching: func() {}}
	g.confirmer.barrier = func() error { return translate(g.raft.Barrier(confirmTimeout).Error()) }
	var reg prometheus.Registerer
	if cfg.Metrics != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"group": id.String()}, cfg.Metrics)
	}
	g.metrics = newGroupMetrics(reg)
	ok := false
	defer func() {
		if !ok {
			g.closeStores()
		}
	}()

	if err := removeStaleRestores(dir); err != nil {
		return nil, fmt.Errorf("remove an interrupted restore: %w", err)
	}
	var err error
	if g.fsm, err = g.openState(cfg.BootID); err != nil {
		return nil, err
	}
	g.fsm.SetLogger(logger.With("component", "fsm"))
	// The raft log's freelist is rebuilt on open rather than written with
	// every commit (as etcd does): the log is small, compacted behind
	// snapshots, and every commit is two fdatasyncs already.
	logOptions := &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}
	if g.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: logOptions}); err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", filepath.Join(dir, "raft.db"), err)
	}
	snaps, err := newSnapshotStore(filepath.Join(dir, "snapshots"), 2, newHCLog(logger, "raft"))
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	g.snaps = snaps
	if err := g.catchUpFromSnapshot(snaps); err != nil {
		// A state file behind the newest snapshot cannot be served: raft
		// replays only the log after that snapshot.
		why := "the state file is behind the newest raft snapshot"
		if g.rebuilding != "" {
			why = "rebuild the state file (" + g.rebuilding + ")"
		}
		return nil, fmt.Errorf("%s: %w; this replica cannot be brought up to date from its own raft data: "+
			"remove the node from the cluster (hourglass cluster remove), empty its data directory and start it again, to be sent the state by the others", why, err)
	}
	layer, err := n.mux.Layer(uint32(id))
	if err != nil {
		return nil, err
	}
	const maxPool, timeout = 3, 10 * time.Second
	g.transport = raft.NewNetworkTransportWithLogger(layer, maxPool, timeout, newHCLog(logger, "raft-net"))

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = newHCLog(logger, "raft")
	rc.NotifyCh = g.notifyCh
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
	if g.raft, err = raft.NewRaft(rc, g.fsm, g.store, g.store, snaps, g.transport); err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	g.proposer = newProposer(g.raft, cfg.MaxInflightEntries, cfg.MaxEntryCommands, cfg.MaxEntryBytes, g.metrics.applyDuration)
	ctx, cancel := context.WithCancel(context.Background())
	g.stopBackground = cancel
	g.goBackground(func() { g.snapshotBySize(ctx) })
	g.goBackground(func() { g.countLeaderChanges(ctx) })
	ok = true
	return g, nil
}

// openState opens the replica's state file, first discarding it when it
// cannot be trusted (see lastStopUnsafe; a damaged file neither), to be
// rebuilt from the newest snapshot (catchUpFromSnapshot) and the raft
// log after it (replayed by raft from the snapshot's index). It records
// the file open under bootID until closeStores.
func (g *Group) openState(bootID string) (*fsm.FSM, error) {
	// No other process has the file open: the meta group's raft log,
	// opened first, holds the data directory's lock.
	path := filepath.Join(g.dir, "state.db")
	why, err := lastStopUnsafe(g.dir, bootID)
	if err != nil {
		return nil, err
	}
	if why != "" {
		if err := g.discardState(path, why); err != nil {
			return nil, err
		}
	}
	f, err := fsm.Open(path)
	if errors.Is(err, fsm.ErrDamaged) {
		if err := g.discardState(path, err.Error()); err != nil {
			return nil, err
		}
		f, err = fsm.Open(path)
	}
	if err != nil {
		return nil, err
	}
	if err := markOpen(g.dir, bootID); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// discardState removes the state file at path, which is not to be
// trusted for the reason why, so that it is rebuilt.
func (g *Group) discardState(path, why string) error {
	g.log.Warn("rebuilding the state file from the newest raft snapshot and the raft log after it", "why", why)
	g.rebuilding = why
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("discard the state file: %w", err)
	}
	return nil
}

// hasState reports whether the replica has raft state: it was
// bootstrapped, or a leader has sent it the log.
func (g *Group) hasState() (bool, error) {
	existing, err := raft.HasExistingState(g.store, g.store, g.snaps)
	if err != nil {
		return false, fmt.Errorf("group %d: inspect raft state: %w", g.id, err)
	}
	return existing, nil
}

// bootstrap starts the group's raft with servers as its voters.
func (g *Group) bootstrap(servers []raft.Server) error {
	if err := g.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return fmt.Errorf("group %d: bootstrap: %w", g.id, err)
	}
	return nil
}

func (g *Group) goBackground(f func()) {
	g.background.Add(1)
	go func() {
		defer g.background.Done()
		f()
	}()
}

// start begins following leadership: onLeader runs whenever this replica
// leads (see LeaderFunc). Leadership changes before it are held until
// then. Only the first call counts.
func (g *Group) start(onLeader LeaderFunc) {
	g.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		g.stopWatching = cancel
		g.watching.Add(1)
		go g.watchLeadership(ctx, onLeader)
	})
}

// ID is the group's id.
func (g *Group) ID() slots.Group { return g.id }

// catchUpFromSnapshot restores the state machine from the newest snapshot
// when the state file is behind it. Raft starts applying after the
// snapshot's index (NoSnapshotRestoreOnStart), and the log before it may be
// compacted away, so a state file that lost writes (it is not fsynced on
// every apply) must be brought up to the snapshot first.
func (g *Group) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) == 0 || list[0].Index <= g.fsm.AppliedIndex() {
		return nil
	}
	g.log.Warn("state file is behind the latest snapshot: restoring it",
		"applied_index", g.fsm.AppliedIndex(), "snapshot_index", list[0].Index)
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	if err := g.fsm.Restore(rc); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", list[0].ID, err)
	}
	return nil
}

// watchLeadership follows raft's NotifyCh and runs onLeader while this
// replica leads. It also runs the work that needs leader duties stopped
// (a restore), between stopping them and starting them again.
func (g *Group) watchLeadership(ctx context.Context, onLeader LeaderFunc) {
	defer g.watching.Done()
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
			g.log.Info("leader duties stopped")
		}
	}
	startLeading := func() {
		lctx, cancel := context.WithCancel(ctx)
		current = &term{cancel: cancel, done: make(chan struct{})}
		go func(done chan struct{}) {
			defer close(done)
			g.lead(lctx, onLeader)
		}(current.done)
	}
	defer stopLeading()
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-g.notifyCh:
			if !leader {
				stopLeading()
				continue
			}
			if current == nil {
				startLeading()
			}
		case run := <-g.exclusive:
			stopLeading()
			run.done <- run.fn()
			if g.raft.State() == raft.Leader {
				startLeading()
			}
		}
	}
}

func (g *Group) lead(ctx context.Context, onLeader LeaderFunc) {
	// The leader is told before its state machine has applied the entries
	// of earlier terms: wait until it has (hashicorp/raft#509).
	for {
		err := g.raft.Barrier(5 * time.Second).Error()
		if err == nil {
			break
		}
		g.log.Warn("barrier after election failed", "err", err)
		if g.raft.State() != raft.Leader {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	term := g.raft.CurrentTerm()
	g.caughtUpTerm.Store(term)
	g.log.Info("leader duties starting", "term", term, "applied_index", g.raft.AppliedIndex())
	onLeader(ctx, term)
}

// Propose replicates cmd (coalesced with concurrent proposals into one raft
// entry) and returns its result from the state machine (see
// fsm.FSM.ApplyBatch for the result types).
func (g *Group) Propose(ctx context.Context, cmd *fsmpb.Command) (any, error) {
	return g.ProposeWithin(ctx, cmd, 0)
}

// ProposeWithin is Propose for a command that may wait up to linger for
// others to share its raft entry (unless it is large): one in no hurry,
// which at a steady low rate would otherwise pay for an entry of its own.
func (g *Group) ProposeWithin(ctx context.Context, cmd *fsmpb.Command, linger time.Duration) (any, error) {
	v, err := g.proposer.propose(ctx, cmd, linger)
	if err != nil && g.fsm.WaitingForSpace() {
		// Committed or not, it waits behind an entry that cannot be
		// applied until the disk has space: say so.
		err = fmt.Errorf("%w (the disk of the data directory is full: applying the raft log waits for space)", err)
	}
	return v, err
}

// Metrics is where the owner registers the replica's metrics: labelled
// with the group, and unregistered when the placement moves the replica
// away.
func (g *Group) Metrics() prometheus.Registerer { return g.metrics.reg }

// FSM is the group's state machine, for reads.
func (g *Group) FSM() *fsm.FSM { return g.fsm }

// IsLeader reports whether this replica leads its group.
func (g *Group) IsLeader() bool { return g.raft.State() == raft.Leader }

// Status is a snapshot of one replica's raft view.
type Status struct {
	Group        slots.Group
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

// Status reports the replica's raft view.
func (g *Group) Status() Status {
	addr, id := g.raft.LeaderWithID()
	st := Status{
		Group:      g.id,
		NodeID:     g.node.cfg.NodeID,
		RaftAddr:   string(g.transport.LocalAddr()),
		State:      g.raft.State().String(),
		LeaderID:   string(id),
		LeaderAddr: string(addr),
		Term:       g.raft.CurrentTerm(),
	}
	st.CommitIndex, st.AppliedIndex = g.indexes()
	if g.node.gossip != nil {
		st.GossipAddr = g.node.gossip.Addr()
	}
	return st
}

// indexes are the replica's commit and applied index. Raft starts both
// from its last snapshot (or zero) and learns the commit index from the
// next entry a leader sends, which on an idle cluster may be a long time;
// the state machine remembers what it applied across restarts, and
// everything it applied was committed.
func (g *Group) indexes() (commit, applied uint64) {
	applied = max(g.raft.AppliedIndex(), g.fsm.AppliedIndex())
	return max(g.raft.CommitIndex(), applied), applied
}

// maxReadyLag is how many committed entries a replica may not have
// applied yet and still call itself ready.
const maxReadyLag = 1000

// Ready reports nil when the group has a known leader and this replica
// has applied nearly everything committed, and is not waiting for a full
// disk; otherwise why not.
func (g *Group) Ready() error {
	if g.fsm.WaitingForSpace() {
		return fmt.Errorf("group %d: the disk of the data directory is full: applying the raft log waits for space", g.id)
	}
	if addr, _ := g.raft.LeaderWithID(); addr == "" {
		return fmt.Errorf("group %d: no raft leader is known yet", g.id)
	}
	if id, _, _ := g.Leader(); id == "" {
		return fmt.Errorf("group %d: elected leader, still applying the raft log of earlier terms", g.id)
	}
	if commit, applied := g.indexes(); commit > applied+maxReadyLag {
		return fmt.Errorf("group %d: catching up: applied %d of %d committed raft entries", g.id, applied, commit)
	}
	return nil
}

// WaitLeader waits until the group has a known leader, or ctx ends.
func (g *Group) WaitLeader(ctx context.Context) error {
	for {
		if addr, _ := g.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %d: no raft leader: %w", g.id, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// snapshotBySize takes a raft snapshot whenever SnapshotBytes of entries
// were applied since the last one this loop took (raft's own, by entry
// count, come on top).
func (g *Group) snapshotBySize(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var mark uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		applied := g.fsm.AppliedBytes()
		if applied-mark < g.node.cfg.SnapshotBytes {
			continue
		}
		g.log.Info("raft log grew past the snapshot size: taking a snapshot", "bytes", applied-mark)
		err := g.raft.Snapshot().Error()
		if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			g.log.Warn("snapshot by size", "err", err)
			continue // try again at the next tick
		}
		mark = applied
	}
}

// Snapshot asks raft to take a snapshot now (and compact its log).
func (g *Group) Snapshot() error {
	return g.raft.Snapshot().Error()
}

// close stops leader duties, then raft, then the stores, in that order.
// Calling it again returns the first call's error.
func (g *Group) close() error {
	g.closeOnce.Do(func() { g.closeErr = g.shutdown() })
	return g.closeErr
}

func (g *Group) shutdown() error {
	// An apply waiting for disk space would hold what waits for applies
	// below (leader duties, proposals, raft's Shutdown).
	g.fsm.StopWaiting()
	g.handOverLeadership()
	g.stopWatching()
	g.watching.Wait()
	g.stopBackground()
	g.background.Wait()
	g.proposer.close()
	// Heartbeats are handled on the transport's goroutines, not raft's: one
	// arriving during Shutdown can write the term after the stores closed,
	// and raft panics (hashicorp/raft#717). Route them through raft's main
	// loop from here on, which stops with Shutdown.
	g.transport.SetHeartbeatHandler(nil)
	var errs []error
	if err := g.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("group %d: shut down raft: %w", g.id, err))
	}
	return errors.Join(append(errs, g.closeStores())...)
}

// handOverLeadership transfers leadership to another voter before a
// leader stops, so firing resumes at once rather than after an election.
func (g *Group) handOverLeadership() {
	if g.raft.State() != raft.Leader {
		return
	}
	future := g.raft.GetConfiguration()
	if future.Error() != nil {
		return
	}
	others := 0
	for _, s := range future.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != g.node.cfg.NodeID {
			others++
		}
	}
	if others == 0 {
		return
	}
	g.log.Info("stopping: handing leadership over")
	if err := g.raft.LeadershipTransfer().Error(); err != nil {
		g.log.Warn("leadership transfer failed; the others will elect a leader", "err", err)
	}
}

// Leader returns the id and HTTP address (as gossip publishes it) of the
// group's leader, and whether that is this node. The id is empty while no
// leader is known, and while this node, elected, is still applying the
// entries committed before its term (a read it served could miss them).
func (g *Group) Leader() (id, httpAddr string, self bool) {
	_, leaderID := g.raft.LeaderWithID()
	id = string(leaderID)
	if id == "" {
		return "", "", false
	}
	if id == g.node.cfg.NodeID {
		if !g.caughtUp(g.raft.CurrentTerm()) {
			// Elected, but its state machine may not have applied what
			// earlier leaders committed: a read served now could miss an
			// acknowledged write. No leader yet, until it has.
			return "", "", false
		}
		return id, g.node.cfg.HTTPAdvertise, true
	}
	if g.node.gossip != nil {
		httpAddr = g.node.gossip.alive()[id].HTTP
	}
	return id, httpAddr, false
}

// caughtUp reports whether this replica, leading in term, has applied
// every entry committed before its term. The first to ask in a term
// starts a Barrier to find out (leader duties start after one too), and
// is told no meanwhile.
func (g *Group) caughtUp(term uint64) bool {
	if g.caughtUpTerm.Load() == term {
		return true
	}
	if g.barrierTerm.Swap(term) != term {
		// Not one of the background goroutines Close waits for: asked
		// from requests, it could start while Close waits. A Barrier
		// returns at once once raft is shut down.
		go func() {
			if err := g.raft.Barrier(5 * time.Second).Error(); err != nil {
				g.barrierTerm.CompareAndSwap(term, 0) // the next to ask tries again
				return
			}
			g.caughtUpTerm.Store(term)
		}()
	}
	return false
}

// VerifyLeader confirms that this replica still leads, at a moment after
// the call: a quorum accepted a raft barrier of its term (see
// leadershipConfirmer). ErrNotLeader or ErrIndeterminate when it does not.
func (g *Group) VerifyLeader() error { return g.confirmer.confirm() }

// Members lists the group's members, from its raft configuration and
// gossip.
func (g *Group) Members() ([]Member, error) { return g.members() }

// ErrNoSuchMember: the id is not in the raft configuration.
var ErrNoSuchMember = errors.New("no such member in the cluster configuration")

// RemoveMember takes a node out of the group's raft configuration. Only
// the group's leader can; elsewhere it is ErrNotLeader.
func (g *Group) RemoveMember(id string) error {
	if err := g.node.removeServer(g.raft, id); err != nil {
		return err
	}
	g.log.Info("removed a member", "id", id)
	return nil
}

// removeServer takes member id out of r's configuration (on r's leader),
// and remembers that an operator removed this run of it.
func (n *Node) removeServer(r *raft.Raft, id string) error {
	future := r.GetConfiguration()
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
	n.markRemoved(id)
	return translate(r.RemoveServer(raft.ServerID(id), 0, 0).Error())
}

func (g *Group) closeStores() error {
	var errs []error
	if g.transport != nil {
		errs = append(errs, g.transport.Close())
	}
	if g.store != nil {
		errs = append(errs, g.store.Close())
	}
	if g.fsm != nil {
		err := g.fsm.Close()
		if err == nil {
			err = markClosed(g.dir) // synced and closed: to be trusted
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
