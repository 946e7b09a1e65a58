package fsm

import (
	"bytes"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// ScheduleResult answers a schedule command: the schedule after it (or,
// for a delete, before it), whether a create found it existing already,
// how many occurrences a CreateOccurrences created, or a business error
// (ErrNotFound, ErrConflict, ErrVersionMismatch).
type ScheduleResult struct {
	Schedule *fsmpb.Schedule
	Existed  bool
	Created  int
	// Dropped counts the occurrences created ahead and not started that
	// an edit, pause or delete removed.
	Dropped int
	Err     error
}

// OccurrencePrefix is the start of the ids of schedule id's occurrences
// (recurrence.OccurrenceID makes them).
func OccurrencePrefix(scheduleID string) string { return scheduleID + "@" }

// scheduleOf is the id of the schedule whose occurrence task id is, or
// "" when it is no occurrence.
func scheduleOf(id string) string {
	if i := strings.IndexByte(id, '@'); i > 0 {
		return id[:i]
	}
	return ""
}

func (a *applier) getSchedule(id string) (*fsmpb.Schedule, error) {
	if !validID(id) {
		return nil, nil
	}
	v := a.schedules.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	s := new(fsmpb.Schedule)
	if err := proto.Unmarshal(v, s); err != nil {
		return nil, fmt.Errorf("decode schedule %q: %w", id, err)
	}
	return s, nil
}

// scheduleDueKey is s's entry in schedule_due, or nil while it creates no
// occurrences (paused, or none left).
func scheduleDueKey(s *fsmpb.Schedule) []byte {
	if s == nil || s.Paused || s.NextAt == 0 {
		return nil
	}
	return timeKey(s.NextAt, s.Id)
}

// storeSchedule writes s (oldDue is the schedule_due key of what was
// stored before, or nil), keeping schedule_due in step, and tells the
// leader.
func (a *applier) storeSchedule(oldDue []byte, s *fsmpb.Schedule) error {
	if k := oldDue; k != nil {
		if err := a.scheduleDue.Delete(k); err != nil {
			return err
		}
	}
	if k := scheduleDueKey(s); k != nil {
		if err := a.scheduleDue.Put(k, nil); err != nil {
			return err
		}
	}
	a.changes = append(a.changes, Change{Kind: ChangeSchedule, ID: s.Id, At: s.NextAt})
	v, err := proto.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode schedule %q: %w", s.Id, err)
	}
	return a.schedules.Put([]byte(s.Id), v)
}

func (a *applier) putSchedule(c *fsmpb.PutSchedule) (*ScheduleResult, error) {
	s := c.Schedule
	if s == nil || !validID(s.Id) || s.Template == nil || !validQueue(s.Template.Queue) {
		return &ScheduleResult{Err: errorf(ErrInvalid, "schedule without an id or a template queue")}, nil
	}
	old, err := a.getSchedule(s.Id)
	if err != nil {
		return nil, err
	}
	res := &ScheduleResult{}
	switch {
	case c.Create && old != nil:
		if bytes.Equal(old.Fingerprint, s.Fingerprint) {
			return &ScheduleResult{Schedule: old, Existed: true}, nil
		}
		return &ScheduleResult{Schedule: old, Err: errorf(ErrConflict, "schedule %q already exists with a different body", s.Id)}, nil
	case c.Create:
		s.CreatedAt = c.At
	case old == nil:
		return &ScheduleResult{Err: errorf(ErrNotFound, "no schedule %q", s.Id)}, nil
	case c.IfVersion != 0 && c.IfVersion != old.Version:
		return &ScheduleResult{Schedule: old, Err: errorf(ErrVersionMismatch, "schedule %q is at version %d, not %d (If-Match)", s.Id, old.Version, c.IfVersion)}, nil
	default:
		s.CreatedAt, s.Fingerprint = old.CreatedAt, old.Fingerprint
		s.Occurrences, s.Missed, s.LastAt = old.Occurrences, old.Missed, old.LastAt
		if res.Dropped, err = a.dropUnstarted(s.Id); err != nil {
			return nil, err
		}
	}
	s.UpdatedAt, s.Version = c.At, a.index
	res.Schedule = s
	return res, a.storeSchedule(scheduleDueKey(old), s)
}

func (a *applier) deleteSchedule(c *fsmpb.DeleteSchedule) (*ScheduleResult, error) {
	old, err := a.getSchedule(c.Id)
	if err != nil || old == nil {
		return &ScheduleResult{Err: errorf(ErrNotFound, "no schedule %q", c.Id)}, err
	}
	dropped, err := a.dropUnstarted(c.Id)
	if err != nil {
		return nil, err
	}
	if k := scheduleDueKey(old); k != nil {
		if err := a.scheduleDue.Delete(k); err != nil {
			return nil, err
		}
	}
	a.changes = append(a.changes, Change{Kind: ChangeSchedule, ID: c.Id})
	return &ScheduleResult{Schedule: old, Dropped: dropped}, a.schedules.Delete([]byte(c.Id))
}

// dropUnstarted deletes the occurrences of schedule id that never
// started (scheduled, or waiting, at their first attempt): created ahead
// by a rule that no longer holds. Their ids are free again.
func (a *applier) dropUnstarted(id string) (int, error) {
	prefix := []byte(OccurrencePrefix(id))
	var drop []*fsmpb.Task
	c := a.tasks.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		t := new(fsmpb.Task)
		if err := decodeTask(v, t); err != nil {
			return 0, fmt.Errorf("decode task %q: %w", k, err)
		}
		if t.State == fsmpb.State_SCHEDULED && t.Attempts == 0 {
			drop = append(drop, t)
		}
	}
	for _, t := range drop {
		if !t.Waiting {
			a.changes = append(a.changes, Change{Kind: ChangeNotDue, ID: t.Id, At: t.DueAt})
		}
		if err := a.drop(t); err != nil {
			return 0, err
		}
	}
	return len(drop), nil
}

func (a *applier) createOccurrences(c *fsmpb.CreateOccurrences) (*ScheduleResult, error) {
	s, err := a.getSchedule(c.ScheduleId)
	if err != nil || s == nil {
		return &ScheduleResult{Err: errorf(ErrNotFound, "no schedule %q", c.ScheduleId)}, err
	}
	if s.Version != c.Version || s.NextAt != c.From || s.Paused {
		return &ScheduleResult{Schedule: s, Err: errorf(ErrConflict, "schedule %q changed since its occurrences were computed", c.ScheduleId)}, nil
	}
	for _, t := range c.Tasks {
		if scheduleOf(t.Id) != s.Id {
			return &ScheduleResult{Schedule: s, Err: errorf(ErrInvalid, "task %q is no occurrence of schedule %q", t.Id, s.Id)}, nil
		}
	}
	created, err := a.create(&fsmpb.CreateTasks{Tasks: c.Tasks})
	if err != nil {
		return nil, err
	}
	res := &ScheduleResult{}
	for _, item := range created.Items {
		if item.Err == nil && !item.Existed {
			res.Created++
			s.LastAt = max(s.LastAt, item.Task.ExecuteAt)
		}
	}
	oldDue := scheduleDueKey(s)
	s.NextAt = c.NextAt
	s.Occurrences += uint64(res.Created)
	s.Missed += c.Missed
	res.Schedule = s
	return res, a.storeSchedule(oldDue, s)
}

// overlapping says what occurrence t, due now, does about its schedule's
// overlap policy: run (the policy allows, or the previous occurrence has
// ended), or skip or wait behind the previous one, which it names.
func (a *applier) overlapping(t *fsmpb.Task) (fsmpb.Overlap, string, error) {
	id := scheduleOf(t.Id)
	if id == "" {
		return fsmpb.Overlap_OVERLAP_ALLOW, "", nil
	}
	s, err := a.getSchedule(id)
	if err != nil || s == nil || s.Overlap == fsmpb.Overlap_OVERLAP_ALLOW {
		return fsmpb.Overlap_OVERLAP_ALLOW, "", err
	}
	prev, err := a.neighbour(t.Id, (*bolt.Cursor).Prev)
	if err != nil || prev == nil || (prev.State != fsmpb.State_SCHEDULED && prev.State != fsmpb.State_RUNNING) {
		return fsmpb.Overlap_OVERLAP_ALLOW, "", err
	}
	return s.Overlap, prev.Id, nil
}

// neighbour is the occurrence of the same schedule next to occurrence id
// (step: Prev or Next), or nil.
func (a *applier) neighbour(id string, step func(*bolt.Cursor) ([]byte, []byte)) (*fsmpb.Task, error) {
	prefix := []byte(OccurrencePrefix(scheduleOf(id)))
	c := a.tasks.Cursor()
	if k, _ := c.Seek([]byte(id)); !bytes.Equal(k, []byte(id)) {
		return nil, nil
	}
	k, v := step(c)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	t := new(fsmpb.Task)
	if err := decodeTask(v, t); err != nil {
		return nil, fmt.Errorf("decode task %q: %w", k, err)
	}
	return t, nil
}

// releaseNext lets the occurrence after t, which just ended, run if it
// waits for t: due at `at`.
func (a *applier) releaseNext(t *fsmpb.Task, at int64) error {
	if scheduleOf(t.Id) == "" {
		return nil
	}
	next, err := a.neighbour(t.Id, (*bolt.Cursor).Next)
	if err != nil || next == nil || !next.Waiting || next.State != fsmpb.State_SCHEDULED {
		return err
	}
	next.DueAt, next.UpdatedAt = at, at
	if err := a.addDue(next); err != nil {
		return err
	}
	return a.put(next)
}

// Schedule returns schedule id, or ErrNotFound.
func (f *FSM) Schedule(id string) (*fsmpb.Schedule, error) {
	var s *fsmpb.Schedule
	err := f.view(func(tx *bolt.Tx) error {
		var err error
		s, err = newApplier(tx).getSchedule(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errorf(ErrNotFound, "no schedule %q", id)
	}
	return s, nil
}

// SchedulesPage returns up to limit schedules by id, after the id after
// (empty: from the first), and the id to go on from (empty: no more).
func (f *FSM) SchedulesPage(after string, limit int) ([]*fsmpb.Schedule, string, error) {
	var out []*fsmpb.Schedule
	var next string
	err := f.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSchedules).Cursor()
		k, v := c.Seek([]byte(after))
		if after != "" && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil; k, v = c.Next() {
			if len(out) == limit {
				next = out[len(out)-1].Id
				return nil
			}
			s := new(fsmpb.Schedule)
			if err := proto.Unmarshal(v, s); err != nil {
				return fmt.Errorf("decode schedule %q: %w", k, err)
			}
			out = append(out, s)
		}
		return nil
	})
	return out, next, err
}

// Occurrences returns up to limit of schedule id's occurrences that are
// still stored (finished ones go when their retention ends), the latest
// first.
func (f *FSM) Occurrences(id string, limit int) ([]*fsmpb.Task, error) {
	var out []*fsmpb.Task
	err := f.view(func(tx *bolt.Tx) error {
		prefix := []byte(OccurrencePrefix(id))
		end := append(bytes.Clone(prefix[:len(prefix)-1]), '@'+1) // just after every key of prefix
		c, payloads := tx.Bucket(bucketTasks).Cursor(), tx.Bucket(bucketPayloads)
		var k, v []byte
		if k, _ = c.Seek(end); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Prev() {
			t := new(fsmpb.Task)
			if err := decodeTask(v, t); err != nil {
				return fmt.Errorf("decode task %q: %w", k, err)
			}
			attachPayload(payloads, t)
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// DueSchedules returns up to limit schedules, not paused, whose next
// occurrence to create is at or before until, the earliest first: after
// schedule after (the last of the previous page, as it was read), or from
// the first if after is nil.
func (f *FSM) DueSchedules(until int64, after *fsmpb.Schedule, limit int) ([]*fsmpb.Schedule, error) {
	var out []*fsmpb.Schedule
	err := f.view(func(tx *bolt.Tx) error {
		a := newApplier(tx)
		c := a.scheduleDue.Cursor()
		for k, _ := seekAfter(c, scheduleDueKey(after)); k != nil && len(out) < limit; k, _ = c.Next() {
			at, id := splitTimeKey(k)
			if at > until {
				break
			}
			s, err := a.getSchedule(id)
			if err != nil {
				return err
			}
			if s != nil {
				out = append(out, s)
			}
		}
		return nil
	})
	return out, err
}

// checkSchedules checks that every schedule decodes and that schedule_due
// lists exactly the schedules with occurrences to create.
func checkSchedules(tx *bolt.Tx) error {
	schedules, due := tx.Bucket(bucketSchedules), tx.Bucket(bucketScheduleDue)
	if schedules == nil {
		return nil // a state file from before schedules
	}
	want := 0
	err := schedules.ForEach(func(k, v []byte) error {
		s := new(fsmpb.Schedule)
		if err := proto.Unmarshal(v, s); err != nil {
			return fmt.Errorf("schedule %q does not decode: %w", k, err)
		}
		if s.Id != string(k) {
			return fmt.Errorf("schedule stored under %q says its id is %q", k, s.Id)
		}
		if key := scheduleDueKey(s); key != nil {
			want++
			if due.Get(key) == nil {
				return fmt.Errorf("schedule %q is missing from schedule_due", k)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if got := due.Stats().KeyN; got != want {
		return fmt.Errorf("schedule_due lists %d schedules, %d have occurrences to create", got, want)
	}
	return nil
}
