package fsm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ChangeKind says what happened to a task (or queue) in a Change.
type ChangeKind uint8

const (
	// ChangeDue: the task entered the due index at At, on Route (created,
	// rescheduled, set to retry, redriven).
	ChangeDue ChangeKind = iota + 1
	// ChangeNotDue: the task left the due index without being fired
	// (cancelled, rescheduled, purged).
	ChangeNotDue
	// ChangeLeased: the task is leased to a worker until At (leased, or
	// its lease extended).
	ChangeLeased
	// ChangeStopped: the task's attempt ended (an outcome applied, or it
	// expired while running); it no longer runs.
	ChangeStopped
	// ChangeQueue: the settings of queue ID changed.
	ChangeQueue
	// ChangeSchedule: schedule ID was created, changed or deleted, or
	// its next occurrence to create (At) moved.
	ChangeSchedule
)

// Change tells the scheduler what one command did to a task: see
// ChangeKind. Fires are not reported: only the scheduler proposes them.
type Change struct {
	Kind  ChangeKind
	ID    string
	At    int64
	Route Route // ChangeDue
}

// Notifier hears of changes after each applied batch. Its methods run on
// raft's apply goroutine and must not block.
type Notifier interface {
	// DueChanged reports the changes of one committed batch, in order.
	DueChanged([]Change)
	// Restored reports that the whole state was replaced by a snapshot.
	Restored()
}

// Notifiers tells each of its notifiers, in order.
type Notifiers []Notifier

// DueChanged implements Notifier.
func (ns Notifiers) DueChanged(changes []Change) {
	for _, n := range ns {
		n.DueChanged(changes)
	}
}

// Restored implements Notifier.
func (ns Notifiers) Restored() {
	for _, n := range ns {
		n.Restored()
	}
}

// FSM is the bbolt-backed state machine. It implements raft.BatchingFSM.
type FSM struct {
	path     string
	notifier atomic.Pointer[Notifier]
	// finished counts the tasks that reached each final state, by queue,
	// as this FSM applied the log since Open.
	finishedMu sync.Mutex
	finished   map[queueState]uint64
	// logger receives each task's state changes at debug level, and a
	// full disk's waits at error level.
	logger atomic.Pointer[slog.Logger]
	// appliedBytes counts the raft entry bytes applied since Open.
	appliedBytes atomic.Uint64
	// written is set by every transaction that wrote to the state file,
	// and cleared by the writeback that follows: an idle node does not
	// ask the kernel to write back a file it did not change.
	written atomic.Bool
	// waitingForSpace is set while applying waits for a full disk;
	// stopWaiting, closed by StopWaiting, ends that wait.
	waitingForSpace atomic.Bool
	stopWaiting     chan struct{}
	stopWaitingOnce sync.Once
	applyStopped    atomic.Bool // an apply was called off: none after it

	mu sync.RWMutex // held for writing only while Restore swaps the file
	db *bolt.DB

	stopWriteback chan struct{}
	writebackDone chan struct{}
	closeOnce     sync.Once
}

// writebackEvery is how often the state file's dirty pages are handed to
// the kernel to write out. The file is not fsynced per apply (NoSync), so
// left alone its dirty pages pile up until the kernel flushes them in one
// burst, and the raft log's fsyncs on the same disk stall behind it
// (measured: pull leases at 10k/s, p99 59 ms with bursts, 30 ms with
// steady writeback).
const writebackEvery = 100 * time.Millisecond

func (f *FSM) writeback() {
	defer close(f.writebackDone)
	ticker := time.NewTicker(writebackEvery)
	defer ticker.Stop()
	for {
		select {
		case <-f.stopWriteback:
			return
		case <-ticker.C:
			if f.written.Swap(false) {
				startWriteback(f.path)
			}
		}
	}
}

var _ raft.BatchingFSM = (*FSM)(nil)

// Open opens (or creates) the state machine's bbolt file at path.
func Open(path string) (*FSM, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	f := &FSM{path: path, db: db, stopWriteback: make(chan struct{}), writebackDone: make(chan struct{}), stopWaiting: make(chan struct{})}
	f.written.Store(true) // opening may have migrated it
	go f.writeback()
	return f, nil
}

// initialMmapSize is the state file's first mapping: the file is only
// remapped once it outgrows this (~120M tasks).
const initialMmapSize = 64 << 30

func openDB(path string) (db *bolt.DB, err error) {
	// bbolt trusts its pages: a damaged file may make it fault.
	defer func() {
		if p := recover(); p != nil {
			if db != nil {
				func() {
					defer func() { _ = recover() }()
					db.Close() // releases the file's lock
				}()
			}
			db, err = nil, fmt.Errorf("open state file %s: %w: %v", path, ErrDamaged, p)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout: time.Second, // another process holds the file's lock
		// The raft log is the durable record; the FSM is synced before
		// snapshots and on close (see doc.go).
		NoSync:       true,
		FreelistType: bolt.FreelistMapType,
		// Map generously up front (address space, not memory): growing
		// the map waits for every read transaction to end, including a
		// snapshot being streamed, which at 10M tasks takes ~20 s, and
		// every write waited with it.
		InitialMmapSize: initialMmapSize,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open state file %s: %w: another process (another hourglass server?) is using this data directory", path, ErrLocked)
	}
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch) {
		return nil, fmt.Errorf("open state file %s: %w: %w", path, ErrDamaged, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(metaSchema)
		if v == nil {
			return meta.Put(metaSchema, u64(SchemaVersion))
		}
		switch got := binary.BigEndian.Uint64(v); {
		case got == SchemaVersion:
			return nil
		case got < SchemaVersion:
			return migrate(tx, got)
		default:
			return fmt.Errorf("state file schema version %d, this build reads %d: it was written by a newer Hourglass", got, SchemaVersion)
		}
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	return db, nil
}

// SetNotifier installs the listener for due-index changes (nil: none).
func (f *FSM) SetNotifier(n Notifier) {
	if n == nil {
		f.notifier.Store(nil)
		return
	}
	f.notifier.Store(&n)
}

// FinishedCount is how many tasks of a queue reached a final state.
type FinishedCount struct {
	Queue, State string
	N            uint64
}

// Finished counts the tasks of each queue that reached each final state
// (succeeded, dead, cancelled, expired) as this FSM applied the log since
// it was opened.
func (f *FSM) Finished() []FinishedCount {
	f.finishedMu.Lock()
	defer f.finishedMu.Unlock()
	out := make([]FinishedCount, 0, len(f.finished))
	for k, n := range f.finished {
		out = append(out, FinishedCount{Queue: k.queue, State: StateName(k.state), N: n})
	}
	return out
}

// SetLogger makes the FSM log every task state change, with the task's id
// and queue and the raft index that made it, when l is enabled at debug
// level (nil: no logging). Payloads and targets are never logged.
func (f *FSM) SetLogger(l *slog.Logger) {
	f.logger.Store(l)
}

// Close syncs and closes the file.
func (f *FSM) Close() error {
	f.closeOnce.Do(func() { close(f.stopWriteback) })
	<-f.writebackDone
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.db.Sync(); err != nil {
		f.db.Close()
		return fmt.Errorf("sync state file: %w", err)
	}
	return f.db.Close()
}

// AppliedIndex is the raft index of the last entry applied.
func (f *FSM) AppliedIndex() uint64 {
	var idx uint64
	_ = f.view(func(tx *bolt.Tx) error {
		idx = appliedIndex(tx)
		return nil
	})
	return idx
}

func appliedIndex(tx *bolt.Tx) uint64 { return metaUint(tx, metaApplied) }

// metaUint reads a number from the meta bucket (0 when absent).
func metaUint(tx *bolt.Tx, key []byte) uint64 {
	if v := tx.Bucket(bucketMeta).Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (f *FSM) view(fn func(*bolt.Tx) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.db.View(fn)
}

// Apply applies one log entry; see ApplyBatch.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed log entries in one bbolt transaction. The
// response for a command entry is a []any with one result per command:
// *CreateResult, *TaskResult, *FireResult, *OutcomeResult or
// *PurgeResult. Entries at or below the stored applied index (replayed
// after a restart) are skipped and answer nil.
//
// A log entry that does not decode, or a bbolt failure, panics: a node must
// stop rather than diverge from its peers. A full disk is waited out
// instead (see applyWaitingForSpace).
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	results := make([]any, len(logs))
	if f.applyStopped.Load() {
		return results // see StopWaiting
	}
	var changes []Change
	var finished map[queueState]uint64
	var size uint64
	err := f.applyWaitingForSpace(func(tx *bolt.Tx) error {
		size = 0 // counted again if the transaction is tried again
		a := newApplier(tx)
		if l := f.logger.Load(); l != nil && l.Enabled(context.Background(), slog.LevelDebug) {
			a.log = l
		}
		applied := appliedIndex(tx)
		last, lastTerm := applied, uint64(0)
		for i, l := range logs {
			if l.Index <= applied {
				continue
			}
			last, lastTerm = l.Index, l.Term
			size += uint64(len(l.Data))
			if l.Type != raft.LogCommand {
				continue
			}
			entry, err := DecodeEntry(l.Data)
			if err != nil {
				panic(fmt.Sprintf("fsm: log entry %d: %v", l.Index, err))
			}
			a.index, a.term = l.Index, l.Term
			out := make([]any, len(entry.Commands))
			for j, c := range entry.Commands {
				r, err := a.apply(c)
				if err != nil {
					return fmt.Errorf("log entry %d command %d: %w", l.Index, j, err)
				}
				out[j] = r
			}
			results[i] = out
		}
		if last == applied {
			return nil
		}
		changes, finished = a.changes, a.finished
		if err := a.flushCounts(); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(metaApplied, u64(last)); err != nil {
			return err
		}
		return meta.Put(metaAppliedTerm, u64(lastTerm))
	})
	if errors.Is(err, errStoppedWaiting) {
		// Nothing applied, and nothing after it may be: entries apply
		// in order. The node is shutting down.
		f.applyStopped.Store(true)
		return make([]any, len(logs))
	}
	if err != nil {
		panic(fmt.Sprintf("fsm: apply batch: %v", err))
	}
	f.appliedBytes.Add(size)
	f.written.Store(true)
	if len(finished) > 0 {
		f.finishedMu.Lock()
		if f.finished == nil {
			f.finished = map[queueState]uint64{}
		}
		for k, n := range finished {
			f.finished[k] += n
		}
		f.finishedMu.Unlock()
	}
	if n := f.notifier.Load(); n != nil && len(changes) > 0 {
		(*n).DueChanged(changes)
	}
	return results
}

// applyWaitingForSpace runs apply in a write transaction, and again, after
// a growing pause, for as long as the transaction fails because the disk
// is full (the state file could not grow; the failed transaction changed
// nothing). Entries must be applied in order, so nothing after this one
// can be either: the node stops applying but stays up, serving reads,
// and goes on by itself once space is freed, rather than dying at this
// entry at every restart.
func (f *FSM) applyWaitingForSpace(apply func(*bolt.Tx) error) error {
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 5*time.Second) {
		f.mu.RLock()
		err := f.db.Update(apply)
		f.mu.RUnlock()
		if !errors.Is(err, syscall.ENOSPC) {
			if f.waitingForSpace.Load() {
				f.waitingForSpace.Store(false)
			}
			return err
		}
		if l := f.logger.Load(); l != nil {
			l.Error("the disk of the data directory is full: applying the raft log waits for space", "path", f.path, "err", err, "next_try_in", pause)
		}
		f.waitingForSpace.Store(true)
		select {
		case <-f.stopWaiting:
			return errStoppedWaiting
		case <-time.After(pause):
		}
	}
}

// errStoppedWaiting: StopWaiting called off an apply waiting for space.
var errStoppedWaiting = errors.New("stopped waiting for space on a full disk")

// StopWaiting calls off an apply waiting for space on a full disk, so
// that raft can shut down: that batch and every later one are then left
// unapplied (their entries answer nil, and are applied from the log at
// the next start).
func (f *FSM) StopWaiting() { f.stopWaitingOnce.Do(func() { close(f.stopWaiting) }) }

// WaitingForSpace reports whether applying is waiting for the disk to
// have space (see applyWaitingForSpace).
func (f *FSM) WaitingForSpace() bool { return f.waitingForSpace.Load() }

// AppliedBytes is how many bytes of raft entries this FSM applied since it
// was opened (entries it had applied before are skipped, and not counted).
func (f *FSM) AppliedBytes() uint64 { return f.appliedBytes.Load() }

// Snapshot opens a read transaction that Persist streams as a consistent
// copy of the whole file. It runs between applies, so it does no more.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	tx, err := f.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("snapshot: begin read: %w", err)
	}
	return &snapshot{tx: tx}, nil
}

type snapshot struct{ tx *bolt.Tx }

// Persist first syncs the state file, so that everything up to (and past)
// the snapshot's index is durable before raft compacts its log behind it;
// then it streams the transaction's copy. Both run beside the applies:
// with gigabytes of dirty pages the sync alone can take seconds.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.tx.DB().Sync(); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: sync state file: %w", err)
	}
	if _, err := s.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() { _ = s.tx.Rollback() }

// Restore replaces the whole state with a snapshot written by Persist. The
// snapshot is written to a temporary file and checked before the live file
// is swapped, so a bad snapshot leaves the old state in place.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.path + ".restore"
	if err := writeFileSync(tmp, rc); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := inspectStateFile(tmp, nil); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	f.mu.Lock()
	if err := f.db.Close(); err != nil {
		f.mu.Unlock()
		return fmt.Errorf("restore: close state file: %w", err)
	}
	err := os.Rename(tmp, f.path)
	if err == nil {
		err = syncDir(filepath.Dir(f.path))
	}
	db, openErr := openDB(f.path)
	if openErr != nil {
		// Nothing left to serve from: this node cannot go on.
		panic(fmt.Sprintf("fsm: reopen state file after restore: %v", openErr))
	}
	f.db = db
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("restore: swap state file: %w", err)
	}
	if n := f.notifier.Load(); n != nil {
		(*n).Restored()
	}
	return nil
}

func writeFileSync(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
