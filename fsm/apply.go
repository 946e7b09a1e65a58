package fsm

import (
	"bytes"
	"fmt"
	"strings"

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

// FireResult lists the tasks a fire command moved to running, as stored.
type FireResult struct{ Accepted []*fsmpb.Task }

// OutcomeResult counts the outcomes that applied; the others named an
// attempt that is no longer current and were ignored.
type OutcomeResult struct{ Applied int }

// PurgeResult counts the finished tasks deleted.
type PurgeResult struct{ Purged int }

// applier applies commands inside one write transaction.
type applier struct {
	tasks, due, running, expire, byState *bolt.Bucket
	index, term                          uint64 // of the entry being applied
	changes                              []Change
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
		running: tx.Bucket(bucketRunning),
		expire:  tx.Bucket(bucketExpire),
		byState: tx.Bucket(bucketByState),
	}
	if tx.Writable() {
		for _, b := range []*bolt.Bucket{a.tasks, a.running, a.expire, a.byState} { // not due: see fillPercent
			b.FillPercent = fillPercent
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
	default:
		return nil, fmt.Errorf("unknown command %T", k)
	}
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
	v := a.tasks.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	t := new(fsmpb.Task)
	if err := proto.Unmarshal(v, t); err != nil {
		return nil, fmt.Errorf("decode task %q: %w", id, err)
	}
	return t, nil
}

func (a *applier) put(t *fsmpb.Task) error {
	t.Version = a.index
	v, err := proto.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode task %q: %w", t.Id, err)
	}
	return a.tasks.Put([]byte(t.Id), v)
}

// setState moves t to state, keeping by_state in step.
func (a *applier) setState(t *fsmpb.Task, state fsmpb.State) error {
	if t.State != fsmpb.State_STATE_UNSPECIFIED {
		if err := a.byState.Delete(stateKey(t.State, t.Queue, t.Id)); err != nil {
			return err
		}
	}
	t.State = state
	return a.byState.Put(stateKey(state, t.Queue, t.Id), nil)
}

func (a *applier) addDue(t *fsmpb.Task) error {
	a.changes = append(a.changes, Change{ID: t.Id, DueAt: t.DueAt, Due: true})
	return a.due.Put(timeKey(t.DueAt, t.Id), nil)
}

func (a *applier) removeDue(t *fsmpb.Task) error {
	a.changes = append(a.changes, Change{ID: t.Id, DueAt: t.DueAt})
	return a.due.Delete(timeKey(t.DueAt, t.Id))
}

// finish moves t to a final state and queues it for purging.
func (a *applier) finish(t *fsmpb.Task, state fsmpb.State, at, retainUntil int64) error {
	t.CompletedAt, t.UpdatedAt, t.RetainUntil = at, at, retainUntil
	if err := a.setState(t, state); err != nil {
		return err
	}
	return a.expire.Put(timeKey(retainUntil, t.Id), nil)
}

func (a *applier) create(c *fsmpb.CreateTasks) (*CreateResult, error) {
	res := &CreateResult{Items: make([]CreateItem, len(c.Tasks))}
	for i, t := range c.Tasks {
		if !validID(t.Id) || len(t.Queue) > maxQueueLen || strings.IndexByte(t.Queue, 0) >= 0 {
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
	if c.ExecuteAt != nil {
		if err := a.removeDue(t); err != nil {
			return nil, err
		}
		t.ExecuteAt, t.DueAt = *c.ExecuteAt, *c.ExecuteAt
		if err := a.addDue(t); err != nil {
			return nil, err
		}
	}
	if c.Payload != nil {
		t.Payload = c.Payload
	}
	if c.Target != nil {
		t.Target = c.Target
	}
	t.UpdatedAt = c.At
	return &TaskResult{Task: t}, a.put(t)
}

// fire moves due tasks to running: commit before send. A task is accepted
// if it is still scheduled at the due time the scheduler saw (not cancelled
// or rescheduled since), or running under an older term, whose leader is
// gone without recording the outcome, or (reclaim) running under this term
// after a Fire whose outcome this leader never learned, or under a later
// term, which only a backup restored from another cluster can hold.
func (a *applier) fire(c *fsmpb.FireTasks) (*FireResult, error) {
	res := &FireResult{}
	for _, item := range c.Items {
		t, err := a.get(item.Id)
		if err != nil {
			return nil, err
		}
		switch {
		case t == nil:
			continue
		case t.State == fsmpb.State_SCHEDULED && t.DueAt == item.DueAt:
			if err := a.due.Delete(timeKey(t.DueAt, t.Id)); err != nil {
				return nil, err
			}
			if err := a.setState(t, fsmpb.State_RUNNING); err != nil {
				return nil, err
			}
			if err := a.running.Put([]byte(t.Id), nil); err != nil {
				return nil, err
			}
		case t.State == fsmpb.State_RUNNING && (t.FireTerm < c.Term || item.Reclaim):
		default:
			continue
		}
		t.Attempts++
		t.FiredAt, t.UpdatedAt = c.At, c.At
		t.FireTerm, t.FireIndex = c.Term, a.index
		if err := a.put(t); err != nil {
			return nil, err
		}
		res.Accepted = append(res.Accepted, t)
	}
	return res, nil
}

func (a *applier) outcomes(c *fsmpb.RecordOutcomes) (*OutcomeResult, error) {
	res := &OutcomeResult{}
	for _, o := range c.Outcomes {
		t, err := a.get(o.Id)
		if err != nil {
			return nil, err
		}
		if t == nil || t.State != fsmpb.State_RUNNING || t.Attempts != o.Attempt {
			continue // a stale report: the attempt is no longer current
		}
		if _, known := fsmpb.Outcome_Kind_name[int32(o.Kind)]; !known || o.Kind == fsmpb.Outcome_KIND_UNSPECIFIED {
			continue // refused alike on every node; the task stays running
		}
		if err := a.running.Delete([]byte(t.Id)); err != nil {
			return nil, err
		}
		t.LastError = o.Error
		switch o.Kind {
		case fsmpb.Outcome_SUCCEEDED:
			err = a.finish(t, fsmpb.State_SUCCEEDED, c.At, o.RetainUntil)
		case fsmpb.Outcome_DEAD:
			err = a.finish(t, fsmpb.State_DEAD, c.At, o.RetainUntil)
		case fsmpb.Outcome_RETRY:
			t.DueAt, t.UpdatedAt = o.RetryAt, c.At
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
			if err := a.byState.Delete(stateKey(t.State, t.Queue, t.Id)); err != nil {
				return nil, err
			}
			if err := a.tasks.Delete([]byte(id)); err != nil {
				return nil, err
			}
		}
		res.Purged++
	}
	return res, nil
}
