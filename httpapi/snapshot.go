package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/fsm/archive"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// Backups takes and restores backups of the whole state.
type Backups interface {
	Backup(ctx context.Context) (*cluster.Backup, error)
	Restore(ctx context.Context, r io.Reader) (archive.Meta, error)
}

const snapshotPath = "/v1/snapshot"

// maxRefusedDrain is how much of a refused upload is still read, so the
// client sees the error rather than a reset connection.
const maxRefusedDrain = 1 << 30

// liftDeadlines lets a snapshot transfer take as long as its size needs:
// the server's read and write timeouts suit requests, not gigabytes.
func liftDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}

// getSnapshot streams a backup archive of the leader's state.
func (a *API) getSnapshot(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		a.writeError(w, err)
		return
	}
	b, err := a.backend(r).Backups.Backup(r.Context())
	if err != nil {
		a.writeError(w, err)
		return
	}
	defer b.Close()
	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="hourglass-%d.snap"`, b.Meta.Index))
	h.Set("Hourglass-Snapshot-Index", strconv.FormatUint(b.Meta.Index, 10))
	h.Set("Hourglass-Snapshot-Term", strconv.FormatUint(b.Meta.Term, 10))
	w.WriteHeader(http.StatusOK)
	start := time.Now()
	if err := b.WriteArchive(w); err != nil {
		// The status is sent: break the connection, so the client cannot
		// take a short archive for a whole one.
		a.log.Warn("snapshot download failed", "index", b.Meta.Index, "err", err)
		panic(http.ErrAbortHandler)
	}
	a.log.Info("snapshot downloaded", "index", b.Meta.Index, "tasks", b.Meta.Tasks.Total(),
		"state_bytes", b.Meta.StateSize, "took", time.Since(start).Round(time.Millisecond))
}

// restoreSnapshot replaces the cluster's state with the uploaded archive.
func (a *API) restoreSnapshot(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		a.writeError(w, err)
		return
	}
	meta, err := a.backend(r).Backups.Restore(r.Context(), r.Body)
	if err != nil {
		if errors.Is(err, archive.ErrInvalid) || errors.Is(err, archive.ErrTooBig) {
			io.CopyN(io.Discard, r.Body, maxRefusedDrain)
		}
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.RestoreResponse{Restored: SnapshotView(meta)})
}

// SnapshotView is the API form of an archive's metadata.
func SnapshotView(m archive.Meta) wire.Snapshot {
	v := wire.Snapshot{
		Index: m.Index, Term: m.Term, CreatedAt: m.CreatedAt, NodeID: m.NodeID,
		HourglassVersion: m.HourglassVersion, Tasks: m.Tasks, TotalTasks: m.Tasks.Total(), Schedules: m.Schedules,
	}
	if m.FormatVersion == archive.GroupsFormatVersion {
		for _, g := range m.Groups {
			v.Groups = append(v.Groups, wire.SnapshotGroup{ID: g.ID, Index: g.Index, Term: g.Term, TotalTasks: g.Tasks.Total(), Schedules: g.Schedules})
		}
	}
	return v
}
