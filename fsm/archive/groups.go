package archive

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
)

// An archive of a cluster of many groups (format version 2) holds
//
//	meta.json             format, version, and each group's index, term,
//	                      state size and task counts (Meta.Groups)
//	groups/<id>/state.db  each group's state, in the order meta.json lists
//	SHA256SUMS            SHA-256 of meta.json and of every state
//
// Each group's state is taken at its own raft index (groups are
// independent: a task lives in one), streamed from that group's own
// archive of one group (GroupSource) without being held in memory.

// groupStateName is where group id's state is in an archive of many.
func groupStateName(id uint32) string {
	return "groups/" + strconv.FormatUint(uint64(id), 10) + "/" + stateName
}

func checkGroups(m Meta) error {
	if len(m.Groups) == 0 {
		return invalid("%s: format_version %d without groups", metaName, m.FormatVersion)
	}
	var size int64
	for i, g := range m.Groups {
		switch {
		case g.ID != uint32(i+1):
			return invalid("%s: groups[%d] is group %d, want %d", metaName, i, g.ID, i+1)
		case g.StateSize <= 0:
			return invalid("%s: group %d: state_size %d", metaName, g.ID, g.StateSize)
		case g.Tasks == nil:
			return invalid("%s: group %d: no task counts", metaName, g.ID)
		}
		size += g.StateSize
	}
	if size != m.StateSize {
		return invalid("%s: state_size %d, the groups' add up to %d", metaName, m.StateSize, size)
	}
	return nil
}

// GroupSource is one group's archive of one group, being read: its
// meta.json is read, its state not yet.
type GroupSource struct {
	Meta Meta
	rd   *reader
}

// OpenGroup starts reading a group's archive of one group from r.
func OpenGroup(r io.Reader) (*GroupSource, error) {
	rd, err := openReader(r)
	if err != nil {
		return nil, err
	}
	meta, err := rd.meta()
	if err != nil {
		return nil, err
	}
	if meta.FormatVersion != FormatVersion {
		return nil, invalid("a group's archive has format version %d, want %d", meta.FormatVersion, FormatVersion)
	}
	return &GroupSource{Meta: meta, rd: rd}, nil
}

// GroupsMeta describes an archive of the groups of sources, in order
// (group 1 first).
func GroupsMeta(sources []*GroupSource, hourglassVersion, node string, now time.Time) Meta {
	m := Meta{Format: Format, FormatVersion: GroupsFormatVersion, HourglassVersion: hourglassVersion,
		SchemaVersion: fsm.SchemaVersion, NodeID: node, CreatedAt: now.UTC(), Tasks: fsm.Counts{}}
	for i, src := range sources {
		g := GroupMeta{ID: uint32(i + 1), Index: src.Meta.Index, Term: src.Meta.Term, StateSize: src.Meta.StateSize,
			Tasks: src.Meta.Tasks, Schedules: src.Meta.Schedules}
		m.Groups = append(m.Groups, g)
		m.StateSize += g.StateSize
		m.Schedules += g.Schedules
		for state, n := range g.Tasks {
			m.Tasks[state] += n
		}
	}
	return m
}

// WriteGroups streams an archive of many groups to w: meta (GroupsMeta of
// sources), then each source's state, each checked to its end as it is
// copied (an error then means w holds a broken archive: abandon it).
func WriteGroups(w io.Writer, meta Meta, sources []*GroupSource) error {
	if len(sources) != len(meta.Groups) {
		return fmt.Errorf("write snapshot: %d sources for %d groups", len(sources), len(meta.Groups))
	}
	wr, err := newWriter(w, meta)
	if err != nil {
		return err
	}
	for i, src := range sources {
		g := meta.Groups[i]
		err := wr.entry(groupStateName(g.ID), g.StateSize, func(w io.Writer) (int64, error) {
			if err := src.rd.state(stateName, src.Meta.StateSize, w); err != nil {
				return 0, err
			}
			return src.Meta.StateSize, src.rd.end([]string{stateName})
		})
		if err != nil {
			return fmt.Errorf("group %d: %w", g.ID, err)
		}
	}
	return wr.close()
}

// GroupStatePath is where ExtractGroups puts group id's state in dir.
func GroupStatePath(dir string, id uint32) string {
	return filepath.Join(dir, strconv.FormatUint(uint64(id), 10)+".db")
}

// ExtractGroups reads an archive of either kind from r into dir, a state
// file per group (GroupStatePath; an archive of one group is group 1),
// and checks each as Extract does. The meta it returns lists the groups
// (for an archive of one group, that one). On any error the files are
// removed.
func ExtractGroups(r io.Reader, dir string, check Checker) (meta Meta, err error) {
	if check == nil {
		check = fsm.CheckStateFile
	}
	var written []string
	defer func() {
		if err != nil {
			for _, path := range written {
				os.Remove(path)
			}
		}
	}()
	rd, err := openReader(r)
	if err != nil {
		return Meta{}, err
	}
	if meta, err = rd.meta(); err != nil {
		return Meta{}, err
	}
	groups, names := meta.Groups, []string{}
	if meta.FormatVersion == FormatVersion {
		groups = []GroupMeta{{ID: 1, Index: meta.Index, Term: meta.Term, StateSize: meta.StateSize, Tasks: meta.Tasks, Schedules: meta.Schedules}}
	}
	if free, ok := freeBytes(dir); ok && meta.StateSize > free {
		return Meta{}, fmt.Errorf("%w: the states add up to %d bytes, and %s has %d free", ErrTooBig, meta.StateSize, dir, free)
	}
	for _, g := range groups {
		name := stateName
		if meta.FormatVersion == GroupsFormatVersion {
			name = groupStateName(g.ID)
		}
		path := GroupStatePath(dir, g.ID)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return Meta{}, fmt.Errorf("extract snapshot: %w", err)
		}
		written = append(written, path)
		err = rd.state(name, g.StateSize, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return Meta{}, err
		}
		names = append(names, name)
	}
	if err := rd.end(names); err != nil {
		return Meta{}, err
	}
	for _, g := range groups {
		info, err := check(GroupStatePath(dir, g.ID))
		if err != nil {
			return Meta{}, invalid("group %d: %s: %v", g.ID, stateName, err)
		}
		if err := matches(Meta{Index: g.Index, Term: g.Term, Tasks: g.Tasks}, info); err != nil {
			return Meta{}, fmt.Errorf("group %d: %w", g.ID, err)
		}
	}
	if meta.FormatVersion == FormatVersion {
		meta.Groups = groups
	}
	return meta, nil
}

// GroupArchive is group g's state file at path as an archive of one
// group, of meta's version and node, for a group's own restore.
func GroupArchive(w io.Writer, meta Meta, g GroupMeta, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	m := Meta{Format: Format, FormatVersion: FormatVersion, HourglassVersion: meta.HourglassVersion,
		SchemaVersion: meta.SchemaVersion, NodeID: meta.NodeID, Index: g.Index, Term: g.Term,
		CreatedAt: meta.CreatedAt, StateSize: g.StateSize, Tasks: g.Tasks, Schedules: g.Schedules}
	return Write(w, m, fileWriterTo{f})
}

// fileWriterTo writes a file's bytes.
type fileWriterTo struct{ f *os.File }

func (w fileWriterTo) WriteTo(dst io.Writer) (int64, error) { return io.Copy(dst, w.f) }

// Check reads an archive of either kind from r to its end and checks all
// a byte stream shows (framing, sizes, the start of each state, digests),
// writing nothing: the quick check before an upload.
func Check(r io.Reader) (Meta, error) {
	rd, err := openReader(r)
	if err != nil {
		return Meta{}, err
	}
	meta, err := rd.meta()
	if err != nil {
		return Meta{}, err
	}
	names := []string{stateName}
	if meta.FormatVersion == FormatVersion {
		err = rd.state(stateName, meta.StateSize, io.Discard)
	} else {
		names = names[:0]
		for _, g := range meta.Groups {
			name := groupStateName(g.ID)
			if err = rd.state(name, g.StateSize, io.Discard); err != nil {
				break
			}
			names = append(names, name)
		}
	}
	if err != nil {
		return Meta{}, err
	}
	return meta, rd.end(names)
}
