package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/hourglass-scheduler/hourglass/slots"
)

// MetaGroup is the meta group's id: its raft mux layer, and how the API
// names it (in LeaderOf, and in a member's removal); the groups holding
// tasks count from 1.
const MetaGroup slots.Group = 0

// metaGroup is this node's replica of the meta group: a small raft group
// on every node (up to maxVoters of them voting, the others following)
// whose state is the Placement of the other groups' replicas. Its leader
// decides the placement (placeReplicas); every node follows it, opening
// and closing its replicas (followPlacement), and each group's leader
// brings its group's configuration to it (reconcilePlacement).
type metaGroup struct {
	log       *slog.Logger
	fsm       *metaFSM
	store     *raftboltdb.BoltStore
	snaps     raft.SnapshotStore
	transport *raft.NetworkTransport
	raft      *raft.Raft
}

func metaDir(dataDir string) string { return filepath.Join(dataDir, "meta") }

// openMeta opens (or creates) this node's replica of the meta group.
func openMeta(n *Node) (*metaGroup, error) {
	cfg := n.cfg
	dir := metaDir(cfg.DataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create meta group directory: %w", err)
	}
	logger := cfg.Logger.With("group", "meta")
	m := &metaGroup{log: logger.With("component", "cluster"), fsm: newMetaFSM()}
	ok := false
	defer func() {
		if !ok {
			m.closeStores()
		}
	}()
	var err error
	if m.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")}); err != nil {
		return nil, fmt.Errorf("open the meta group's raft log: %w", err)
	}
	if m.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, newHCLog(logger, "raft")); err != nil {
		return nil, fmt.Errorf("open the meta group's snapshot store: %w", err)
	}
	layer, err := n.mux.Layer(uint32(MetaGroup))
	if err != nil {
		return nil, err
	}
	m.transport = raft.NewNetworkTransportWithLogger(layer, 3, 10*time.Second, newHCLog(logger, "raft-net"))
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = newHCLog(logger, "raft")
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	// The state is a few kilobytes: snapshot often, keep the log short.
	rc.SnapshotThreshold = 1024
	rc.TrailingLogs = 1024
	if m.raft, err = raft.NewRaft(rc, m.fsm, m.store, m.store, m.snaps, m.transport); err != nil {
		return nil, fmt.Errorf("start the meta group's raft: %w", err)
	}
	ok = true
	return m, nil
}

// hasState reports whether the replica has raft state.
func (m *metaGroup) hasState() (bool, error) {
	existing, err := raft.HasExistingState(m.store, m.store, m.snaps)
	if err != nil {
		return false, fmt.Errorf("meta group: inspect raft state: %w", err)
	}
	return existing, nil
}

// bootstrap starts the meta group with servers as its voters (its first
// leader then writes the first placement: see placeReplicas).
func (m *metaGroup) bootstrap(servers []raft.Server) error {
	if err := m.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return fmt.Errorf("meta group: bootstrap: %w", err)
	}
	return nil
}

// placement is the current placement and false while none is known.
func (m *metaGroup) placement() (Placement, bool) {
	p, _ := m.fsm.read()
	return p, p.Groups > 0
}

// isLeader reports whether this node leads the meta group.
func (m *metaGroup) isLeader() bool { return m.raft.State() == raft.Leader }

// propose replicates cmd (on the leader).
func (m *metaGroup) propose(cmd metaCommand) error {
	data, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	f := m.raft.Apply(data, 10*time.Second)
	if err := f.Error(); err != nil {
		return translate(err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return err
	}
	return nil
}

func (m *metaGroup) close() error {
	var errs []error
	if err := m.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("meta group: shut down raft: %w", err))
	}
	return errors.Join(append(errs, m.closeStores())...)
}

func (m *metaGroup) closeStores() error {
	var errs []error
	if m.transport != nil {
		errs = append(errs, m.transport.Close())
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	return errors.Join(errs...)
}

// metaCommand is an entry of the meta group's log (JSON: it is rare and
// small, and an operator can read it).
type metaCommand struct {
	// Op is "init" (the first placement of a new cluster) or "place"
	// (group's replicas become Replicas).
	Op       string      `json:"op"`
	Init     *Placement  `json:"init,omitempty"`
	Group    slots.Group `json:"group,omitempty"`
	Replicas []string    `json:"replicas,omitempty"`
}

// metaFSM is the meta group's state machine: the placement, in memory
// (raft restores it from its snapshot and log at start).
type metaFSM struct {
	mu      sync.Mutex
	p       Placement
	index   uint64        // last applied
	changed chan struct{} // poked at every change
}

func newMetaFSM() *metaFSM { return &metaFSM{changed: make(chan struct{}, 1)} }

func (f *metaFSM) read() (Placement, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.p.clone(), f.index
}

func (f *metaFSM) poke() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Apply implements raft.FSM.
func (f *metaFSM) Apply(l *raft.Log) any {
	var cmd metaCommand
	if err := json.Unmarshal(l.Data, &cmd); err != nil {
		return fmt.Errorf("meta group: entry %d: %w", l.Index, err)
	}
	f.mu.Lock()
	defer f.poke()
	defer f.mu.Unlock()
	f.index = l.Index
	switch cmd.Op {
	case "init":
		if f.p.Groups > 0 || cmd.Init == nil {
			return nil // placed already: a second bootstrap's entry
		}
		f.p = cmd.Init.clone()
		for g := slots.Group(1); g <= slots.Group(f.p.Groups); g++ {
			f.p.Changed[g] = l.Index
		}
	case "place":
		if cmd.Group < 1 || int(cmd.Group) > f.p.Groups || len(cmd.Replicas) == 0 {
			return fmt.Errorf("meta group: entry %d: no group %d, or no replicas", l.Index, cmd.Group)
		}
		f.p.Replicas[cmd.Group] = cmd.Replicas
		f.p.Changed[cmd.Group] = l.Index
	default:
		return fmt.Errorf("meta group: entry %d: unknown op %q", l.Index, cmd.Op)
	}
	return nil
}

type metaSnapshot struct {
	Placement Placement `json:"placement"`
	Index     uint64    `json:"index"`
}

// Snapshot implements raft.FSM.
func (f *metaFSM) Snapshot() (raft.FSMSnapshot, error) {
	p, index := f.read()
	return &metaSnapshot{Placement: p, Index: index}, nil
}

// Restore implements raft.FSM.
func (f *metaFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s metaSnapshot
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return fmt.Errorf("meta group: read snapshot: %w", err)
	}
	if s.Placement.Replicas == nil {
		s.Placement = Placement{Replicas: map[slots.Group][]string{}, Changed: map[slots.Group]uint64{}}
	}
	f.mu.Lock()
	f.p, f.index = s.Placement.clone(), s.Index
	f.mu.Unlock()
	f.poke()
	return nil
}

// Persist implements raft.FSMSnapshot.
func (s *metaSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("meta group: write snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *metaSnapshot) Release() {}
