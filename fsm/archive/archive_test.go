package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// newState returns a state machine holding a few tasks in several states.
func newState(t testing.TB) *fsm.FSM {
	t.Helper()
	f, err := fsm.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	index := uint64(0)
	apply := func(term uint64, cmds ...*fsmpb.Command) {
		data, err := fsm.EncodeEntry(cmds...)
		if err != nil {
			t.Fatal(err)
		}
		index++
		f.Apply(&raft.Log{Index: index, Term: term, Type: raft.LogCommand, Data: data})
	}
	var tasks []*fsmpb.Task
	for _, id := range []string{"a", "b", "c", "d"} {
		tasks = append(tasks, &fsmpb.Task{Id: id, Queue: "q", ExecuteAt: 100, Fingerprint: []byte(id), Payload: []byte(`{"x":1}`), Target: &fsmpb.Target{Url: "http://127.0.0.1:9/"}})
	}
	apply(1, &fsmpb.Command{Kind: &fsmpb.Command_Create{Create: &fsmpb.CreateTasks{Tasks: tasks}}})
	apply(2, &fsmpb.Command{Kind: &fsmpb.Command_Fire{Fire: &fsmpb.FireTasks{Term: 2, At: 5, Items: []*fsmpb.FireItem{{Id: "a", DueAt: 100}}}}})
	apply(3, &fsmpb.Command{Kind: &fsmpb.Command_Cancel{Cancel: &fsmpb.CancelTask{Id: "b", At: 6, RetainUntil: 1000}}},
		&fsmpb.Command{Kind: &fsmpb.Command_PutSchedule{PutSchedule: &fsmpb.PutSchedule{Create: true, At: 6, Schedule: &fsmpb.Schedule{
			Id: "nightly", Cron: "0 3 * * *", TimeZone: "UTC", NextAt: 200, Fingerprint: []byte("nightly"),
			Template: &fsmpb.Task{Queue: "q", MaxAttempts: 1, Target: &fsmpb.Target{Url: "http://127.0.0.1:9/"}},
		}}}})
	return f
}

// writeArchive writes a backup of f, with meta changed by edit if given.
func writeArchive(t testing.TB, f *fsm.FSM, edit func(*Meta)) ([]byte, Meta, []byte) {
	t.Helper()
	b, err := f.Backup()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	meta := NewMeta(b, "test", "n1", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	if edit != nil {
		edit(&meta)
	}
	var state bytes.Buffer
	if _, err := b.WriteTo(&state); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Write(&out, meta, bytes.NewReader(state.Bytes())); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), meta, state.Bytes()
}

func TestRoundTrip(t *testing.T) {
	data, meta, state := writeArchive(t, newState(t), nil)
	if meta.Index != 3 || meta.Term != 3 || meta.Tasks["scheduled"] != 2 || meta.Tasks["running"] != 1 || meta.Tasks["cancelled"] != 1 || meta.Schedules != 1 {
		t.Fatalf("meta %+v", meta)
	}
	var got bytes.Buffer
	read, err := Read(bytes.NewReader(data), &got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), state) {
		t.Fatal("state read back differs from the state written")
	}
	if read.Index != meta.Index || read.Term != meta.Term || !read.CreatedAt.Equal(meta.CreatedAt) || read.Tasks.Total() != 4 || read.Schedules != 1 || read.HourglassVersion != "test" {
		t.Fatalf("meta read back %+v, wrote %+v", read, meta)
	}

	path := filepath.Join(t.TempDir(), "backup.snap")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(path, t.TempDir(), nil); err != nil {
		t.Fatalf("verify a good archive: %v", err)
	}
}

// TestStandardToolsReadIt: the archive is a plain tar.gz whose SHA256SUMS
// a user can check by hand.
func TestStandardToolsReadIt(t *testing.T) {
	data, _, state := writeArchive(t, newState(t), nil)
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		body, _ := io.ReadAll(tr)
		if hdr.Name == "state.db" && !bytes.Equal(body, state) {
			t.Fatal("state.db differs")
		}
	}
	if strings.Join(names, ",") != "meta.json,state.db,SHA256SUMS" {
		t.Fatalf("archive holds %v", names)
	}
}

func mustRefuse(t *testing.T, name string, data []byte, want string) {
	t.Helper()
	_, err := Read(bytes.NewReader(data), io.Discard)
	if err == nil {
		t.Errorf("%s: accepted", name)
		return
	}
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v, want ErrInvalid containing %q", name, err, want)
	}
}

// gzipTar builds a tar.gz from name/content pairs.
func gzipTar(t testing.TB, comment string, files ...string) []byte {
	t.Helper()
	var out bytes.Buffer
	gz := gzip.NewWriter(&out)
	gz.Comment = comment
	tw := tar.NewWriter(gz)
	for i := 0; i < len(files); i += 2 {
		tw.WriteHeader(&tar.Header{Name: files[i], Size: int64(len(files[i+1])), Mode: 0o600, Typeflag: tar.TypeReg})
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	gz.Close()
	return out.Bytes()
}

func TestForeignAndDamagedArchivesAreRefused(t *testing.T) {
	f := newState(t)
	good, _, state := writeArchive(t, f, nil)

	mustRefuse(t, "empty", nil, "empty or too short")
	mustRefuse(t, "a short line of text", []byte("hello\n"), "empty or too short")
	mustRefuse(t, "random text", []byte(strings.Repeat("hello ", 100)), "not a gzip file")
	mustRefuse(t, "the raw state file", state, "not a gzip file")
	mustRefuse(t, "some other tar.gz", gzipTar(t, "", "notes.txt", "hi"), "not an Hourglass snapshot")
	mustRefuse(t, "right comment, wrong files", gzipTar(t, Format, "notes.txt", "hi"), `found "notes.txt" where meta.json belongs`)
	mustRefuse(t, "meta of another kind", gzipTar(t, Format, "meta.json", `{"format":"consul"}`), `format "consul"`)
	mustRefuse(t, "meta not JSON", gzipTar(t, Format, "meta.json", `{{`), "meta.json")
	mustRefuse(t, "trailing garbage", append(bytes.Clone(good), "extra"...), "after the end of the gzip stream")
	mustRefuse(t, "two archives", append(bytes.Clone(good), good...), "after the end of the gzip stream")

	newer, _, _ := writeArchive(t, f, func(m *Meta) { m.FormatVersion = 3; m.HourglassVersion = "v9" })
	mustRefuse(t, "a newer format", newer, "format version 3 is newer than this build reads (2): use the Hourglass version that wrote it (v9)")
	schema, _, _ := writeArchive(t, f, func(m *Meta) { m.SchemaVersion = 99 })
	mustRefuse(t, "another schema", schema, "schema version 99")
	schema1, _, _ := writeArchive(t, f, func(m *Meta) { m.SchemaVersion = 1 })
	mustRefuse(t, "a schema too old to install", schema1, "schema version 1; this build reads 2 to")
	mustRefuse(t, "no state size", gzipTar(t, Format, "meta.json", `{"format":"hourglass-snapshot","format_version":1,"schema_version":2,"tasks":{}}`), "state_size 0")

	// A meta.json that lies about the state passes the stream checks (its
	// digest is right) but not Extract's.
	lying, _, _ := writeArchive(t, f, func(m *Meta) { m.Tasks["scheduled"] = 7 })
	if _, err := Read(bytes.NewReader(lying), io.Discard); err != nil {
		t.Fatalf("stream checks of a consistent archive: %v", err)
	}
	path := filepath.Join(t.TempDir(), "state.db")
	if _, err := Extract(bytes.NewReader(lying), path, nil); err == nil || !strings.Contains(err.Error(), "scheduled 2 (meta.json: 7)") {
		t.Fatalf("extract of an archive whose counts lie: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("a refused extract left its file behind")
	}
	wrongIndex, _, _ := writeArchive(t, f, func(m *Meta) { m.Index = 99 })
	if _, err := Extract(bytes.NewReader(wrongIndex), path, nil); err == nil || !strings.Contains(err.Error(), "raft index 3 term 3, meta.json says 99") {
		t.Fatalf("extract of an archive whose index lies: %v", err)
	}
}

// TestEveryTruncationIsRefused cuts the archive at every length.
func TestEveryTruncationIsRefused(t *testing.T) {
	good, _, _ := writeArchive(t, newState(t), nil)
	for n := 0; n < len(good); n++ {
		if _, err := Read(bytes.NewReader(good[:n]), io.Discard); err == nil || !errors.Is(err, ErrInvalid) {
			t.Fatalf("archive cut to %d of %d bytes: %v", n, len(good), err)
		}
	}
}

// TestEveryBitFlipIsRefusedOrHarmless flips one bit in every byte: either
// the archive is refused, or what it yields is exactly the original (a flip
// in the gzip header's time or OS byte, or in deflate bits that decode the
// same).
func TestEveryBitFlipIsRefusedOrHarmless(t *testing.T) {
	good, meta, state := writeArchive(t, newState(t), nil)
	harmless := 0
	for i := range good {
		data := bytes.Clone(good)
		data[i] ^= 1 << (i % 8)
		var got bytes.Buffer
		read, err := Read(bytes.NewReader(data), &got)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("flip at byte %d: error %v is not ErrInvalid", i, err)
			}
			continue
		}
		if !bytes.Equal(got.Bytes(), state) || read.Index != meta.Index || read.Tasks.Total() != meta.Tasks.Total() {
			t.Fatalf("flip at byte %d: accepted with different content", i)
		}
		harmless++
	}
	if harmless*20 > len(good) {
		t.Fatalf("%d of %d flips changed nothing; expected a few at most", harmless, len(good))
	}
}

// FuzzRead: no input makes Read panic or accept something other than what
// Write wrote.
func FuzzRead(f *testing.F) {
	good, _, _ := writeArchive(f, newState(f), nil)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(gzipTar(f, Format, "meta.json", `{"format":"hourglass-snapshot","format_version":1,"schema_version":1,"state_size":3,"tasks":{}}`, "state.db", "abc"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var state bytes.Buffer
		meta, err := Read(bytes.NewReader(data), &state)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if meta.Format != Format || int64(state.Len()) != meta.StateSize {
			t.Fatalf("accepted meta %+v with %d state bytes", meta, state.Len())
		}
	})
}

// countingWriter counts what is written to it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// TestStateThatIsNoStateFileIsRefusedAtOnce: an archive whose digests are
// right but whose state is not a bbolt file (zeros), or whose meta page
// counts more pages than the state holds (bbolt would read past the end of
// its memory map), is refused at the state's first bytes: nothing of it is
// written.
func TestStateThatIsNoStateFileIsRefusedAtOnce(t *testing.T) {
	_, meta, state := writeArchive(t, newState(t), nil)
	for _, c := range []struct {
		name  string
		state []byte
		want  string
	}{
		{"zeros", make([]byte, 8<<20), "not a state file"},
		{"cut to half its pages", state[:len(state)/2], "more than its"},
		{"a damaged meta page", func() []byte { s := bytes.Clone(state); s[16+20] ^= 0xff; return s }(), "fails its checksum"},
	} {
		m := meta
		m.StateSize = int64(len(c.state))
		var archive bytes.Buffer
		if err := Write(&archive, m, bytes.NewReader(c.state)); err != nil {
			t.Fatal(err)
		}
		var written countingWriter
		_, err := Read(&archive, &written)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid saying %q", c.name, err, c.want)
		}
		if written.n != 0 {
			t.Errorf("%s: %d bytes of the state were written before it was refused", c.name, written.n)
		}
	}
}

// TestStateBiggerThanTheDiskIsRefusedBeforeWriting: meta.json declaring a
// state larger than the free space is refused before the state is read.
func TestStateBiggerThanTheDiskIsRefusedBeforeWriting(t *testing.T) {
	huge := fmt.Sprintf(`{"format":"hourglass-snapshot","format_version":1,"schema_version":%d,"state_size":%d,"tasks":{}}`, fsm.SchemaVersion, int64(1)<<60)
	path := filepath.Join(t.TempDir(), "state.db")
	_, err := Extract(bytes.NewReader(gzipTar(t, Format, "meta.json", huge)), path, nil)
	if !errors.Is(err, ErrTooBig) || !strings.Contains(err.Error(), "free") {
		t.Fatalf("a state of 2^60 bytes: %v, want ErrTooBig", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("a refused extract left its file behind")
	}
}
