package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/fsm/archive"
	"github.com/hourglass-scheduler/hourglass/httpapi"
)

const snapshotUsage = `Usage:
  hourglass snapshot save FILE      back up the whole cluster into FILE (verified;
                                    an existing FILE only with --force)
  hourglass snapshot inspect FILE   check a backup offline and show what it holds
  hourglass snapshot restore FILE   replace the whole cluster's state with a backup
`

func runSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, err := subcommand("snapshot", snapshotUsage, args, stderr)
	if err != nil {
		return err
	}
	var server *clientFlags
	if args[0] != "inspect" {
		server = addClientFlags(fs)
	}
	tmpDir := fs.String("tmp-dir", "", "where to unpack the state while checking it (default: the system's temporary directory)")
	asJSON := fs.Bool("json", false, "print JSON rather than a summary")
	var force *bool
	if args[0] == "save" {
		force = fs.Bool("force", false, "replace FILE if it exists")
	}
	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fmt.Fprint(stderr, snapshotUsage)
		return fmt.Errorf("%w: snapshot %s takes one file name", errUsage, args[0])
	}
	file := rest[0]
	switch args[0] {
	case "save":
		if _, err := os.Lstat(file); err == nil && !*force {
			return fmt.Errorf("%s exists; pass --force to replace it with a new backup", file)
		}
		c, err := server.connect()
		if err != nil {
			return err
		}
		return saveSnapshot(ctx, c, file, *tmpDir, *asJSON, stdout, stderr)
	case "inspect":
		start := time.Now()
		check, err := childStateChecker()
		if err != nil {
			return err
		}
		meta, err := archive.Verify(file, *tmpDir, check)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		return printSnapshot(stdout, *asJSON, file+" is a whole backup", file, meta,
			fmt.Sprintf("checked in %v", time.Since(start).Round(time.Millisecond)))
	case "restore":
		c, err := server.connect()
		if err != nil {
			return err
		}
		return restoreSnapshot(ctx, c, file, *asJSON, stdout, stderr)
	default:
		fmt.Fprint(stderr, snapshotUsage)
		return fmt.Errorf("%w: unknown snapshot subcommand %q", errUsage, args[0])
	}
}

// saveSnapshot downloads into FILE.unverified, verifies that completely,
// and only then renames it to FILE: a FILE that exists is a good backup.
func saveSnapshot(ctx context.Context, c *client.Client, file, tmpDir string, asJSON bool, stdout, stderr io.Writer) error {
	partial := file + ".unverified"
	// A backup holds every payload: readable by its owner only.
	out, err := os.OpenFile(partial, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	start := time.Now()
	progress := startProgress(stderr, "received", -1)
	_, err = c.SaveSnapshot(ctx, io.MultiWriter(out, progress))
	progress.stop()
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(partial)
		return fmt.Errorf("save snapshot: %w", err)
	}
	downloaded := time.Since(start)

	start = time.Now()
	check, err := childStateChecker()
	if err != nil {
		return err
	}
	meta, err := archive.Verify(partial, tmpDir, check)
	if err != nil {
		return fmt.Errorf("save snapshot: the downloaded backup failed its check, left as %s for inspection: %w", partial, err)
	}
	if err := os.Rename(partial, file); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if err := syncDir(filepath.Dir(file)); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	return printSnapshot(stdout, asJSON, "saved "+file, file, meta,
		fmt.Sprintf("downloaded in %v, verified in %v", downloaded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond)))
}

// restoreSnapshot checks the file's framing and digests locally (so a
// damaged file is refused before the cluster is disturbed), then uploads
// it; the server checks it through and through before it restores.
func restoreSnapshot(ctx context.Context, c *client.Client, file string, asJSON bool, stdout, stderr io.Writer) error {
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := archive.Check(in); err != nil {
		return fmt.Errorf("%s: %w; nothing was sent", file, err)
	}
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return err
	}
	start := time.Now()
	progress := startProgress(stderr, "sent", st.Size())
	res, err := c.RestoreSnapshot(ctx, io.TeeReader(in, progress))
	progress.stop()
	if err != nil {
		return fmt.Errorf("restore %s: %w", file, err)
	}
	s := res.Restored
	if asJSON {
		return writeJSON(stdout, s)
	}
	if len(s.Groups) > 0 {
		fmt.Fprintf(stdout, "restored %s in %v: each of the cluster's %d groups now holds its state as taken %s through %s\n",
			file, time.Since(start).Round(time.Millisecond), len(s.Groups), s.CreatedAt.Format(time.RFC3339), s.NodeID)
	} else {
		fmt.Fprintf(stdout, "restored %s in %v: the cluster now holds the state of raft index %d (term %d), taken %s on %s\n",
			file, time.Since(start).Round(time.Millisecond), s.Index, s.Term, s.CreatedAt.Format(time.RFC3339), s.NodeID)
	}
	fmt.Fprintf(stdout, "tasks: %d (%s); schedules: %d\n", s.TotalTasks, countsLine(s.Tasks), s.Schedules)
	return nil
}

// snapshotJSON is what --json prints for save and inspect.
type snapshotJSON struct {
	File string `json:"file"`
	client.Snapshot
	FormatVersion int   `json:"format_version"`
	SchemaVersion int64 `json:"schema_version"`
	StateBytes    int64 `json:"state_bytes"`
	FileBytes     int64 `json:"file_bytes"`
}

func printSnapshot(w io.Writer, asJSON bool, headline, file string, m archive.Meta, timing string) error {
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(w, snapshotJSON{
			File: file, Snapshot: httpapi.SnapshotView(m), FormatVersion: m.FormatVersion,
			SchemaVersion: int64(m.SchemaVersion), StateBytes: m.StateSize, FileBytes: st.Size(),
		})
	}
	if m.FormatVersion == archive.GroupsFormatVersion {
		fmt.Fprintf(w, "%s: %d groups, taken %s through node %s by hourglass %s\n",
			headline, len(m.Groups), m.CreatedAt.Format(time.RFC3339), m.NodeID, m.HourglassVersion)
		for _, g := range m.Groups {
			fmt.Fprintf(w, "group %d: raft index %d (term %d), %d tasks, %d schedules\n", g.ID, g.Index, g.Term, g.Tasks.Total(), g.Schedules)
		}
	} else {
		fmt.Fprintf(w, "%s: raft index %d (term %d), taken %s on node %s by hourglass %s\n",
			headline, m.Index, m.Term, m.CreatedAt.Format(time.RFC3339), m.NodeID, m.HourglassVersion)
	}
	fmt.Fprintf(w, "tasks: %d (%s); schedules: %d\n", m.Tasks.Total(), countsLine(m.Tasks), m.Schedules)
	fmt.Fprintf(w, "size: %s (state %s); format %d, schema %d; %s\n",
		humanBytes(st.Size()), humanBytes(m.StateSize), m.FormatVersion, m.SchemaVersion, timing)
	return nil
}

// countsLine lists counts in lifecycle order: "scheduled 5, running 0, ...".
func countsLine(counts map[string]uint64) string {
	var parts []string
	for _, state := range []string{"scheduled", "running", "succeeded", "dead", "cancelled"} {
		parts = append(parts, fmt.Sprintf("%s %d", state, counts[state]))
	}
	return strings.Join(parts, ", ")
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// progress counts bytes as they pass and prints a line every couple of
// seconds, so a long transfer shows it is moving.
type progress struct {
	n     atomic.Int64
	done  chan struct{}
	ended chan struct{}
}

func startProgress(w io.Writer, verb string, total int64) *progress {
	p := &progress{done: make(chan struct{}), ended: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(p.ended)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
				n := p.n.Load()
				rate := humanBytes(int64(float64(n) / time.Since(start).Seconds()))
				if total > 0 {
					fmt.Fprintf(w, "%s %s of %s (%d%%, %s/s)\n", verb, humanBytes(n), humanBytes(total), 100*n/total, rate)
				} else {
					fmt.Fprintf(w, "%s %s (%s/s)\n", verb, humanBytes(n), rate)
				}
			}
		}
	}()
	return p
}

func (p *progress) Write(b []byte) (int, error) {
	p.n.Add(int64(len(b)))
	return len(b), nil
}

func (p *progress) stop() {
	close(p.done)
	<-p.ended
}
