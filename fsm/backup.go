package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// Counts is how many tasks are in each state, by API state name
// ("scheduled", "running", ...). Every state is present, zero or not.
type Counts map[string]uint64

// Total is the number of tasks of every state.
func (c Counts) Total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

func newCounts() Counts {
	c := Counts{}
	for s := fsmpb.State_SCHEDULED; s <= lastState; s++ {
		c[StateName(s)] = 0
	}
	return c
}

// Backup is a consistent point-in-time view of the whole state file, taken
// in one read transaction: what WriteTo writes is the file as it stood
// after the entry at Index was applied. Close it when done; while it is
// open the file cannot shrink or be restored over.
type Backup struct {
	tx *bolt.Tx
	// Index and Term are those of the last raft entry applied.
	Index, Term uint64
	// Size is the number of bytes WriteTo writes.
	Size int64
	// Tasks counts the tasks by state.
	Tasks Counts
	// Schedules is the number of recurring schedules.
	Schedules uint64
}

// Backup opens a consistent view of the state for a backup.
func (f *FSM) Backup() (*Backup, error) {
	f.mu.RLock()
	tx, err := f.db.Begin(false)
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("backup: begin read: %w", err)
	}
	counts, err := countStates(tx)
	if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("backup: %w", err)
	}
	return &Backup{
		tx:    tx,
		Index: appliedIndex(tx), Term: metaUint(tx, metaAppliedTerm),
		Size:  tx.Size(),
		Tasks: counts, Schedules: countSchedules(tx),
	}, nil
}

// WriteTo writes the state file as of the backup, Size bytes.
func (b *Backup) WriteTo(w io.Writer) (int64, error) {
	n, err := b.tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("backup: copy state: %w", err)
	}
	return n, nil
}

// Close ends the read transaction.
func (b *Backup) Close() error { return b.tx.Rollback() }

// countStates counts the by_state index by its first byte, the state.
func countStates(tx *bolt.Tx) (Counts, error) {
	counts := newCounts()
	c := tx.Bucket(bucketByState).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		name := StateName(fsmpb.State(k[0]))
		if _, ok := counts[name]; !ok {
			return nil, fmt.Errorf("state index holds a key of unknown state %d", k[0])
		}
		counts[name]++
	}
	return counts, nil
}

// countSchedules counts the schedules (none in a file from before them).
func countSchedules(tx *bolt.Tx) uint64 {
	if b := tx.Bucket(bucketSchedules); b != nil {
		return uint64(b.Stats().KeyN)
	}
	return 0
}

// StateInfo is what CheckStateFile found in a state file.
type StateInfo struct {
	Schema      uint64
	Index, Term uint64
	Tasks       Counts
	Schedules   uint64
}

// CheckStateFile checks, without changing it, that the file at path is an
// Hourglass state file this build can read and that it is whole: bbolt's
// own page consistency check, every task record decodes and is listed
// under its state, and the due index matches the scheduled tasks.
func CheckStateFile(path string) (*StateInfo, error) {
	return inspectStateFile(path, func(tx *bolt.Tx, info *StateInfo) error {
		// Read the checker's channel to its end: it is unbuffered, and a
		// checker left blocked would outlive the transaction.
		var errs []error
		for err := range tx.Check() {
			if len(errs) < 10 {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("state file is damaged: %w", errors.Join(errs...))
		}
		counts, err := checkRecords(tx)
		info.Tasks = counts
		return err
	})
}

// inspectStateFile opens the bbolt file at path read-only, checks that it
// is an Hourglass state file of this schema, reads its applied index and
// term, and runs more (if not nil) in the same read transaction.
func inspectStateFile(path string, more func(*bolt.Tx, *StateInfo) error) (info *StateInfo, err error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5e9})
	if err != nil {
		return nil, fmt.Errorf("not a state file: %w", err)
	}
	defer db.Close()
	// bbolt trusts its pages; a damaged file may make it panic.
	defer func() {
		if p := recover(); p != nil {
			info, err = nil, fmt.Errorf("state file is damaged: %v", p)
		}
	}()
	err = db.View(func(tx *bolt.Tx) error {
		for _, name := range requiredBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("not a state file: no %q bucket", name)
			}
		}
		info = &StateInfo{Schema: metaUint(tx, metaSchema), Index: appliedIndex(tx), Term: metaUint(tx, metaAppliedTerm), Schedules: countSchedules(tx)}
		if info.Schema < OldestSnapshotSchema || info.Schema > SchemaVersion {
			return fmt.Errorf("state file schema version %d, this build reads %d to %d", info.Schema, OldestSnapshotSchema, SchemaVersion)
		}
		if more == nil {
			return nil
		}
		return more(tx, info)
	})
	if err != nil {
		return nil, err
	}
	return info, nil
}

// checkRecords decodes every task, checks it is indexed under its state,
// and that the indexes hold no more and no fewer entries than the tasks.
func checkRecords(tx *bolt.Tx) (Counts, error) {
	counts, err := countStates(tx)
	if err != nil {
		return nil, err
	}
	byState := tx.Bucket(bucketByState)
	var tasks, waiting uint64
	perQueue := map[string]uint64{}
	err = tx.Bucket(bucketTasks).ForEach(func(k, v []byte) error {
		var t fsmpb.Task
		if err := proto.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("task %q does not decode: %w", k, err)
		}
		if t.Id != string(k) {
			return fmt.Errorf("task stored under %q says its id is %q", k, t.Id)
		}
		if byState.Get(stateKey(t.State, t.Queue, t.Id)) == nil {
			return fmt.Errorf("task %q (%s) is missing from the state index", k, StateName(t.State))
		}
		perQueue[string(queueState{t.Queue, t.State}.key())]++
		tasks++
		if t.Waiting {
			waiting++
			if tx.Bucket(bucketDue).Get(timeKey(t.DueAt, t.Id)) != nil {
				return fmt.Errorf("task %q waits for the previous occurrence, yet is in the due index", k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if total := counts.Total(); total != tasks {
		return nil, fmt.Errorf("state index lists %d tasks, the file holds %d", total, tasks)
	}
	due := uint64(tx.Bucket(bucketDue).Stats().KeyN)
	if want := counts[StateName(fsmpb.State_SCHEDULED)] - waiting; due != want {
		return nil, fmt.Errorf("due index lists %d tasks, %d are scheduled and not waiting", due, want)
	}
	err = tx.Bucket(bucketCounts).ForEach(func(k, v []byte) error {
		if len(v) != 8 || binary.BigEndian.Uint64(v) != perQueue[string(k)] {
			return fmt.Errorf("queue counts say %x for %q, the tasks %d", v, k, perQueue[string(k)])
		}
		delete(perQueue, string(k))
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k, n := range perQueue {
		return nil, fmt.Errorf("queue counts miss %q (%d tasks)", k, n)
	}
	if err := checkSchedules(tx); err != nil {
		return nil, err
	}
	if err := checkPayloads(tx); err != nil {
		return nil, err
	}
	return counts, nil
}

// checkPayloads checks that every payload kept apart belongs to a task
// whose record holds none, and is longer than a record would hold.
func checkPayloads(tx *bolt.Tx) error {
	payloads := tx.Bucket(bucketPayloads)
	if payloads == nil {
		return nil // a state file from before schema 5
	}
	tasks := tx.Bucket(bucketTasks)
	return payloads.ForEach(func(k, v []byte) error {
		raw := tasks.Get(k)
		if raw == nil {
			return fmt.Errorf("payload kept for %q, which is no task", k)
		}
		var t fsmpb.Task
		if err := proto.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("task %q does not decode: %w", k, err)
		}
		if len(t.Payload) > 0 {
			return fmt.Errorf("task %q has a payload in its record and one kept apart", k)
		}
		if len(v) <= apartPayload {
			return fmt.Errorf("payload of task %q kept apart though it is only %d bytes", k, len(v))
		}
		return nil
	})
}

// RebaseStateFile sets the raft index and term a state file says it has
// applied up to. A backup restored into a cluster becomes a raft snapshot
// at that cluster's next index, not the one it was taken at; stamping that
// index into the file keeps the two in agreement.
func RebaseStateFile(path string, index, term uint64) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5e9})
	if err != nil {
		return fmt.Errorf("rebase state file: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("no meta bucket")
		}
		if err := meta.Put(metaApplied, u64(index)); err != nil {
			return err
		}
		return meta.Put(metaAppliedTerm, u64(term))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("rebase state file: %w", err)
	}
	return nil
}

// KeepTasks removes from the state file at path every task keep refuses,
// with its index entries and its counts, and compacts the file: a state
// of one group split for a cluster of many (each group keeps the tasks of
// its slots). The raft index and term stay as they were; queues stay in
// every part.
func KeepTasks(path string, keep func(id string) bool) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5e9, NoSync: true})
	if err != nil {
		return fmt.Errorf("split state file: %w", err)
	}
	const chunk = 10_000 // tasks removed per transaction
	for after := []byte(nil); ; {
		var last []byte
		err = db.Update(func(tx *bolt.Tx) error {
			a := newApplier(tx)
			c := a.tasks.Cursor()
			var drop []*fsmpb.Task
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(drop) < chunk; k, v = c.Next() {
				last = bytes.Clone(k)
				if keep(string(k)) {
					continue
				}
				t := new(fsmpb.Task)
				if err := proto.Unmarshal(v, t); err != nil {
					return fmt.Errorf("decode task %q: %w", k, err)
				}
				drop = append(drop, t)
			}
			for _, t := range drop {
				if err := a.drop(t); err != nil {
					return err
				}
			}
			if after == nil {
				if err := a.keepSchedules(keep); err != nil {
					return err
				}
			}
			return a.flushCounts()
		})
		if err != nil || last == nil {
			break
		}
		after = last
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("split state file: %w", err)
	}
	return compactFile(path)
}

// keepSchedules removes every schedule keep refuses (its occurrences are
// in its slot, so they go with it).
func (a *applier) keepSchedules(keep func(id string) bool) error {
	if a.schedules == nil {
		return nil // a state file from before schedules
	}
	var gone []*fsmpb.Schedule
	err := a.schedules.ForEach(func(k, v []byte) error {
		if keep(string(k)) {
			return nil
		}
		s := new(fsmpb.Schedule)
		if err := proto.Unmarshal(v, s); err != nil {
			return fmt.Errorf("decode schedule %q: %w", k, err)
		}
		gone = append(gone, s)
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range gone {
		if k := scheduleDueKey(s); k != nil {
			if err := a.scheduleDue.Delete(k); err != nil {
				return err
			}
		}
		if err := a.schedules.Delete([]byte(s.Id)); err != nil {
			return err
		}
	}
	return nil
}

// drop deletes task t and every index entry of it.
func (a *applier) drop(t *fsmpb.Task) error {
	a.countDeltas[queueState{t.Queue, t.State}]--
	type entry struct {
		b   *bolt.Bucket
		key []byte
	}
	deletes := []entry{{a.byState, stateKey(t.State, t.Queue, t.Id)}, {a.tasks, []byte(t.Id)}}
	if t.State == fsmpb.State_SCHEDULED {
		deletes = append(deletes, entry{a.due, timeKey(t.DueAt, t.Id)})
	}
	if t.RetainUntil != 0 {
		deletes = append(deletes, entry{a.expire, timeKey(t.RetainUntil, t.Id)})
	}
	for _, d := range deletes {
		if err := d.b.Delete(d.key); err != nil {
			return fmt.Errorf("remove task %q: %w", t.Id, err)
		}
	}
	return a.dropPayload(t.Id)
}

// compactFile rewrites the bbolt file at path without its free pages.
func compactFile(path string) error {
	tmp := path + ".compact"
	src, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5e9})
	if err != nil {
		return fmt.Errorf("compact state file: %w", err)
	}
	defer src.Close()
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 5e9, NoSync: true})
	if err != nil {
		return fmt.Errorf("compact state file: %w", err)
	}
	err = bolt.Compact(dst, src, 64<<20)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compact state file: %w", err)
	}
	return nil
}
