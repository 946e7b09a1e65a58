package fsm

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// backupFile writes b to a file and returns its path.
func backupFile(t *testing.T, b *Backup) string {
	t.Helper()
	var buf bytes.Buffer
	n, err := b.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != b.Size || int64(buf.Len()) != b.Size {
		t.Fatalf("backup wrote %d bytes (%d buffered), announced %d", n, buf.Len(), b.Size)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fillStates leaves one task in each state but dead, two scheduled.
func fillStates(h *harness) {
	h.apply(create(newTask("s1", 100), newTask("s2", 200), newTask("r", 50), newTask("ok", 60), newTask("c", 300)))
	h.applyTerm(2, fire(2, &fsmpb.FireItem{Id: "r", DueAt: 50}, &fsmpb.FireItem{Id: "ok", DueAt: 60}))
	h.applyTerm(2, outcome(&fsmpb.Outcome{Id: "ok", Attempt: 1, Kind: fsmpb.Outcome_SUCCEEDED, RetainUntil: 1000}))
	h.applyTerm(2, cancel("c", 70))
}

// openFilledBackup opens a backup of a state machine holding fillStates'
// tasks; it is closed when the test ends.
func openFilledBackup(t *testing.T) (*harness, *Backup) {
	t.Helper()
	h := newHarness(t)
	fillStates(h)
	b, err := h.f.Backup()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() }) // before the harness closes the file
	return h, b
}

func TestBackupIsAPointInTimeView(t *testing.T) {
	h, b := openFilledBackup(t)
	want := Counts{"scheduled": 2, "running": 1, "succeeded": 1, "dead": 0, "cancelled": 1, "expired": 0}
	if b.Index != 4 || b.Term != 2 || !maps.Equal(b.Tasks, want) {
		t.Fatalf("backup index %d term %d counts %v; want 4, 2, %v", b.Index, b.Term, b.Tasks, want)
	}
	// Changes after the backup opened are not in it.
	h.applyTerm(3, create(newTask("later", 400)), cancel("s1", 80))
	path := backupFile(t, b)
	info, err := CheckStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Index != 4 || info.Term != 2 || !maps.Equal(info.Tasks, want) {
		t.Fatalf("checked file: index %d term %d counts %v; want 4, 2, %v", info.Index, info.Term, info.Tasks, want)
	}
}

// filledBackupFile backs up a state machine holding fillStates' tasks
// into a file and returns its path.
func filledBackupFile(t *testing.T) string {
	t.Helper()
	_, b := openFilledBackup(t)
	return backupFile(t, b)
}

func TestCheckStateFileFindsDamage(t *testing.T) {
	data, err := os.ReadFile(filledBackupFile(t))
	if err != nil {
		t.Fatal(err)
	}

	// damage copies the good file, changes the copy and checks it.
	damage := func(name, want string, change func(path string)) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "damaged.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		change(path)
		if _, err := CheckStateFile(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: CheckStateFile said %v, want an error containing %q", name, err, want)
		}
	}
	edit := func(fn func(tx *bolt.Tx) error) func(string) {
		return func(path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(fn); err != nil {
				t.Fatal(err)
			}
		}
	}
	damage("task missing from the state index", "missing from the state index", edit(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketByState).Delete(stateKey(fsmpb.State_SCHEDULED, "default", "s1"))
	}))
	damage("due entry lost", "due index lists 1 tasks, 2 are scheduled", edit(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDue).Delete(timeKey(100, "s1"))
	}))
	damage("a waiting task in the due index", "yet is in the due index", edit(func(tx *bolt.Tx) error {
		var task fsmpb.Task
		if err := task.UnmarshalVT(tx.Bucket(bucketTasks).Get([]byte("s1"))); err != nil {
			return err
		}
		task.Waiting = true
		v, err := task.MarshalVT()
		if err != nil {
			return err
		}
		return tx.Bucket(bucketTasks).Put([]byte("s1"), v)
	}))
	damage("schedule missing from schedule_due", "schedule_due lists 1 schedules, 0 have", edit(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketScheduleDue).Put(timeKey(5, "gone"), nil)
	}))
	damage("record garbled", "does not decode", edit(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTasks).Put([]byte("s2"), []byte{0xff, 0xff, 0xff})
	}))
	damage("other schema", "schema version 7", edit(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaSchema, u64(7))
	}))
	damage("no meta bucket", `no "meta" bucket`, edit(func(tx *bolt.Tx) error {
		return tx.DeleteBucket(bucketMeta)
	}))
	damage("not a bbolt file", "not a state file", func(path string) {
		os.WriteFile(path, []byte(strings.Repeat("not a database ", 1000)), 0o600)
	})
	pageSize := os.Getpagesize()
	damage("a page overwritten", "damaged", func(path string) {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// Page 4 onwards hold the buckets' data in a small file.
		f.WriteAt(bytes.Repeat([]byte{0xa5}, pageSize), int64(4*pageSize))
	})
}

func TestRebaseStateFile(t *testing.T) {
	path := filledBackupFile(t)
	if err := RebaseStateFile(path, 1234, 9); err != nil {
		t.Fatal(err)
	}
	info, err := CheckStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Index != 1234 || info.Term != 9 || info.Tasks.Total() != 5 {
		t.Fatalf("rebased file: index %d term %d, %d tasks", info.Index, info.Term, info.Tasks.Total())
	}
}

// Split in two, each part keeps its tasks with every index entry (the
// checker, which cross-checks the indexes and counts, passes) and the
// raft index and term; the parts' tasks add up to the whole.
func TestKeepTasksSplitsAState(t *testing.T) {
	whole := filledBackupFile(t)
	data, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]bool{"s1": true, "r": true, "c": true}
	var total uint64
	for part, keep := range []func(string) bool{func(id string) bool { return first[id] }, func(id string) bool { return !first[id] }} {
		path := filepath.Join(t.TempDir(), "part.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := KeepTasks(path, keep); err != nil {
			t.Fatal(err)
		}
		info, err := CheckStateFile(path)
		if err != nil {
			t.Fatalf("part %d: %v", part, err)
		}
		if info.Index != 4 || info.Term != 2 {
			t.Fatalf("part %d: index %d term %d, want 4 and 2", part, info.Index, info.Term)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		tasks, _, err := f.List(ListQuery{Limit: 100})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			if !keep(task.Id) {
				t.Fatalf("part %d kept %s", part, task.Id)
			}
		}
		if uint64(len(tasks)) != info.Tasks.Total() {
			t.Fatalf("part %d: %d tasks listed, counts say %d", part, len(tasks), info.Tasks.Total())
		}
		total += info.Tasks.Total()
	}
	if total != 5 {
		t.Fatalf("the parts hold %d tasks, the whole 5", total)
	}
}
