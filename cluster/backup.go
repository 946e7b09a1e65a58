package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/archive"
)

// Backup is a consistent view of the cluster's state, ready to be
// streamed as a backup archive. Close it when done.
type Backup struct {
	Meta  archive.Meta
	state *fsm.Backup
}

// WriteArchive streams the archive.
func (b *Backup) WriteArchive(w io.Writer) error { return archive.Write(w, b.Meta, b.state) }

// Close releases the view.
func (b *Backup) Close() error { return b.state.Close() }

// Backup opens a backup of the whole state. Only the leader can; it first
// commits a barrier, which proves it still leads and that its state
// machine holds every write acknowledged before the call.
func (g *Group) Backup(ctx context.Context) (*Backup, error) {
	if err := g.barrier(ctx); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	state, err := g.fsm.Backup()
	if err != nil {
		return nil, err
	}
	return &Backup{Meta: archive.NewMeta(state, g.node.cfg.Version, g.node.cfg.NodeID, time.Now()), state: state}, nil
}

func (g *Group) barrier(ctx context.Context) error {
	if g.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	return translate(g.raft.Barrier(timeout).Error())
}

// restoreTimeout bounds a whole raft.Restore: copying the state into the
// snapshot store, loading it, and committing an entry after it.
const restoreTimeout = 10 * time.Minute

// restoreDirPrefix names the temporary directories a restore extracts
// into, inside the data directory; Open removes any a crash left.
const restoreDirPrefix = "restore-"

// Restore replaces the whole cluster's state with the backup archive read
// from r. The archive is extracted and checked through and through
// (archive.Extract) before anything changes: a damaged, truncated or
// foreign archive is an error wrapping archive.ErrInvalid, and the state
// is as it was. Then leader duties stop, raft.Restore installs the state
// as a snapshot on this node and sends it to every other, and leader
// duties start again on the restored state. Only the leader can restore.
func (g *Group) Restore(ctx context.Context, r io.Reader) (archive.Meta, error) {
	if g.raft.State() != raft.Leader {
		return archive.Meta{}, ErrNotLeader
	}
	dir, err := os.MkdirTemp(g.dir, restoreDirPrefix)
	if err != nil {
		return archive.Meta{}, fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.db")
	meta, err := archive.Extract(r, path, g.node.cfg.CheckState)
	if err != nil {
		return archive.Meta{}, err
	}
	g.log.Info("restoring the cluster from a backup", "backup_index", meta.Index, "backup_term", meta.Term,
		"backup_node", meta.NodeID, "backup_created_at", meta.CreatedAt, "tasks", meta.Tasks.Total())
	err = g.withoutLeaderDuties(ctx, func() error { return g.restoreState(path, meta.Index) })
	if err != nil {
		return archive.Meta{}, fmt.Errorf("restore: %w", err)
	}
	g.log.Info("restored the cluster from a backup", "applied_index", g.raft.AppliedIndex())
	return meta, nil
}

// restoreState hands the checked state file at path to raft.Restore.
// raft installs it as a snapshot at an index above both its own log and
// the backup's (so the log has a hole and every follower is sent the
// snapshot); the file is stamped with that index first, so the state
// machine and raft agree on what it holds.
func (g *Group) restoreState(path string, backupIndex uint64) error {
	if g.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	index := max(g.raft.LastIndex(), backupIndex) + 1
	term := g.raft.CurrentTerm()
	if err := fsm.RebaseStateFile(path, index, term); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// raft takes the larger of its last index and meta.Index, plus one:
	// index, unless entries were appended since LastIndex was read (then
	// a later index, and the file's is merely older, which is safe).
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: index - 1, Term: term, Size: st.Size()}
	return translate(g.raft.Restore(meta, f, restoreTimeout))
}

// withoutLeaderDuties runs fn while no leader duties run on this node:
// they stop first (a delivery under way is cancelled) and start again
// after fn if the node still leads.
func (g *Group) withoutLeaderDuties(ctx context.Context, fn func() error) error {
	req := exclusiveRun{fn: fn, done: make(chan error, 1)}
	select {
	case g.exclusive <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once taken, fn runs to its end: a restore cannot be abandoned half
	// way, so the caller waits for it even if ctx ends.
	return <-req.done
}

type exclusiveRun struct {
	fn   func() error
	done chan error
}

// removeStaleRestores deletes what a restore interrupted by a crash left.
func removeStaleRestores(dataDir string) error {
	dirs, err := filepath.Glob(filepath.Join(dataDir, restoreDirPrefix+"*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		errs = append(errs, os.RemoveAll(d))
	}
	return errors.Join(errs...)
}
