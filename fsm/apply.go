package fsm

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// CreateResult answers a create command, one item per task in order.
type CreateResult struct{ Items []CreateItem }

// CreateItem is the outcome of one create: the stored task, whether it
// existed already (an idempotent repeat), or ErrConflict.
type CreateItem struct {
	Task    *fsmpb.Task
	Existed bool
	Err     error
}

// TaskResult answers a cancel or update: the task after the change, or a
// business error (ErrNotFound, ErrConflict, ErrVersionMismatch).
type TaskResult struct {
	Task *fsmpb.Task
	Err  error
}

// FireResult lists the tasks a fire command moved to running, as stored,
// those it found past their max_lateness and expired instead, and the
// occurrences it skipped or held back by their schedule's overlap policy
// (the previous occurrence had not ended).
type FireResult struct{ Accepted, Expired, Skipped, Waiting []*fsmpb.Task }

// OutcomeResult counts the outcomes that applied; Errs says, per outcome,
// why one did not (nil: applied): ErrNotFound, or ErrConflict when it named
// an attempt that is no longer current or a lease that is not live.
type OutcomeResult struct {
	Applied int
	Errs    []error
	// Tasks are the tasks after each applied outcome (nil where refused).
	Tasks []*fsmpb.Task
}

// PurgeResult counts the finished tasks deleted.
type PurgeResult struct{ Purged int }

// QueueResult answers a queue command: the queue's settings, or a business
// error (ErrNotFound, ErrConflict, ErrInvalid).
type QueueResult struct {
	Queue *fsmpb.Queue
	Err   error
}

// CountResult counts the tasks a bulk command changed.
type CountResult struct{ Changed int }

// applier applies commands inside one write transaction.
type applier struct {
	tasks, due, expire, byState, queues, counts *bolt.Bucket
	schedules, scheduleDue                      *bolt.Bucket
	payloads                                    *bolt.Bucket // nil in a read of a file from before schema 5
	// Cursors over tasks, due, by_state and payloads for lookups and
	// deletes: one reused cursor instead of the new one each Bucket.Get
	// and Delete makes.
	tasksCur, dueCur, byStateCur, payloadsCur *bolt.Cursor
	// key is scratch space for keys: bbolt copies the key of a Put (it
	// keeps only the value for the transaction's life).
	key         []byte
	index, term uint64 // of the entry being applied
	changes     []Change
	// countDeltas are the changes to counts, written once per batch.
	countDeltas map[queueState]int64
	// finished counts the tasks that reached a final state in this batch
	// (nil until one does).
	finished map[queueState]uint64
	// queueCache holds the queues read or written in this transaction
	// (nil: known not to exist).
	queueCache map[string]*fsmpb.Queue
	// log, when set, receives each state change (debug level).
	log *slog.Logger
}

// fillPercent is how full bbolt fills a page when it splits one. Its
// default, half, suits random inserts; most of ours come in key order
// (time-ordered ids), and at half every such page would stay half empty
// for good: a state file, and every snapshot and backup of it, near twice
// the size. The due index keeps the default: due times often arrive out of
// order, and there 90% only leaves a trail of small split pages, slower
// and larger. Measured (BenchmarkApplyCreates, 1,000 per entry): due times
// in creation order 783 → 510 bytes per task, 256k → 290k tasks/s;
// scattered 759 → 495 bytes, 73k → 76k tasks/s.
const fillPercent = 0.9

func newApplier(tx *bolt.Tx) *applier {
	a := &applier{
		tasks:   tx.Bucket(bucketTasks),
		due:     tx.Bucket(bucketDue),
		expire:  tx.Bucket(bucketExpire),
		byState: tx.Bucket(bucketByState),
		queues:  tx.Bucket(bucketQueues),
		counts:  tx.Bucket(bucketCounts),

		schedules:   tx.Bucket(bucketSchedules),
		scheduleDue: tx.Bucket(bucketScheduleDue),
		payloads:    tx.Bucket(bucketPayloads),

		countDeltas: map[queueState]int64{},
		queueCache:  map[string]*fsmpb.Queue{},
	}
	a.tasksCur, a.dueCur, a.byStateCur = a.tasks.Cursor(), a.due.Cursor(), a.byState.Cursor()
	if a.payloads != nil {
		a.payloadsCur = a.payloads.Cursor()
	}
	if tx.Writable() {
		for _, b := range []*bolt.Bucket{a.tasks, a.expire, a.byState, a.payloads} { // not due: see fillPercent
			if b != nil {
				b.FillPercent = fillPercent
			}
		}
	}
	return a
}

// apply runs one command. A returned error is a storage failure; business
// outcomes are in the result.
func (a *applier) apply(c *fsmpb.Command) (any, error) {
	switch k := c.Kind.(type) {
	case *fsmpb.Command_Create:
		return a.create(k.Create)
	case *fsmpb.Command_Cancel:
		return a.cancel(k.Cancel)
	case *fsmpb.Command_Update:
		return a.update(k.Update)
	case *fsmpb.Command_Fire:
		return a.fire(k.Fire)
	case *fsmpb.Command_Outcomes:
		return a.outcomes(k.Outcomes)
	case *fsmpb.Command_Purge:
		return a.purge(k.Purge)
	case *fsmpb.Command_Extend:
		return a.extend(k.Extend)
	case *fsmpb.Command_PutQueue:
		return a.putQueue(k.PutQueue)
	case *fsmpb.Command_PauseQueue:
		return a.pauseQueue(k.PauseQueue)
	case *fsmpb.Command_DeleteQueue:
		return a.deleteQueue(k.DeleteQueue)
	case *fsmpb.Command_Redrive:
		return a.redrive(k.Redrive)
	case *fsmpb.Command_CancelMany:
		return a.cancelMany(k.CancelMany)
	case *fsmpb.Command_Shift:
		return a.shift(k.Shift)
	case *fsmpb.Command_PutSchedule:
		return a.putSchedule(k.PutSchedule)
	case *fsmpb.Command_DeleteSchedule:
		return a.deleteSchedule(k.DeleteSchedule)
	case *fsmpb.Command_CreateOccurrences:
		return a.createOccurrences(k.CreateOccurrences)
	default:
		return nil, fmt.Errorf("unknown command %T", k)
	}
}

// lookup returns the value under key k in c's bucket, or nil, moving c
// (nil too if c is: a bucket the file does not have).
func lookup(c *bolt.Cursor, k []byte) []byte {
	if c == nil {
		return nil
	}
	got, v := c.Seek(k)
	if !bytes.Equal(got, k) {
		return nil
	}
	return v
}

// remove deletes key k, if present, from c's bucket, moving c.
func remove(c *bolt.Cursor, k []byte) error {
	if got, _ := c.Seek(k); !bytes.Equal(got, k) {
		return nil
	}
	return c.Delete()
}

// Limits that keep every key a valid bbolt key; the API's are tighter.
const (
	maxIDLen    = 1024
	maxQueueLen = 1024
)

func validID(id string) bool { return id != "" && len(id) <= maxIDLen }

// get returns the task with id, or nil when there is none (or the id could
// not name one).
func (a *applier) get(id string) (*fsmpb.Task, error) {
	if !validID(id) {
		return nil, nil
	}
	a.key = append(a.key[:0], id...)
	v := lookup(a.tasksCur, a.key)
	if v == nil {
		return nil, nil
	}
	t := new(fsmpb.Task)
	if err := decodeTask(v, t); err != nil {
		return nil, fmt.Errorf("decode task %q: %w", id, err)
	}
	if len(t.Payload) == 0 {
		t.Payload = bytes.Clone(lookup(a.payloadsCur, a.key)) // a.key: the id still
	}
	return t, nil
}

// apartPayload is the longest payload a task record holds; a longer one
// is kept apart, in the payloads bucket, and written once, so that the
// state changes of its task rewrite a small record, not the payload.
// Measured with hourglass bench --pull --payload 4096, 100,000 tasks due
// at once, one node: 203 and 206 us of server CPU a task after the
// creates with the payload in the record, 174 and 163 us with it apart;
// 12.8k and 13.4k leases/s, 20.3k and 18.9k. Payloads of 64 bytes: no
// change. Short payloads stay in the record: one read fewer.
const apartPayload = 512

// put stores t's record, with its payload if that is short; a long one
// goes to the payloads bucket unless it is there already (an update that
// replaces a payload removes the old one first: dropPayload).
func (a *applier) put(t *fsmpb.Task) error {
	t.Version = a.index
	a.key = append(a.key[:0], t.Id...)
	payload := t.Payload
	if len(payload) > apartPayload {
		if lookup(a.payloadsCur, a.key) == nil {
			if err := a.payloads.Put(a.key, payload); err != nil {
				return fmt.Errorf("store payload of task %q: %w", t.Id, err)
			}
		}
		t.Payload = nil
	}
	v, err := t.MarshalVT()
	t.Payload = payload
	if err != nil {
		return fmt.Errorf("encode task %q: %w", t.Id, err)
	}
	return a.tasks.Put(a.key, v)
}

// dropPayload deletes the payload kept apart for task id, if any.
func (a *applier) dropPayload(id string) error {
	if a.payloadsCur == nil {
		return nil
	}
	a.key = append(a.key[:0], id...)
	if err := remove(a.payloadsCur, a.key); err != nil {
		return fmt.Errorf("remove payload of task %q: %w", id, err)
	}
	return nil
}

// setState moves t to state, keeping by_state and the counts in step.
func (a *applier) setState(t *fsmpb.Task, state fsmpb.State) error {
	if t.State != fsmpb.State_STATE_UNSPECIFIED {
		a.key = appendStateKey(a.key[:0], t.State, t.Queue, t.Id)
		if err := remove(a.byStateCur, a.key); err != nil {
			return err
		}
		a.countDeltas[queueState{t.Queue, t.State}]--
	}
	if a.log != nil {
		from := StateName(t.State)
		if from == "" {
			from = "new"
		}
		a.log.Debug("task state", "id", t.Id, "queue", t.Queue, "from", from, "to", StateName(state), "raft_index", a.index)
	}
	t.State = state
	a.countDeltas[queueState{t.Queue, state}]++
	if state != fsmpb.State_SCHEDULED && state != fsmpb.State_RUNNING {
		if a.finished == nil {
			a.finished = map[queueState]uint64{}
		}
		a.finished[queueState{t.Queue, state}]++
	}
	a.key = appendStateKey(a.key[:0], state, t.Queue, t.Id)
	return a.byState.Put(a.key, nil)
}

// flushCounts writes the batch's count changes.
func (a *applier) flushCounts() error {
	for c, d := range a.countDeltas {
		if d == 0 {
			continue
		}
		k := c.key()
		var n uint64
		if v := a.counts.Get(k); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		n = uint64(int64(n) + d)
		var err error
		if n == 0 {
			err = a.counts.Delete(k)
		} else {
			err = a.counts.Put(k, u64(n))
		}
		if err != nil {
			return fmt.Errorf("write counts: %w", err)
		}
	}
	clear(a.countDeltas)
	return nil
}

// addDue puts t in the due index (so it waits for nothing else).
func (a *applier) addDue(t *fsmpb.Task) error {
	t.Waiting = false
	r := routeOf(t)
	a.changes = append(a.changes, Change{Kind: ChangeDue, ID: t.Id, At: t.DueAt, Route: r})
	a.key = appendTimeKey(a.key[:0], t.DueAt, t.Id)
	return a.due.Put(a.key, encodeRoute(r))
}

func (a *applier) removeDue(t *fsmpb.Task) error {
	a.changes = append(a.changes, Change{Kind: ChangeNotDue, ID: t.Id, At: t.DueAt})
	return a.deleteDue(t)
}

// deleteDue takes t out of the due index.
func (a *applier) deleteDue(t *fsmpb.Task) error {
	a.key = appendTimeKey(a.key[:0], t.DueAt, t.Id)
	return remove(a.dueCur, a.key)
}

// stopRunning ends t's attempt (its state changes next).
func (a *applier) stopRunning(t *fsmpb.Task) {
	a.changes = append(a.changes, Change{Kind: ChangeStopped, ID: t.Id})
	t.LeaseExpiresAt, t.LeaseToken = 0, nil
}

// finish moves t to a final state and queues it for purging; the next
// occurrence of its schedule, if it waits for t, is due now.
func (a *applier) finish(t *fsmpb.Task, state fsmpb.State, at, retainUntil int64) error {
	t.CompletedAt, t.UpdatedAt, t.RetainUntil = at, at, retainUntil
	t.Waiting = false
	if err := a.setState(t, state); err != nil {
		return err
	}
	if err := a.releaseNext(t, at); err != nil {
		return err
	}
	a.key = appendTimeKey(a.key[:0], retainUntil, t.Id)
	return a.expire.Put(a.key, nil)
}

func (a *applier) create(c *fsmpb.CreateTasks) (*CreateResult, error) {
	res := &CreateResult{Items: make([]CreateItem, len(c.Tasks))}
	for i, t := range c.Tasks {
		if !validID(t.Id) || !validQueue(t.Queue) {
			res.Items[i] = CreateItem{Err: errorf(ErrInvalid, "task id or queue is empty or too long")}
			continue
		}
		old, err := a.get(t.Id)
		if err != nil {
			return nil, err
		}
		if old != nil {
			if bytes.Equal(old.Fingerprint, t.Fingerprint) {
				res.Items[i] = CreateItem{Task: old, Existed: true}
			} else {
				res.Items[i] = CreateItem{Task: old, Err: errorf(ErrConflict, "task %q already exists with a different body", t.Id)}
			}
			continue
		}
		t.State = fsmpb.State_STATE_UNSPECIFIED
		t.DueAt = t.ExecuteAt
		if err := a.ensureQueue(t.Queue, t.CreatedAt); err != nil {
			return nil, err
		}
		if err := a.setState(t, fsmpb.State_SCHEDULED); err != nil {
			return nil, err
		}
		if err := a.addDue(t); err != nil {
			return nil, err
		}
		if err := a.put(t); err != nil {
			return nil, err
		}
		res.Items[i] = CreateItem{Task: t}
	}
	return res, nil
}

func (a *applier) cancel(c *fsmpb.CancelTask) (*TaskResult, error) {
	t, err := a.get(c.Id)
	if err != nil || t == nil {
		return &TaskResult{Err: errorf(ErrNotFound, "no task %q", c.Id)}, err
	}
	switch t.State {
	case fsmpb.State_CANCELLED:
		return &TaskResult{Task: t}, nil // cancelling twice is fine
	case fsmpb.State_SCHEDULED:
	default:
		return &TaskResult{Task: t, Err: errorf(ErrConflict, "task %q %s; only a scheduled task can be cancelled", c.Id, describe(t.State))}, nil
	}
	if err := a.removeDue(t); err != nil {
		return nil, err
	}
	if err := a.finish(t, fsmpb.State_CANCELLED, c.At, c.RetainUntil); err != nil {
		return nil, err
	}
	return &TaskResult{Task: t}, a.put(t)
}

func (a *applier) update(c *fsmpb.UpdateTask) (*TaskResult, error) {
	t, err := a.get(c.Id)
	if err != nil || t == nil {
		return &TaskResult{Err: errorf(ErrNotFound, "no task %q", c.Id)}, err
	}
	if c.IfVersion != 0 && c.IfVersion != t.Version {
		return &TaskResult{Task: t, Err: errorf(ErrVersionMismatch, "task %q is at version %d, not %d (If-Match)", c.Id, t.Version, c.IfVersion)}, nil
	}
	if t.State != fsmpb.State_SCHEDULED {
		return &TaskResult{Task: t, Err: errorf(ErrConflict, "task %q %s; only a scheduled task can be changed", c.Id, describe(t.State))}, nil
	}
	// A new time or target changes the due index entry (the route).
	moved := c.ExecuteAt != nil || c.Target != nil
	if moved {
		if err := a.removeDue(t); err != nil {
			return nil, err
		}
	}
	if c.ExecuteAt != nil {
		t.ExecuteAt, t.DueAt = *c.ExecuteAt, *c.ExecuteAt
	}
	if c.Payload != nil {
		if err := a.dropPayload(t.Id); err != nil {
			return nil, err
		}
		t.Payload = c.Payload
	}
	if c.Target != nil {
		t.Target = c.Target
	}
	if moved {
		if err := a.addDue(t); err != nil {
			return nil, err
		}
	}
	t.UpdatedAt = c.At
	return &TaskResult{Task: t}, a.put(t)
}

// fire moves due tasks to running: commit before send. A task is accepted
// if it is still scheduled at the due time the scheduler saw (not
// cancelled or rescheduled since), or running under an older term, whose
// leader is gone without recording the outcome, or (reclaim) running under
// this term after a Fire whose outcome this leader never learned, or under
// a later term, which only a backup restored from another cluster can
// hold. A leased task is never fired again: its lease runs out instead.
//
// A push fire takes only tasks with a target, a lease (lease_until set)
// only tasks without one. A task past its max_lateness expires instead.
func (a *applier) fire(c *fsmpb.FireTasks) (*FireResult, error) {
	res := &FireResult{}
	lease := c.LeaseUntil != 0
	for _, item := range c.Items {
		t, err := a.get(item.Id)
		if err != nil {
			return nil, err
		}
		if t == nil || lease != (t.Target == nil) {
			continue
		}
		switch {
		case t.State == fsmpb.State_SCHEDULED && t.DueAt == item.DueAt:
			if err := a.deleteDue(t); err != nil {
				return nil, err
			}
			if pastLateness(t, c.At) {
				if err := a.expireTask(t, c); err != nil {
					return nil, err
				}
				res.Expired = append(res.Expired, t)
				continue
			}
			if held, err := a.holdBack(t, c, res); err != nil || held {
				if err != nil {
					return nil, err
				}
				continue
			}
			if err := a.setState(t, fsmpb.State_RUNNING); err != nil {
				return nil, err
			}
		case !lease && t.State == fsmpb.State_RUNNING && t.LeaseExpiresAt == 0 && (t.FireTerm < c.Term || item.Reclaim):
			if pastLateness(t, c.At) {
				a.stopRunning(t)
				if err := a.expireTask(t, c); err != nil {
					return nil, err
				}
				res.Expired = append(res.Expired, t)
				continue
			}
		default:
			continue
		}
		t.Attempts++
		t.FiredAt, t.UpdatedAt = c.At, c.At
		t.FireTerm, t.FireIndex = c.Term, a.index
		t.LeaseExpiresAt, t.LeaseToken = c.LeaseUntil, nil
		if lease {
			t.LeaseToken = item.LeaseToken
			a.changes = append(a.changes, Change{Kind: ChangeLeased, ID: t.Id, At: t.LeaseExpiresAt})
		}
		if err := a.put(t); err != nil {
			return nil, err
		}
		res.Accepted = append(res.Accepted, t)
	}
	return res, nil
}

// pastLateness reports whether no attempt of t may start at `at` any more.
func pastLateness(t *fsmpb.Task, at int64) bool {
	return t.MaxLateness > 0 && at > t.ExecuteAt+t.MaxLateness
}

func (a *applier) expireTask(t *fsmpb.Task, c *fsmpb.FireTasks) error {
	t.LastError = fmt.Sprintf("expired: could not start within max_lateness %v of execute_at", time.Duration(t.MaxLateness))
	if err := a.finish(t, fsmpb.State_EXPIRED, c.At, c.RetainUntil); err != nil {
		return err
	}
	return a.put(t)
}

func (a *applier) outcomes(c *fsmpb.RecordOutcomes) (*OutcomeResult, error) {
	res := &OutcomeResult{Errs: make([]error, len(c.Outcomes)), Tasks: make([]*fsmpb.Task, len(c.Outcomes))}
	for i, o := range c.Outcomes {
		t, err := a.get(o.Id)
		if err != nil {
			return nil, err
		}
		if res.Errs[i] = checkOutcome(t, o, c.At); res.Errs[i] != nil {
			continue
		}
		a.stopRunning(t)
		t.LastError = o.Error
		kind, retryAt := o.Kind, o.RetryAt
		if kind == fsmpb.Outcome_FAILED {
			kind, retryAt, t.LastError = a.decideFailure(t, o, c.At)
		}
		switch kind {
		case fsmpb.Outcome_SUCCEEDED:
			t.Result = o.Result
			err = a.finish(t, fsmpb.State_SUCCEEDED, c.At, o.RetainUntil)
		case fsmpb.Outcome_DEAD:
			err = a.finish(t, fsmpb.State_DEAD, c.At, o.RetainUntil)
		case fsmpb.Outcome_RETRY:
			t.DueAt, t.UpdatedAt = retryAt, c.At
			if err = a.setState(t, fsmpb.State_SCHEDULED); err == nil {
				err = a.addDue(t)
			}
		}
		if err != nil {
			return nil, err
		}
		if err := a.put(t); err != nil {
			return nil, err
		}
		res.Applied++
		res.Tasks[i] = t
	}
	return res, nil
}

// checkOutcome says why outcome o cannot apply to t at `at`, or nil.
func checkOutcome(t *fsmpb.Task, o *fsmpb.Outcome, at int64) error {
	switch {
	case t == nil:
		return errorf(ErrNotFound, "no task %q", o.Id)
	case o.Kind == fsmpb.Outcome_KIND_UNSPECIFIED || fsmpb.Outcome_Kind_name[int32(o.Kind)] == "":
		return errorf(ErrInvalid, "outcome of task %q has no known kind", t.Id) // refused alike on every node
	case o.Worker:
		return checkLease(t, o.LeaseToken, o.Attempt, at)
	case t.State != fsmpb.State_RUNNING || t.Attempts != o.Attempt:
		return errorf(ErrConflict, "attempt %d of task %q is not running: the task %s, at attempt %d", o.Attempt, t.Id, describe(t.State), t.Attempts)
	case o.LeaseExpired && (t.LeaseExpiresAt == 0 || t.LeaseExpiresAt > at):
		return errorf(ErrConflict, "the lease of task %q did not run out", t.Id) // extended meanwhile
	}
	return nil
}

// checkLease says why a worker showing token (and attempt, unless 0)
// does not hold a live lease of t at `at`, or nil. To anyone but the
// lease's holder it says only that: not the task's state, nor its
// attempt. A task leased before lease tokens existed has none; its
// attempt number decides, as it did then.
func checkLease(t *fsmpb.Task, token []byte, attempt uint32, at int64) error {
	held := t.State == fsmpb.State_RUNNING && t.LeaseExpiresAt != 0 && (attempt == 0 || attempt == t.Attempts)
	if len(t.LeaseToken) > 0 {
		held = held && subtle.ConstantTimeCompare(t.LeaseToken, token) == 1
	} else {
		held = held && attempt == t.Attempts
	}
	if !held {
		return errorf(ErrConflict, "no live lease of task %q has this lease token (the lease ran out or was finished, or the token is not its)", t.Id)
	}
	if t.LeaseExpiresAt <= at {
		return errorf(ErrConflict, "the lease of attempt %d of task %q ran out at %s", t.Attempts, t.Id, time.Unix(0, t.LeaseExpiresAt).UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// decideFailure turns a failed attempt into a retry or dead, from the
// task's and its queue's retry policy.
func (a *applier) decideFailure(t *fsmpb.Task, o *fsmpb.Outcome, at int64) (fsmpb.Outcome_Kind, int64, string) {
	q, _ := a.queue(t.Queue) // a queue that does not decode counts as defaults
	p := PolicyFor(t, q)
	if t.Attempts >= p.MaxAttempts {
		return fsmpb.Outcome_DEAD, 0, o.Error
	}
	retryAt := o.RetryAt // a worker's retry_in
	if retryAt == 0 {
		retryAt = at + int64(p.Backoff(t.Attempts, o.Jitter))
	}
	retryAt = max(retryAt, o.NotBefore)
	if p.MaxRetryDuration > 0 && retryAt > t.ExecuteAt+int64(p.MaxRetryDuration) {
		return fsmpb.Outcome_DEAD, 0, fmt.Sprintf("%s (no retry: max_retry_duration %v of the queue is over)", o.Error, p.MaxRetryDuration)
	}
	return fsmpb.Outcome_RETRY, retryAt, o.Error
}

func (a *applier) extend(c *fsmpb.ExtendLease) (*TaskResult, error) {
	t, err := a.get(c.Id)
	if err != nil || t == nil {
		return &TaskResult{Err: errorf(ErrNotFound, "no task %q", c.Id)}, err
	}
	if err := checkLease(t, c.LeaseToken, c.Attempt, c.At); err != nil {
		return &TaskResult{Task: t, Err: err}, nil
	}
	t.LeaseExpiresAt, t.UpdatedAt = c.Until, c.At
	a.changes = append(a.changes, Change{Kind: ChangeLeased, ID: t.Id, At: t.LeaseExpiresAt})
	return &TaskResult{Task: t}, a.put(t)
}

// queue returns the settings of the queue name (nil if it has none).
func (a *applier) queue(name string) (*fsmpb.Queue, error) {
	if q, ok := a.queueCache[name]; ok {
		return q, nil
	}
	var q *fsmpb.Queue
	if len(name) > 0 && len(name) <= maxQueueLen {
		if v := a.queues.Get([]byte(name)); v != nil {
			q = new(fsmpb.Queue)
			if err := proto.Unmarshal(v, q); err != nil {
				return nil, fmt.Errorf("decode queue %q: %w", name, err)
			}
		}
	}
	a.queueCache[name] = q
	return q, nil
}

func (a *applier) putQueueRecord(q *fsmpb.Queue) error {
	v, err := proto.Marshal(q)
	if err != nil {
		return fmt.Errorf("encode queue %q: %w", q.Name, err)
	}
	a.queueCache[q.Name] = q
	a.changes = append(a.changes, Change{Kind: ChangeQueue, ID: q.Name})
	return a.queues.Put([]byte(q.Name), v)
}

// ensureQueue creates queue name with the defaults, on its first use.
func (a *applier) ensureQueue(name string, at int64) error {
	q, err := a.queue(name)
	if err != nil || q != nil {
		return err
	}
	return a.putQueueRecord(&fsmpb.Queue{Name: name, CreatedAt: at, UpdatedAt: at})
}

func validQueue(name string) bool {
	return name != "" && len(name) <= maxQueueLen && strings.IndexByte(name, 0) < 0
}

func (a *applier) putQueue(c *fsmpb.PutQueue) (*QueueResult, error) {
	q := c.Queue
	if q == nil || !validQueue(q.Name) {
		return &QueueResult{Err: errorf(ErrInvalid, "queue name is empty or too long")}, nil
	}
	old, err := a.queue(q.Name)
	if err != nil {
		return nil, err
	}
	q.CreatedAt, q.UpdatedAt = c.At, c.At
	if old != nil {
		q.CreatedAt = old.CreatedAt
	}
	return &QueueResult{Queue: q}, a.putQueueRecord(q)
}

// pauseQueue sets only the paused flag of a queue, so that a settings
// change committed meanwhile is kept.
func (a *applier) pauseQueue(c *fsmpb.PauseQueue) (*QueueResult, error) {
	if !validQueue(c.Name) {
		return &QueueResult{Err: errorf(ErrInvalid, "queue name is empty or too long")}, nil
	}
	old, err := a.queue(c.Name)
	if err != nil {
		return nil, err
	}
	q := &fsmpb.Queue{Name: c.Name, CreatedAt: c.At}
	if old != nil {
		q = proto.Clone(old).(*fsmpb.Queue) // the cache's copy stays as it was
	}
	q.Paused, q.UpdatedAt = c.Paused, c.At
	return &QueueResult{Queue: q}, a.putQueueRecord(q)
}

func (a *applier) deleteQueue(c *fsmpb.DeleteQueue) (*QueueResult, error) {
	q, err := a.queue(c.Name)
	if err != nil {
		return nil, err
	}
	if q == nil {
		return &QueueResult{Err: errorf(ErrNotFound, "no queue %q", c.Name)}, nil
	}
	n := a.count(c.Name, fsmpb.State_SCHEDULED) + a.count(c.Name, fsmpb.State_RUNNING)
	if n > 0 {
		return &QueueResult{Queue: q, Err: errorf(ErrConflict, "queue %q still has %d scheduled or running tasks; cancel them first", c.Name, n)}, nil
	}
	a.queueCache[c.Name] = nil
	a.changes = append(a.changes, Change{Kind: ChangeQueue, ID: c.Name})
	return &QueueResult{Queue: q}, a.queues.Delete([]byte(c.Name))
}

// count is how many tasks of queue are in state, this batch included.
func (a *applier) count(queue string, state fsmpb.State) uint64 {
	c := queueState{queue, state}
	var n uint64
	if v := a.counts.Get(c.key()); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return uint64(int64(n) + a.countDeltas[c])
}

// redrive moves dead tasks back to scheduled, due at c.At.
func (a *applier) redrive(c *fsmpb.RedriveTasks) (*CountResult, error) {
	ids := c.Ids
	if len(ids) == 0 && validQueue(c.Queue) {
		prefix := statePrefix(fsmpb.State_DEAD, c.Queue)
		cur := a.byState.Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(ids) < int(c.Limit); k, _ = cur.Next() {
			ids = append(ids, string(k[len(prefix):]))
		}
	}
	return a.eachTask(ids, func(t *fsmpb.Task) bool {
		return t.State == fsmpb.State_DEAD && t.Queue == c.Queue
	}, func(t *fsmpb.Task) error {
		if err := a.expire.Delete(timeKey(t.RetainUntil, t.Id)); err != nil {
			return err
		}
		if err := a.setState(t, fsmpb.State_SCHEDULED); err != nil {
			return err
		}
		t.Attempts, t.DueAt, t.UpdatedAt, t.CompletedAt, t.RetainUntil = 0, c.At, c.At, 0, 0
		return a.addDue(t)
	})
}

func scheduled(t *fsmpb.Task) bool { return t.State == fsmpb.State_SCHEDULED }

func (a *applier) cancelMany(c *fsmpb.CancelTasks) (*CountResult, error) {
	return a.eachTask(c.Ids, scheduled, func(t *fsmpb.Task) error {
		if err := a.removeDue(t); err != nil {
			return err
		}
		return a.finish(t, fsmpb.State_CANCELLED, c.At, c.RetainUntil)
	})
}

func (a *applier) shift(c *fsmpb.ShiftTasks) (*CountResult, error) {
	return a.eachTask(c.Ids, scheduled, func(t *fsmpb.Task) error {
		if err := a.removeDue(t); err != nil {
			return err
		}
		t.ExecuteAt += c.By
		t.DueAt += c.By
		t.UpdatedAt = c.At
		return a.addDue(t)
	})
}

// eachTask applies change to every task of ids that exists and that want
// accepts, stores it, and counts them.
func (a *applier) eachTask(ids []string, want func(*fsmpb.Task) bool, change func(*fsmpb.Task) error) (*CountResult, error) {
	res := &CountResult{}
	for _, id := range ids {
		t, err := a.get(id)
		if err != nil {
			return nil, err
		}
		if t == nil || !want(t) {
			continue
		}
		if err := change(t); err != nil {
			return nil, err
		}
		if err := a.put(t); err != nil {
			return nil, err
		}
		res.Changed++
	}
	return res, nil
}

func (a *applier) purge(c *fsmpb.PurgeTasks) (*PurgeResult, error) {
	res := &PurgeResult{}
	cur := a.expire.Cursor()
	for k, _ := cur.First(); k != nil && res.Purged < int(c.Limit); k, _ = cur.First() {
		at, id := splitTimeKey(k)
		if at > c.Before {
			break
		}
		if err := cur.Delete(); err != nil {
			return nil, err
		}
		t, err := a.get(id)
		if err != nil {
			return nil, err
		}
		if t != nil {
			a.countDeltas[queueState{t.Queue, t.State}]--
			if err := a.byState.Delete(stateKey(t.State, t.Queue, t.Id)); err != nil {
				return nil, err
			}
			if err := a.tasks.Delete([]byte(id)); err != nil {
				return nil, err
			}
			if err := a.dropPayload(id); err != nil {
				return nil, err
			}
		}
		res.Purged++
	}
	return res, nil
}

// holdBack applies the overlap policy of t's schedule, if t is an
// occurrence whose previous occurrence has not ended: skipped, it ends
// cancelled; waiting, it stays scheduled, out of the due index, until the
// previous one ends (releaseNext). It reports whether t was held back.
func (a *applier) holdBack(t *fsmpb.Task, c *fsmpb.FireTasks, res *FireResult) (bool, error) {
	policy, prev, err := a.overlapping(t)
	if err != nil || policy == fsmpb.Overlap_OVERLAP_ALLOW {
		return false, err
	}
	if policy == fsmpb.Overlap_OVERLAP_SKIP {
		t.LastError = fmt.Sprintf("skipped: occurrence %q had not ended (overlap: skip)", prev)
		if err := a.finish(t, fsmpb.State_CANCELLED, c.At, c.RetainUntil); err != nil {
			return false, err
		}
		res.Skipped = append(res.Skipped, t)
	} else {
		t.Waiting, t.UpdatedAt = true, c.At
		res.Waiting = append(res.Waiting, t)
	}
	return true, a.put(t)
}
