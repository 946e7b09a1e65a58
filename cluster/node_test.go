package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/service"
)

type leaderLog struct {
	mu    sync.Mutex
	terms []uint64
	ch    chan uint64
}

func (l *leaderLog) onLeader(ctx context.Context, term uint64) {
	l.mu.Lock()
	l.terms = append(l.terms, term)
	l.mu.Unlock()
	l.ch <- term
	<-ctx.Done()
}

func openNode(t *testing.T, dir string, l *leaderLog) *Node {
	t.Helper()
	n, err := Open(Config{NodeID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	n.Start(func(*Group) LeaderFunc { return l.onLeader }, nil)
	return n
}

func waitTerm(t *testing.T, l *leaderLog) uint64 {
	t.Helper()
	select {
	case term := <-l.ch:
		return term
	case <-time.After(10 * time.Second):
		t.Fatal("node did not become leader within 10s")
		return 0
	}
}

// createOne creates task id through the typed write path on n, as the
// API does, and returns its outcome.
func createOne(ctx context.Context, n *Node, id string) (service.Created, error) {
	items, err := service.New(n.Group(1), n.Group(1).FSM(), service.Config{}).CreateTasks(ctx, []service.NewTask{{
		Task: &fsmpb.Task{Id: id, Queue: "default", ExecuteAt: 1e18},
	}})
	if err != nil {
		return service.Created{}, err
	}
	return items[0], nil
}

func createCmd(id string) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_Create{Create: &fsmpb.CreateTasks{Tasks: []*fsmpb.Task{{
		Id: id, Queue: "default", ExecuteAt: 1e18, Fingerprint: []byte(id),
	}}}}}
}

func TestSingleNodeBootstrapsAndResumes(t *testing.T) {
	dir := t.TempDir()
	l := &leaderLog{ch: make(chan uint64, 4)}
	n := openNode(t, dir, l)
	term1 := waitTerm(t, l)
	ctx := context.Background()
	item, err := createOne(ctx, n, "a")
	if err != nil {
		t.Fatal(err)
	}
	if item.Err != nil || item.Task.State != fsmpb.State_SCHEDULED {
		t.Fatalf("create result %+v", item)
	}
	written := n.Group(1).Status()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// Before any new entry (here: before the election's), the restarted
	// node reports what it holds, not raft's zero.
	n, err = Open(Config{NodeID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if st := n.Group(1).Status(); st.AppliedIndex < written.AppliedIndex || st.CommitIndex < written.AppliedIndex {
		t.Fatalf("restarted node reports commit index %d, applied %d; it had applied %d", st.CommitIndex, st.AppliedIndex, written.AppliedIndex)
	}
	n.Start(func(*Group) LeaderFunc { return l.onLeader }, nil)
	term2 := waitTerm(t, l)
	if term2 <= term1 {
		t.Fatalf("term after restart %d, before %d", term2, term1)
	}
	if _, err := n.Group(1).FSM().Get("a"); err != nil {
		t.Fatalf("task lost across restart: %v", err)
	}
	item, err = createOne(ctx, n, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !item.Existed {
		t.Fatalf("repeat create after restart: %+v", item)
	}
}

// TestGroupCommitCoalesces proposes concurrently and checks that the raft
// log grew by fewer entries than there were proposals, and that every
// proposer got its own result.
func TestGroupCommitCoalesces(t *testing.T) {
	l := &leaderLog{ch: make(chan uint64, 4)}
	n := openNode(t, t.TempDir(), l)
	defer n.Close()
	waitTerm(t, l)
	before := n.Group(1).Status().CommitIndex
	const proposals = 500
	var wg sync.WaitGroup
	errs := make(chan error, proposals)
	for i := 0; i < proposals; i++ {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			item, err := createOne(context.Background(), n, id)
			if err != nil {
				errs <- err
				return
			}
			if got := item.Task.Id; got != id {
				errs <- fmt.Errorf("proposal %s got the result of %s", id, got)
			}
		}(fmt.Sprintf("t%d", i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	entries := n.Group(1).Status().CommitIndex - before
	t.Logf("%d proposals in %d raft entries", proposals, entries)
	if entries >= proposals {
		t.Fatalf("%d proposals took %d raft entries: nothing coalesced", proposals, entries)
	}
}

func TestOpenRejectsMissingID(t *testing.T) {
	if _, err := Open(Config{DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0"}); err == nil {
		t.Fatal("node without an id opened")
	}
}

// TestStateFileBehindSnapshotIsRestored loses the state file's recent
// writes (as a crash could, since it is not fsynced per apply) after raft
// took a snapshot and compacted its log: the node must restore the file
// from the snapshot and replay the rest of the log, losing nothing.
func TestStateFileBehindSnapshotIsRestored(t *testing.T) {
	dir := t.TempDir()
	l := &leaderLog{ch: make(chan uint64, 8)}
	n := openNode(t, dir, l)
	waitTerm(t, l)
	ctx := context.Background()
	if _, err := n.Group(1).Propose(ctx, createCmd("before")); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	stale, err := os.ReadFile(filepath.Join(groupDir(dir, 1), "state.db"))
	if err != nil {
		t.Fatal(err)
	}

	n = openNode(t, dir, l)
	waitTerm(t, l)
	if _, err := n.Group(1).Propose(ctx, createCmd("in-snapshot")); err != nil {
		t.Fatal(err)
	}
	if err := n.Group(1).Snapshot(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Group(1).Propose(ctx, createCmd("after-snapshot")); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// The state file loses everything since the first run.
	if err := os.WriteFile(filepath.Join(groupDir(dir, 1), "state.db"), stale, 0o600); err != nil {
		t.Fatal(err)
	}

	n = openNode(t, dir, l)
	defer n.Close()
	waitTerm(t, l)
	for _, id := range []string{"before", "in-snapshot", "after-snapshot"} {
		if _, err := n.Group(1).FSM().Get(id); err != nil {
			t.Errorf("task %s after recovery: %v", id, err)
		}
	}
}

// A node snapshots once SnapshotBytes of entries were applied, long before
// raft's entry-count threshold, so a restart re-reads little of the log.
func TestSnapshotBySize(t *testing.T) {
	n, err := Open(Config{NodeID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", SnapshotBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	l := &leaderLog{ch: make(chan uint64, 4)}
	n.Start(func(*Group) LeaderFunc { return l.onLeader }, nil)
	waitTerm(t, l)
	if got := n.Group(1).raft.Stats()["last_snapshot_index"]; got != "0" {
		t.Fatalf("snapshot before any load: last_snapshot_index %s", got)
	}
	payload := make([]byte, 8<<10)
	for i := range 16 { // 128 KiB of entries
		cmd := createCmd(fmt.Sprintf("big-%d", i))
		cmd.GetCreate().Tasks[0].Payload = payload
		if _, err := n.Group(1).Propose(context.Background(), cmd); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.Group(1).raft.Stats()["last_snapshot_index"] == "0" {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot 10s after %d bytes were applied", n.Group(1).fsm.AppliedBytes())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Raft's errors reach callers as the cluster's, which the API maps to
// statuses.
func TestTranslate(t *testing.T) {
	for _, tc := range []struct{ raft, want error }{
		{raft.ErrAbortedByRestore, ErrRestoring},
		{raft.ErrNotLeader, ErrNotLeader},
		{raft.ErrLeadershipLost, ErrIndeterminate},
		{raft.ErrRaftShutdown, ErrIndeterminate},
		{raft.ErrEnqueueTimeout, ErrNotLeader},
	} {
		if got := translate(tc.raft); !errors.Is(got, tc.want) {
			t.Errorf("translate(%v) = %v, want %v", tc.raft, got, tc.want)
		}
	}
}

// TestStateFileRebuiltAfterPowerLoss: the state file is written without
// fsync, so after a power cut it may miss writes or be torn. A replica
// whose state file was left open under another boot of the kernel, or
// is damaged, rebuilds it from the newest raft snapshot and the log after
// it: every task is there again. Left open under the same boot (only the
// process died), the file is trusted as it is.
func TestStateFileRebuiltAfterPowerLoss(t *testing.T) {
	dir := t.TempDir()
	gdir := groupDir(dir, 1)
	state := filepath.Join(gdir, "state.db")
	l := &leaderLog{ch: make(chan uint64, 8)}
	open := func(boot string) *Node {
		t.Helper()
		n, err := Open(Config{NodeID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", BootID: boot})
		if err != nil {
			t.Fatal(err)
		}
		n.Start(func(*Group) LeaderFunc { return l.onLeader }, nil)
		waitTerm(t, l)
		return n
	}
	ctx := context.Background()
	var ids []string
	create := func(n *Node, prefix string) {
		t.Helper()
		for i := range 50 {
			id := fmt.Sprintf("%s-%03d", prefix, i)
			if item, err := createOne(ctx, n, id); err != nil || item.Err != nil {
				t.Fatalf("create %s: %v %+v", id, err, item)
			}
			ids = append(ids, id)
		}
	}
	holdsAll := func(n *Node, when string) {
		t.Helper()
		for _, id := range ids {
			if _, err := n.Group(1).FSM().Get(id); err != nil {
				t.Fatalf("%s: task %s: %v", when, id, err)
			}
		}
	}
	// cut stops n as a power cut would leave it: the record that the
	// state file is open (under boot) stays, and the file itself is
	// what damage makes of it.
	cut := func(n *Node, boot string, damage func()) {
		t.Helper()
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(gdir, openMarker), []byte(boot+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		damage()
	}
	garble := func() {
		if err := os.WriteFile(state, []byte("not a bbolt file, as a torn write might leave it"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	n := open("boot-1")
	create(n, "before-snapshot")
	if err := n.Group(1).raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	n = open("boot-1")
	create(n, "after-snapshot") // in the raft log, and the state file's page cache
	// The power cut loses the pages of the later writes but not the meta
	// page that points past them: bbolt sees a whole file, at the latest
	// applied index, without the later tasks.
	cut(n, "boot-1", func() {
		applied := stateApplied(t, state, 0)
		if err := os.WriteFile(state, old, 0o600); err != nil {
			t.Fatal(err)
		}
		stateApplied(t, state, applied)
	})

	n = open("boot-2")
	if g := n.Group(1); g.rebuilding == "" {
		t.Fatal("a state file left open under another boot was trusted")
	}
	holdsAll(n, "after a power cut")
	create(n, "after-rebuild")

	// Only the process died: the same boot, the file as it was.
	cut(n, "boot-2", func() {})
	n = open("boot-2")
	if g := n.Group(1); g.rebuilding != "" {
		t.Fatalf("a state file left open under the same boot was rebuilt: %s", g.rebuilding)
	}
	holdsAll(n, "after the process died")

	// Closed cleanly, but damaged since: rebuilt too.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	garble()
	n = open("boot-3")
	if g := n.Group(1); g.rebuilding == "" {
		t.Fatal("a damaged state file was opened")
	}
	holdsAll(n, "after the state file was damaged")

	// With the newest snapshot damaged too, the node refuses to start,
	// saying what to do.
	create(n, "last")
	if err := n.Group(1).raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	cut(n, "boot-3", garble)
	snaps, err := filepath.Glob(filepath.Join(gdir, "snapshots", "*", "*", "state.bin"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("snapshots: %v %v", snaps, err)
	}
	for _, s := range snaps {
		if err := os.WriteFile(s, []byte("damaged"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// And again: the first attempt left an empty state file, which must
	// not be served now that nothing says the machine restarted.
	for _, boot := range []string{"boot-4", "boot-4"} {
		_, err = Open(Config{NodeID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", BootID: boot})
		if err == nil || !strings.Contains(err.Error(), "cannot be brought up to date") || !strings.Contains(err.Error(), "cluster remove") {
			t.Fatalf("open with every copy of the state damaged: %v", err)
		}
	}
}

// stateApplied reads the applied index of the state file at path, and
// first sets it to set unless that is 0, as a torn write could leave it.
func stateApplied(t *testing.T, path string, set uint64) uint64 {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var applied uint64
	err = db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if set != 0 {
			if err := meta.Put([]byte("applied"), binary.BigEndian.AppendUint64(nil, set)); err != nil {
				return err
			}
		}
		applied = binary.BigEndian.Uint64(meta.Get([]byte("applied")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return applied
}

// TestElectedLeaderServesOnceCaughtUp: a node restarts with its state
// file rebuilt from an old snapshot, and the raft log after it still to
// apply. From the moment it is elected until it has applied that log, it
// does not count as the leader (Leader names none, Ready says why): a
// read it served then would miss writes acknowledged before.
func TestElectedLeaderServesOnceCaughtUp(t *testing.T) {
	dir := t.TempDir()
	l := &leaderLog{ch: make(chan uint64, 8)}
	n, err := Open(Config{NodeID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", BootID: "boot-1"})
	if err != nil {
		t.Fatal(err)
	}
	n.Start(func(*Group) LeaderFunc { return l.onLeader }, nil)
	waitTerm(t, l)
	if err := n.Group(1).raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		t.Fatal(err)
	}
	ctx := context.Background()
	const entries = 400
	for i := range entries { // one raft entry each, after the snapshot
		if item, err := createOne(ctx, n, fmt.Sprintf("t%03d", i)); err != nil || item.Err != nil {
			t.Fatalf("create: %v %+v", err, item)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// A power cut: the state file is rebuilt from the snapshot at start.
	if err := os.WriteFile(filepath.Join(groupDir(dir, 1), openMarker), []byte("boot-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err = Open(Config{NodeID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", BootID: "boot-2"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	g := n.Group(1)
	n.Start(func(*Group) LeaderFunc { return l.onLeader }, nil)
	last := fmt.Sprintf("t%03d", entries-1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, self := g.Leader()
		if self {
			if _, err := g.FSM().Get(last); err != nil {
				t.Fatalf("this node names itself the leader, but its state misses an acknowledged write: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node did not become leader within 10s")
		}
		time.Sleep(100 * time.Microsecond)
	}
	if err := g.Ready(); err != nil {
		t.Fatalf("ready, once caught up: %v", err)
	}
}

// TestLingeringProposalsShareAnEntry: proposals that may wait do, for one
// another, and one that may not takes them along at once; a large one
// does not wait.
func TestLingeringProposalsShareAnEntry(t *testing.T) {
	l := &leaderLog{ch: make(chan uint64, 4)}
	n := openNode(t, t.TempDir(), l)
	defer n.Close()
	waitTerm(t, l)
	g := n.Group(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	propose := func(wg *sync.WaitGroup, cmd *fsmpb.Command, linger time.Duration) {
		wg.Go(func() {
			if _, err := g.ProposeWithin(ctx, cmd, linger); err != nil {
				t.Error(err)
			}
		})
	}
	before := g.Status().CommitIndex
	var wg sync.WaitGroup
	for i := range 3 {
		propose(&wg, createCmd(fmt.Sprint("lazy-", i)), time.Hour)
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.proposer.lingering.Load() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d proposals lingering, want the 3", g.proposer.lingering.Load())
		}
		time.Sleep(time.Millisecond)
	}
	propose(&wg, createCmd("urgent"), 0)
	wg.Wait()
	if got := g.Status().CommitIndex - before; got != 1 {
		t.Fatalf("%d entries for three lingering proposals and an urgent one, want 1", got)
	}

	big := createCmd("big")
	big.GetCreate().Tasks[0].Payload = make([]byte, lingerMaxBytes)
	propose(&wg, big, time.Hour) // would wait an hour, and the test time out
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("a large proposal waited for others")
	}
}
