package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/archive"
	"github.com/hourglass-scheduler/hourglass/fsm/archive/archivetest"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// allTasks lists every task a node holds, by id.
func allTasks(t *testing.T, n *Node) map[string]*fsmpb.Task {
	t.Helper()
	tasks, _, err := n.Group(1).FSM().List(fsm.ListQuery{Limit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*fsmpb.Task{}
	for _, task := range tasks {
		out[task.Id] = task
	}
	return out
}

// sameTasks reports how two task sets differ ("" when they are equal).
func sameTasks(got, want map[string]*fsmpb.Task) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d tasks, want %d", len(got), len(want))
	}
	for id, w := range want {
		if !proto.Equal(got[id], w) {
			return fmt.Sprintf("task %s is %v, want %v", id, got[id], w)
		}
	}
	return ""
}

func backupBytes(t *testing.T, n *Node) ([]byte, archive.Meta) {
	t.Helper()
	b, err := n.Group(1).Backup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var buf bytes.Buffer
	if err := b.WriteArchive(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), b.Meta
}

func propose(t *testing.T, n *Node, cmds ...*fsmpb.Command) {
	t.Helper()
	for _, c := range cmds {
		if _, err := n.Group(1).Propose(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
}

func cancelCmd(id string) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_Cancel{Cancel: &fsmpb.CancelTask{Id: id, At: 5, RetainUntil: 1e18}}}
}

// TestRestoreReachesEveryNode backs up a three-node cluster, changes it,
// restores the backup through the leader and checks that every node then
// holds exactly the saved tasks, and that the cluster takes writes after.
func TestRestoreReachesEveryNode(t *testing.T) {
	c := newTestCluster(t)
	seed := c.start("n1", 3).Status().GossipAddr
	c.start("n2", 3, seed)
	c.start("n3", 3, seed)
	leader := c.leader()
	c.waitFor(10*time.Second, "3 voters", func() bool { return c.voters(leader) == 3 })
	for i := 0; i < 50; i++ {
		propose(t, leader, createCmd(fmt.Sprintf("t%02d", i)))
	}
	propose(t, leader, cancelCmd("t07"))

	saved := allTasks(t, leader)
	data, meta := backupBytes(t, leader)
	if meta.Tasks.Total() != 50 || meta.Tasks["cancelled"] != 1 || meta.Index != leader.Group(1).FSM().AppliedIndex() {
		t.Fatalf("backup meta %+v; leader state applied %d", meta, leader.Group(1).FSM().AppliedIndex())
	}

	// Change things: new tasks, cancels.
	propose(t, leader, createCmd("later-1"), createCmd("later-2"), cancelCmd("t01"), cancelCmd("t02"))
	// The state file's index: raft's own applied index may trail the
	// answer to the last Propose for a moment.
	before := leader.Group(1).FSM().AppliedIndex()

	// A damaged archive is refused and changes nothing.
	bad := archivetest.Damage(t, data, len(data)/2)
	if _, err := leader.Group(1).Restore(context.Background(), bytes.NewReader(bad)); !errors.Is(err, archive.ErrInvalid) {
		t.Fatalf("restore of a damaged archive: %v", err)
	}
	if _, err := leader.Group(1).Restore(context.Background(), bytes.NewReader(data[:len(data)-100])); !errors.Is(err, archive.ErrInvalid) {
		t.Fatalf("restore of a truncated archive: %v", err)
	}
	if got := leader.Group(1).FSM().AppliedIndex(); got != before || !c.hasTask(leader, "later-1") {
		t.Fatalf("a refused restore changed the state (applied %d, was %d)", got, before)
	}

	// A follower cannot restore.
	for _, n := range c.nodes {
		if n != leader {
			if _, err := n.Group(1).Restore(context.Background(), bytes.NewReader(data)); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("restore on a follower: %v", err)
			}
			break
		}
	}

	got, err := leader.Group(1).Restore(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != meta.Index {
		t.Fatalf("restore reported backup index %d, want %d", got.Index, meta.Index)
	}
	for id, n := range c.nodes {
		c.waitFor(10*time.Second, id+" holding the restored state", func() bool { return sameTasks(allTasks(t, n), saved) == "" })
	}

	// Writes go on, at versions above everything restored.
	leader = c.leader()
	item, err := createOne(context.Background(), leader, "after")
	if err != nil {
		t.Fatal(err)
	}
	if v := item.Task.Version; v <= before {
		t.Fatalf("first write after the restore has version %d, not above %d", v, before)
	}
	for id, n := range c.nodes {
		c.waitFor(10*time.Second, "task after on "+id, func() bool { return c.hasTask(n, "after") })
	}
}

// TestRestoreRestartsLeaderDutiesAndSurvivesRestart: leader duties stop
// for the restore and start again on the restored state; after a restart
// the node neither loses the restore nor needs to reload its snapshot.
func TestRestoreRestartsLeaderDutiesAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	l := &leaderLog{ch: make(chan uint64, 8)}
	n := openNode(t, dir, l)
	term := waitTerm(t, l)
	propose(t, n, createCmd("kept"))
	data, _ := backupBytes(t, n)
	propose(t, n, createCmd("dropped"), cancelCmd("kept"))

	if _, err := n.Group(1).Restore(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if again := waitTerm(t, l); again != term {
		t.Fatalf("leader duties restarted in term %d, want %d", again, term)
	}
	if task, err := n.Group(1).FSM().Get("kept"); err != nil || task.State != fsmpb.State_SCHEDULED {
		t.Fatalf("restored task: %v %v", task, err)
	}
	if _, err := n.Group(1).FSM().Get("dropped"); !errors.Is(err, fsm.ErrNotFound) {
		t.Fatalf("task created after the backup: %v", err)
	}
	// The state file says it holds what raft's newest snapshot holds, so
	// a restart has nothing to reload.
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(groupDir(dir, 1), "snapshots"), 2, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("snapshots after a restore: %v %v", list, err)
	}
	if applied := n.Group(1).FSM().AppliedIndex(); applied != list[0].Index {
		t.Fatalf("state file applied index %d, restore snapshot at %d", applied, list[0].Index)
	}
	if entries, _ := filepath.Glob(filepath.Join(groupDir(dir, 1), restoreDirPrefix+"*")); len(entries) != 0 {
		t.Fatalf("restore left %v behind", entries)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, dir, l)
	defer n.Close()
	waitTerm(t, l)
	if _, err := n.Group(1).FSM().Get("kept"); err != nil {
		t.Fatalf("restored task after a restart: %v", err)
	}
	if _, err := n.Group(1).FSM().Get("dropped"); !errors.Is(err, fsm.ErrNotFound) {
		t.Fatalf("dropped task back after a restart: %v", err)
	}
}
