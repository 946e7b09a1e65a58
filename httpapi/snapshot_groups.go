package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/archive"
	"github.com/hourglass-scheduler/hourglass/slots"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// A backup of a cluster of many groups is one archive (archive.WriteGroups):
// each group's own backup, taken by its leader, streamed through this node
// into one file, a group after the other, never held in memory. A restore
// is checked whole on this node's disk first; then each group's leader is
// sent its part, all at once. An archive of a single-group cluster
// restores too: its tasks are split by slot.

// pipeResponse is a ResponseWriter whose body streams to a reader.
type pipeResponse struct {
	header http.Header
	status int
	ready  chan struct{} // closed once the status is known
	once   sync.Once
	pw     *io.PipeWriter
}

func (p *pipeResponse) Header() http.Header { return p.header }
func (p *pipeResponse) WriteHeader(status int) {
	p.once.Do(func() { p.status = status; close(p.ready) })
}
func (p *pipeResponse) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.pw.Write(b)
}

// streamGroup sends part to its group and returns the answer's status and
// its body as a stream (close it).
func (a *API) streamGroup(r *http.Request, p groupPart, body io.Reader) (int, io.ReadCloser) {
	sub, err := a.groupRequest(r, p, body)
	if err != nil {
		return http.StatusInternalServerError, io.NopCloser(strings.NewReader(""))
	}
	pr, pw := io.Pipe()
	resp := &pipeResponse{header: http.Header{}, ready: make(chan struct{}), pw: pw}
	go func() {
		defer func() {
			if v := recover(); v != nil { // a handler abandoning a stream
				resp.WriteHeader(http.StatusInternalServerError)
				pw.CloseWithError(fmt.Errorf("group %d: the stream broke off", p.group))
			}
		}()
		a.serveGroup(resp, sub, p.group)
		resp.WriteHeader(http.StatusOK)
		pw.Close()
	}()
	<-resp.ready
	return resp.status, pr
}

// failedStream is the error a group's failed stream carries.
func failedStream(g slots.Group, status int, body io.Reader) *apiError {
	data, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	msg := answerError(groupAnswer{group: g, status: status, body: data}).Message
	return &apiError{status, wire.CodeUnavailable, fmt.Sprintf("group %d: %s", g, msg)}
}

// snapshotAcross streams a backup of every group as one archive.
func (a *API) snapshotAcross(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		a.writeError(w, err)
		return
	}
	parts := a.everyGroup(r, nil)
	sources := make([]*archive.GroupSource, len(parts))
	var bodies []io.ReadCloser
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	for i, p := range parts {
		status, body := a.streamGroup(r, p, nil)
		bodies = append(bodies, body)
		if status != http.StatusOK {
			a.writeError(w, failedStream(p.group, status, body))
			return
		}
		src, err := archive.OpenGroup(body)
		if err != nil {
			a.writeError(w, fmt.Errorf("group %d: %w", p.group, err))
			return
		}
		sources[i] = src
	}
	meta := archive.GroupsMeta(sources, sources[0].Meta.HourglassVersion, a.cfg.Node.ID(), a.cfg.Now())
	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="hourglass-%s.snap"`, meta.CreatedAt.Format("20060102T150405Z")))
	h.Set("Hourglass-Snapshot-Groups", strconv.Itoa(len(sources)))
	w.WriteHeader(http.StatusOK)
	start := time.Now()
	if err := archive.WriteGroups(w, meta, sources); err != nil {
		a.log.Warn("snapshot download failed", "err", err)
		panic(http.ErrAbortHandler) // the client must not take it for whole
	}
	a.log.Info("snapshot downloaded", "groups", len(sources), "tasks", meta.Tasks.Total(),
		"state_bytes", meta.StateSize, "took", time.Since(start).Round(time.Millisecond))
}

// restoreAcross checks an uploaded archive whole, then restores each
// group's part on its leader, all at once. Groups restore apart: if one
// fails, the others are restored and the answer says which; restoring the
// same archive again is safe.
func (a *API) restoreAcross(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		a.writeError(w, err)
		return
	}
	dir, err := os.MkdirTemp(a.cfg.TempDir, "restore-")
	if err != nil {
		a.writeError(w, fmt.Errorf("restore: %w", err))
		return
	}
	defer os.RemoveAll(dir)
	meta, err := archive.ExtractGroups(r.Body, dir, a.cfg.CheckState)
	if err != nil {
		if errors.Is(err, archive.ErrInvalid) || errors.Is(err, archive.ErrTooBig) {
			io.CopyN(io.Discard, r.Body, maxRefusedDrain)
		}
		a.writeError(w, err)
		return
	}
	parts := a.everyGroup(r, nil)
	switch {
	case len(meta.Groups) == len(parts):
	case len(meta.Groups) == 1:
		if meta, err = a.splitState(dir, meta, len(parts)); err != nil {
			a.writeError(w, err)
			return
		}
	default:
		a.writeError(w, invalid("the backup holds %d groups and this cluster %d: restore it into a cluster made with --groups %d, or a single-group backup into any",
			len(meta.Groups), len(parts), len(meta.Groups)))
		return
	}
	a.log.Info("restoring every group from a backup", "groups", len(parts), "tasks", meta.Tasks.Total())
	failures := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := meta.Groups[i]
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(archive.GroupArchive(pw, meta, g, archive.GroupStatePath(dir, g.ID))) }()
			status, body := a.streamGroup(r, groupPart{group: p.group, method: http.MethodPost, target: snapshotPath}, pr)
			defer body.Close()
			pr.CloseWithError(errors.New("restore answered")) // unblock the writer if the group stopped reading
			if status != http.StatusOK {
				failures[i] = failedStream(p.group, status, body)
			}
		}()
	}
	wg.Wait()
	var failed, restored []string
	var first error
	for i, err := range failures {
		if err != nil {
			failed = append(failed, parts[i].group.String())
			if first == nil {
				first = err
			}
		} else {
			restored = append(restored, parts[i].group.String())
		}
	}
	if first != nil {
		a.writeError(w, &apiError{http.StatusServiceUnavailable, wire.CodeUnavailable,
			fmt.Sprintf("restored groups [%s], not [%s]: %v; restoring the same backup again is safe", strings.Join(restored, " "), strings.Join(failed, " "), first)})
		return
	}
	writeJSON(w, http.StatusOK, wire.RestoreResponse{Restored: SnapshotView(meta)})
}

// splitState splits the one group's state extracted in dir among count
// groups by slot, and returns the archive's meta with the groups.
func (a *API) splitState(dir string, meta archive.Meta, count int) (archive.Meta, error) {
	table := a.cfg.Node.Table()
	split := filepath.Join(dir, "whole.db")
	if err := os.Rename(archive.GroupStatePath(dir, 1), split); err != nil {
		return meta, err
	}
	meta.FormatVersion, meta.Groups, meta.Index, meta.Term, meta.StateSize = archive.GroupsFormatVersion, nil, 0, 0, 0
	for g := slots.Group(1); g <= slots.Group(count); g++ {
		path := archive.GroupStatePath(dir, uint32(g))
		if err := copyFile(split, path); err != nil {
			return meta, fmt.Errorf("split the backup: %w", err)
		}
		if err := fsm.KeepTasks(path, func(id string) bool { return table.GroupOf(id) == g }); err != nil {
			return meta, err
		}
		info, err := fsm.CheckStateFile(path)
		if err != nil {
			return meta, fmt.Errorf("split the backup: group %d: %w", g, err)
		}
		st, err := os.Stat(path)
		if err != nil {
			return meta, err
		}
		meta.Groups = append(meta.Groups, archive.GroupMeta{ID: uint32(g), Index: info.Index, Term: info.Term, StateSize: st.Size(), Tasks: info.Tasks, Schedules: info.Schedules})
		meta.StateSize += st.Size()
	}
	a.log.Info("split a single-group backup among the groups by slot", "groups", count)
	return meta, nil
}

// copyFile copies the file at from to a new file at to.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
