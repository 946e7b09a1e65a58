package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/hourglass-scheduler/hourglass/fsm"
)

const (
	// Format names the archive kind in meta.json and the gzip header.
	Format = "hourglass-snapshot"
	// FormatVersion is the layout of an archive of one group's state.
	FormatVersion = 1
	// GroupsFormatVersion is the layout of an archive of many groups:
	// the newest this build writes and reads.
	GroupsFormatVersion = 2

	metaName  = "meta.json"
	stateName = "state.db"
	sumsName  = "SHA256SUMS"

	maxMetaSize = 1 << 20
	maxSumsSize = 64 << 10
)

// ErrInvalid marks an archive that is not a whole, genuine Hourglass
// backup this build can read: damaged, truncated, foreign or too new.
var ErrInvalid = errors.New("invalid snapshot")

// ErrTooBig marks an archive whose state would not fit where it is to be
// extracted: nothing of it was written.
var ErrTooBig = errors.New("snapshot too big")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Meta describes an archive; it is stored as meta.json.
type Meta struct {
	Format           string     `json:"format"`
	FormatVersion    int        `json:"format_version"`
	HourglassVersion string     `json:"hourglass_version"`
	SchemaVersion    uint64     `json:"schema_version"`
	NodeID           string     `json:"node_id"`
	Index            uint64     `json:"index"`
	Term             uint64     `json:"term"`
	CreatedAt        time.Time  `json:"created_at"`
	StateSize        int64      `json:"state_size"`
	Tasks            fsm.Counts `json:"tasks"`
	// Schedules counts the recurring schedules (0 in archives from
	// before the count).
	Schedules uint64 `json:"schedules,omitempty"`
	// Groups describes each group's state in an archive of many groups
	// (format version 2); Index and Term are then zero, StateSize and
	// Tasks the sums. Empty in an archive of one group (version 1).
	Groups []GroupMeta `json:"groups,omitempty"`
}

// GroupMeta describes one group's state in an archive of many groups.
type GroupMeta struct {
	ID        uint32     `json:"id"`
	Index     uint64     `json:"index"`
	Term      uint64     `json:"term"`
	StateSize int64      `json:"state_size"`
	Tasks     fsm.Counts `json:"tasks"`
	Schedules uint64     `json:"schedules,omitempty"`
}

// NewMeta describes a backup of the state machine taken on node.
func NewMeta(b *fsm.Backup, hourglassVersion, node string, now time.Time) Meta {
	return Meta{
		Format: Format, FormatVersion: FormatVersion,
		HourglassVersion: hourglassVersion, SchemaVersion: fsm.SchemaVersion,
		NodeID: node, Index: b.Index, Term: b.Term, CreatedAt: now.UTC(),
		StateSize: b.Size, Tasks: b.Tasks, Schedules: b.Schedules,
	}
}

// Write streams an archive of meta and the state to w. state must write
// exactly meta.StateSize bytes.
func Write(w io.Writer, meta Meta, state io.WriterTo) error {
	wr, err := newWriter(w, meta)
	if err != nil {
		return err
	}
	if err := wr.entry(stateName, meta.StateSize, state.WriteTo); err != nil {
		return err
	}
	return wr.close()
}

// writer writes an archive: meta.json, the states, then SHA256SUMS of
// them all.
type writer struct {
	gz      *gzip.Writer
	tw      *tar.Writer
	modTime time.Time
	sums    strings.Builder
}

func newWriter(w io.Writer, meta Meta) (*writer, error) {
	metaJSON, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("write snapshot: encode meta: %w", err)
	}
	metaJSON = append(metaJSON, '\n')
	// Level 1: the state file is mostly sparse pages, which compress well
	// even so, and a save should run at disk speed.
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("write snapshot: %w", err)
	}
	gz.Comment = Format
	wr := &writer{gz: gz, tw: tar.NewWriter(gz), modTime: meta.CreatedAt}
	if err := wr.entry(metaName, int64(len(metaJSON)), func(w io.Writer) (int64, error) {
		n, err := w.Write(metaJSON)
		return int64(n), err
	}); err != nil {
		return nil, err
	}
	return wr, nil
}

// entry adds the file name of size bytes, which copy writes.
func (wr *writer) entry(name string, size int64, copy func(io.Writer) (int64, error)) error {
	err := wr.tw.WriteHeader(&tar.Header{
		Name: name, Size: size, Mode: 0o600, ModTime: wr.modTime,
		Typeflag: tar.TypeReg, Format: tar.FormatPAX,
	})
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	h := sha256.New()
	n, err := copy(io.MultiWriter(wr.tw, h))
	if err != nil {
		return fmt.Errorf("write snapshot: %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("write snapshot: %s is %d bytes, meta says %d", name, n, size)
	}
	fmt.Fprintf(&wr.sums, "%x  %s\n", h.Sum(nil), name)
	return nil
}

// close adds SHA256SUMS and ends the tar and the gzip stream.
func (wr *writer) close() error {
	sums := wr.sums.String()
	err := wr.tw.WriteHeader(&tar.Header{
		Name: sumsName, Size: int64(len(sums)), Mode: 0o600, ModTime: wr.modTime,
		Typeflag: tar.TypeReg, Format: tar.FormatPAX,
	})
	if err == nil {
		_, err = io.WriteString(wr.tw, sums)
	}
	if err == nil {
		err = wr.tw.Close()
	}
	if err == nil {
		err = wr.gz.Close()
	}
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// Read reads an archive from r, checking it as it goes, and copies the
// state file's bytes to state. The copy is only to be trusted when Read
// returns nil: the state's digest can be checked only at its end. Errors
// in the archive wrap ErrInvalid; an error writing to state does not.
func Read(r io.Reader, state io.Writer) (Meta, error) {
	return read(r, state, nil)
}

// read is Read; admit, when set, may refuse the archive by its meta.json
// before any of its state is written.
func read(r io.Reader, state io.Writer, admit func(Meta) error) (Meta, error) {
	rd, err := openReader(r)
	if err != nil {
		return Meta{}, err
	}
	meta, err := rd.meta()
	if err != nil {
		return Meta{}, err
	}
	if meta.FormatVersion == GroupsFormatVersion {
		return Meta{}, invalid("this is an archive of a cluster of %d groups: restore it to a cluster (POST /v1/snapshot), or check it with hourglass snapshot inspect", len(meta.Groups))
	}
	if admit != nil {
		if err := admit(meta); err != nil {
			return Meta{}, err
		}
	}
	if err := rd.state(stateName, meta.StateSize, state); err != nil {
		return Meta{}, err
	}
	if err := rd.end([]string{stateName}); err != nil {
		return Meta{}, err
	}
	return meta, nil
}

// reader reads an archive entry by entry, checking as it goes: meta,
// then each state, then end.
type reader struct {
	br       *bufio.Reader
	gz       *gzip.Reader
	tr       *tar.Reader
	metaJSON []byte
	sums     map[string][]byte // SHA-256 of each entry read, by name
}

func openReader(r io.Reader) (*reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	gz, err := gzip.NewReader(br)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, invalid("not an Hourglass snapshot: the file is empty or too short to be one")
	}
	if err != nil {
		return nil, streamError("gzip header", err)
	}
	gz.Multistream(false)
	if gz.Comment != Format {
		return nil, invalid("not an Hourglass snapshot (gzip comment %q, want %q)", gz.Comment, Format)
	}
	return &reader{br: br, gz: gz, tr: tar.NewReader(gz), sums: map[string][]byte{}}, nil
}

// meta reads and checks meta.json.
func (rd *reader) meta() (Meta, error) {
	hdr, err := next(rd.tr, metaName, maxMetaSize)
	if err != nil {
		return Meta{}, err
	}
	metaJSON, err := io.ReadAll(rd.tr)
	if err != nil {
		return Meta{}, streamError(metaName, err)
	}
	if int64(len(metaJSON)) != hdr.Size {
		return Meta{}, invalid("%s: %d bytes, header says %d", metaName, len(metaJSON), hdr.Size)
	}
	var meta Meta
	if err := json.Unmarshal(metaJSON, &meta); err != nil {
		return Meta{}, invalid("%s: %v", metaName, err)
	}
	if err := checkMeta(meta); err != nil {
		return Meta{}, err
	}
	sum := sha256.Sum256(metaJSON)
	rd.metaJSON, rd.sums[metaName] = metaJSON, sum[:]
	return meta, nil
}

// state reads the state entry name, of size bytes, into w.
func (rd *reader) state(name string, size int64, w io.Writer) error {
	hdr, err := next(rd.tr, name, -1)
	if err != nil {
		return err
	}
	if hdr.Size != size {
		return invalid("%s: %d bytes, %s says %d", name, hdr.Size, metaName, size)
	}
	h := sha256.New()
	if err := copyState(w, rd.tr, h, &stateHead{size: hdr.Size}); err != nil {
		return err
	}
	rd.sums[name] = h.Sum(nil)
	return nil
}

// end reads SHA256SUMS and checks the digests of meta.json and of the
// states named, then that nothing follows.
func (rd *reader) end(states []string) error {
	if _, err := next(rd.tr, sumsName, maxSumsSize); err != nil {
		return err
	}
	sums, err := io.ReadAll(rd.tr)
	if err != nil {
		return streamError(sumsName, err)
	}
	names := append([]string{metaName}, states...)
	want, err := parseSums(sums, names)
	if err != nil {
		return err
	}
	for _, name := range names {
		if got := hex.EncodeToString(rd.sums[name]); want[name] != got {
			return invalid("%s: SHA-256 is %s, %s says %s: the archive is damaged", name, got, sumsName, want[name])
		}
	}

	// Nothing after: the tar ends, the gzip stream ends (checking its CRC
	// and length), and no bytes follow it.
	if _, err := rd.tr.Next(); err != io.EOF {
		if err == nil {
			return invalid("unexpected entry after %s", sumsName)
		}
		return streamError("end of archive", err)
	}
	if n, err := io.Copy(io.Discard, rd.gz); err != nil || n > 0 {
		if err != nil {
			return streamError("end of archive", err)
		}
		return invalid("%d unexpected bytes after the end of the archive", n)
	}
	if _, err := rd.br.ReadByte(); err != io.EOF {
		return invalid("unexpected data after the end of the gzip stream")
	}
	return nil
}

// next reads the next tar header and checks it is the regular file name,
// of at most limit bytes (limit < 0: any size).
func next(tr *tar.Reader, name string, limit int64) (*tar.Header, error) {
	hdr, err := tr.Next()
	if err == io.EOF {
		return nil, invalid("the archive ends before %s", name)
	}
	if err != nil {
		return nil, streamError(name+" header", err)
	}
	if hdr.Name != name || hdr.Typeflag != tar.TypeReg {
		return nil, invalid("found %q where %s belongs", hdr.Name, name)
	}
	if hdr.Size < 0 || limit >= 0 && hdr.Size > limit {
		return nil, invalid("%s: size %d is out of range", name, hdr.Size)
	}
	return hdr, nil
}

func checkMeta(m Meta) error {
	switch {
	case m.Format != Format:
		return invalid("%s: format %q, want %q", metaName, m.Format, Format)
	case m.FormatVersion < 1:
		return invalid("%s: format_version %d", metaName, m.FormatVersion)
	case m.FormatVersion > GroupsFormatVersion:
		return invalid("archive format version %d is newer than this build reads (%d): use the Hourglass version that wrote it (%s) or newer",
			m.FormatVersion, GroupsFormatVersion, m.HourglassVersion)
	case m.FormatVersion == FormatVersion && len(m.Groups) > 0:
		return invalid("%s: format_version %d with groups", metaName, m.FormatVersion)
	case m.FormatVersion == GroupsFormatVersion:
		return checkGroups(m)
	case m.SchemaVersion < fsm.OldestSnapshotSchema || m.SchemaVersion > fsm.SchemaVersion:
		return invalid("the state in this archive has schema version %d; this build reads %d to %d", m.SchemaVersion, fsm.OldestSnapshotSchema, fsm.SchemaVersion)
	case m.StateSize <= 0:
		return invalid("%s: state_size %d", metaName, m.StateSize)
	case m.Tasks == nil:
		return invalid("%s: no task counts", metaName)
	}
	return nil
}

// copyState copies the state entry to w and h, telling read errors (a bad
// archive) from write errors (the caller's disk). head checks the start of
// the state before any of it is written.
func copyState(w io.Writer, r io.Reader, h hash.Hash, head *stateHead) error {
	buf := make([]byte, 1<<20)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, err := head.Write(buf[:n]); err != nil {
				return err
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return fmt.Errorf("write %s: %w", stateName, err)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return streamError(stateName, rerr)
		}
	}
}

// parseSums reads sha256sum lines ("<hex>  <name>").
func parseSums(data []byte, required []string) (map[string]string, error) {
	sums := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if _, err := hex.DecodeString(sum); !ok || err != nil || len(sum) != 2*sha256.Size {
			return nil, invalid("%s line %d is not \"<sha256>  <name>\"", sumsName, i+1)
		}
		sums[name] = sum
	}
	for _, name := range required {
		if sums[name] == "" {
			return nil, invalid("%s has no digest of %s", sumsName, name)
		}
	}
	return sums, nil
}

// streamError describes a failure to read the compressed stream.
func streamError(where string, err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("%s: the file ends early (truncated?)", where)
	case errors.Is(err, gzip.ErrHeader):
		return invalid("not an Hourglass snapshot: not a gzip file")
	case errors.Is(err, gzip.ErrChecksum):
		return invalid("%s: gzip checksum mismatch: the file is damaged", where)
	default:
		return invalid("%s: %v (the file is damaged or not a snapshot)", where, err)
	}
}

// Checker checks an extracted state file as fsm.CheckStateFile does. A
// damaged file can make bbolt read outside its memory map, a fault no
// recover catches: callers that must survive one run the check in a child
// process.
type Checker func(path string) (*fsm.StateInfo, error)

// Extract reads an archive from r into a new state file at path and
// checks it through and through: Read's checks (and, before writing, that
// the declared size fits the free space and the state starts as a state
// file), then the state file's own (check, fsm.CheckStateFile when nil:
// pages, records, indexes, schema), then that the file is what meta.json
// says (index, term, task counts). On any error the file is removed.
func Extract(r io.Reader, path string, check Checker) (meta Meta, err error) {
	if check == nil {
		check = fsm.CheckStateFile
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return Meta{}, fmt.Errorf("extract snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()
	// Not fsynced: the file is checked and deleted, or copied by raft into
	// its snapshot store, which syncs its copy.
	dir := filepath.Dir(path)
	meta, err = read(r, f, func(m Meta) error {
		if free, ok := freeBytes(dir); ok && m.StateSize > free {
			return fmt.Errorf("%w: %s is %d bytes, and %s has %d free", ErrTooBig, stateName, m.StateSize, dir, free)
		}
		return nil
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Meta{}, err
	}
	info, err := check(path)
	if err != nil {
		return Meta{}, invalid("%s: %v", stateName, err)
	}
	if err := matches(meta, info); err != nil {
		return Meta{}, err
	}
	return meta, nil
}

// matches checks that the state file is the one meta.json describes.
func matches(m Meta, info *fsm.StateInfo) error {
	if info.Index != m.Index || info.Term != m.Term {
		return invalid("%s is at raft index %d term %d, %s says %d term %d", stateName, info.Index, info.Term, metaName, m.Index, m.Term)
	}
	var diff bytes.Buffer
	for state, n := range info.Tasks {
		if m.Tasks[state] != n {
			fmt.Fprintf(&diff, " %s %d (meta.json: %d)", state, n, m.Tasks[state])
		}
	}
	if diff.Len() > 0 {
		return invalid("%s holds other task counts than %s says:%s", stateName, metaName, diff.String())
	}
	return nil
}

// Verify checks the archive at path, of either kind, as ExtractGroups
// does, extracting into a temporary directory in tmpDir (os.TempDir()
// when empty) that it removes after.
func Verify(path, tmpDir string, check Checker) (Meta, error) {
	in, err := os.Open(path)
	if err != nil {
		return Meta{}, err
	}
	defer in.Close()
	dir, err := os.MkdirTemp(tmpDir, "hourglass-verify-")
	if err != nil {
		return Meta{}, fmt.Errorf("verify snapshot: %w", err)
	}
	defer os.RemoveAll(dir)
	return ExtractGroups(in, dir, check)
}
