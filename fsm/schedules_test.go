package fsm

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

func newSchedule(id string, nextAt int64) *fsmpb.Schedule {
	return &fsmpb.Schedule{
		Id: id, Every: 10, TimeZone: "UTC", NextAt: nextAt, Fingerprint: []byte("fp-" + id),
		Template: &fsmpb.Task{Queue: "default", MaxAttempts: 1, Target: &fsmpb.Target{Url: "http://127.0.0.1:1/"}},
	}
}

func putSchedule(s *fsmpb.Schedule, create bool, at int64) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_PutSchedule{PutSchedule: &fsmpb.PutSchedule{Schedule: s, Create: create, At: at}}}
}

func deleteSchedule(id string, at int64) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_DeleteSchedule{DeleteSchedule: &fsmpb.DeleteSchedule{Id: id, At: at}}}
}

// occurrence is the task of schedule id's occurrence at `at` (the id
// format does not matter to the state machine, only its "@").
func occurrence(id string, at int64) *fsmpb.Task {
	t := newTask(fmt.Sprintf("%s@%06d", id, at), at)
	t.MaxAttempts = 1
	return t
}

func occurrences(s *fsmpb.Schedule, from, next int64, tasks ...*fsmpb.Task) *fsmpb.Command {
	return &fsmpb.Command{Kind: &fsmpb.Command_CreateOccurrences{CreateOccurrences: &fsmpb.CreateOccurrences{
		ScheduleId: s.Id, Version: s.Version, From: from, NextAt: next, Tasks: tasks, At: from}}}
}

func TestScheduleCreateIsIdempotentAndEditsNeedTheVersion(t *testing.T) {
	h := newHarness(t)
	res := h.apply(putSchedule(newSchedule("s", 100), true, 1))[0].(*ScheduleResult)
	if res.Err != nil || res.Existed || res.Schedule.Version != 1 || res.Schedule.CreatedAt != 1 {
		t.Fatalf("create: %+v", res)
	}
	if again := h.apply(putSchedule(newSchedule("s", 100), true, 2))[0].(*ScheduleResult); again.Err != nil || !again.Existed {
		t.Fatalf("same create again: %+v", again)
	}
	other := newSchedule("s", 100)
	other.Fingerprint = []byte("another body")
	if res := h.apply(putSchedule(other, true, 3))[0].(*ScheduleResult); !errors.Is(res.Err, ErrConflict) {
		t.Fatalf("create with another body: %v, want a conflict", res.Err)
	}
	edit := &fsmpb.Command{Kind: &fsmpb.Command_PutSchedule{PutSchedule: &fsmpb.PutSchedule{Schedule: newSchedule("s", 200), At: 4, IfVersion: 99}}}
	if res := h.apply(edit)[0].(*ScheduleResult); !errors.Is(res.Err, ErrVersionMismatch) {
		t.Fatalf("edit at the wrong version: %v", res.Err)
	}
	edit.GetPutSchedule().IfVersion = 1
	if res := h.apply(edit)[0].(*ScheduleResult); res.Err != nil || res.Schedule.NextAt != 200 || res.Schedule.CreatedAt != 1 || res.Schedule.Version != 5 {
		t.Fatalf("edit: %+v", res)
	}
	if res := h.apply(putSchedule(newSchedule("none", 1), false, 6))[0].(*ScheduleResult); !errors.Is(res.Err, ErrNotFound) {
		t.Fatalf("edit of no schedule: %v", res.Err)
	}
	if got, err := h.f.DueSchedules(200, nil, 10); err != nil || len(got) != 1 || got[0].Id != "s" {
		t.Fatalf("due schedules at 200: %v %v", got, err)
	}
	if got, _ := h.f.DueSchedules(199, nil, 10); len(got) != 0 {
		t.Fatalf("due schedules at 199: %v", got)
	}
	h.checkRecords()
}

// TestDueSchedulesPages: the due list read a page at a time, each page
// after the last schedule of the one before, covers every schedule due
// once, in due order.
func TestDueSchedulesPages(t *testing.T) {
	h := newHarness(t)
	for i, next := range []int64{50, 10, 30, 30, 20, 90} {
		h.apply(putSchedule(newSchedule(fmt.Sprintf("s%d", i), next), true, 1))
	}
	var got []string
	var after *fsmpb.Schedule
	for range 10 {
		page, err := h.f.DueSchedules(60, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page {
			got = append(got, s.Id)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1]
	}
	if want := "s1 s4 s2 s3 s0"; strings.Join(got, " ") != want {
		t.Fatalf("due by 60, two at a time: %v, want %s", got, want)
	}
}

// TestOccurrencesAreCreatedOnceFromTheCursor: a proposal made from a
// cursor that has moved, or for a version that an edit replaced, changes
// nothing (a leader that lost its leadership, or raced an edit).
func TestOccurrencesAreCreatedOnceFromTheCursor(t *testing.T) {
	h := newHarness(t)
	s := h.apply(putSchedule(newSchedule("s", 100), true, 1))[0].(*ScheduleResult).Schedule
	res := h.apply(occurrences(s, 100, 120, occurrence("s", 100), occurrence("s", 110)))[0].(*ScheduleResult)
	if res.Err != nil || res.Created != 2 || res.Schedule.NextAt != 120 || res.Schedule.Occurrences != 2 || res.Schedule.LastAt != 110 {
		t.Fatalf("create occurrences: %+v", res)
	}
	if again := h.apply(occurrences(s, 100, 120, occurrence("s", 100)))[0].(*ScheduleResult); !errors.Is(again.Err, ErrConflict) {
		t.Fatalf("the same proposal again: %v, want a conflict", again.Err)
	}
	if wrong := h.apply(occurrences(s, 120, 130, occurrence("t", 120)))[0].(*ScheduleResult); !errors.Is(wrong.Err, ErrInvalid) {
		t.Fatalf("another schedule's occurrence: %v", wrong.Err)
	}
	if got := h.get("s@000100"); got.State != fsmpb.State_SCHEDULED {
		t.Fatalf("occurrence: %v", got.State)
	}
	list, err := h.f.Occurrences("s", 10)
	if err != nil || len(list) != 2 || list[0].Id != "s@000110" || list[1].Id != "s@000100" {
		t.Fatalf("occurrences, latest first: %v %v", list, err)
	}
	h.checkRecords()
}

// TestEditPauseAndDeleteDropOccurrencesNotStarted: the occurrences
// created ahead under the old rule go, and their ids are free for the new
// rule's; one that started stays.
func TestEditPauseAndDeleteDropOccurrencesNotStarted(t *testing.T) {
	h := newHarness(t)
	rec := &recorder{}
	h.f.SetNotifier(rec)
	s := h.apply(putSchedule(newSchedule("s", 40), true, 1))[0].(*ScheduleResult).Schedule
	h.apply(occurrences(s, 40, 70, occurrence("s", 40), occurrence("s", 50), occurrence("s", 60)))
	if got := h.apply(fire(1, &fsmpb.FireItem{Id: "s@000040", DueAt: 40}))[0].(*FireResult); len(got.Accepted) != 1 {
		t.Fatalf("fire: %+v", got)
	}
	paused := newSchedule("s", 0)
	paused.Paused = true
	res := h.apply(putSchedule(paused, false, 45))[0].(*ScheduleResult)
	if res.Err != nil || res.Dropped != 2 || res.Schedule.Occurrences != 3 {
		t.Fatalf("pause: %+v", res)
	}
	if _, err := h.f.Get("s@000050"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("occurrence not started after the pause: %v", err)
	}
	if got := h.get("s@000040"); got.State != fsmpb.State_RUNNING {
		t.Fatalf("the started occurrence: %v", got.State)
	}
	if due, _ := h.f.DueSchedules(1<<62, nil, 10); len(due) != 0 {
		t.Fatalf("a paused schedule is due: %v", due)
	}
	if len(h.due()) != 0 {
		t.Fatalf("due index after the pause: %v", h.due())
	}
	notDue := 0
	rec.mu.Lock()
	for _, c := range rec.changes {
		if c.Kind == ChangeNotDue && strings.HasPrefix(c.ID, "s@") {
			notDue++
		}
	}
	rec.mu.Unlock()
	if notDue != 2 {
		t.Fatalf("the scheduler heard of %d dropped occurrences, want 2", notDue)
	}
	// Resumed, the rule creates the same ids again.
	s = h.apply(putSchedule(newSchedule("s", 50), false, 46))[0].(*ScheduleResult).Schedule
	if res := h.apply(occurrences(s, 50, 60, occurrence("s", 50)))[0].(*ScheduleResult); res.Created != 1 {
		t.Fatalf("occurrence again after resuming: %+v", res)
	}
	h.checkRecords()
	res = h.apply(deleteSchedule("s", 47))[0].(*ScheduleResult)
	if res.Err != nil || res.Dropped != 1 {
		t.Fatalf("delete: %+v", res)
	}
	if _, err := h.f.Schedule("s"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("schedule after delete: %v", err)
	}
	if res := h.apply(deleteSchedule("s", 48))[0].(*ScheduleResult); !errors.Is(res.Err, ErrNotFound) {
		t.Fatalf("delete again: %v", res.Err)
	}
	h.checkRecords()
}

// TestOverlapSkipAndWait: an occurrence due while the previous one runs
// is skipped (ends cancelled) or waits out of the due index until the
// previous one ends, then is due at once.
func TestOverlapSkipAndWait(t *testing.T) {
	for _, policy := range []fsmpb.Overlap{fsmpb.Overlap_OVERLAP_ALLOW, fsmpb.Overlap_OVERLAP_SKIP, fsmpb.Overlap_OVERLAP_WAIT} {
		t.Run(policy.String(), func(t *testing.T) {
			h := newHarness(t)
			s := newSchedule("s", 40)
			s.Overlap = policy
			s = h.apply(putSchedule(s, true, 1))[0].(*ScheduleResult).Schedule
			h.apply(occurrences(s, 40, 60, occurrence("s", 40), occurrence("s", 50)))
			h.apply(fire(1, &fsmpb.FireItem{Id: "s@000040", DueAt: 40}))
			res := h.apply(fire(1, &fsmpb.FireItem{Id: "s@000050", DueAt: 50}))[0].(*FireResult)
			second := h.get("s@000050")
			switch policy {
			case fsmpb.Overlap_OVERLAP_ALLOW:
				if len(res.Accepted) != 1 || second.State != fsmpb.State_RUNNING {
					t.Fatalf("allow: %+v, %v", res, second.State)
				}
				return
			case fsmpb.Overlap_OVERLAP_SKIP:
				if len(res.Skipped) != 1 || second.State != fsmpb.State_CANCELLED || !strings.Contains(second.LastError, "s@000040") {
					t.Fatalf("skip: %+v, %v %q", res, second.State, second.LastError)
				}
				h.checkRecords()
				return
			}
			if len(res.Waiting) != 1 || second.State != fsmpb.State_SCHEDULED || !second.Waiting || len(h.due()) != 0 {
				t.Fatalf("wait: %+v, %v waiting %v, due %v", res, second.State, second.Waiting, h.due())
			}
			h.checkRecords()
			h.apply(outcome(&fsmpb.Outcome{Id: "s@000040", Attempt: 1, Kind: fsmpb.Outcome_SUCCEEDED, RetainUntil: 1000}))
			second = h.get("s@000050")
			if second.Waiting || second.DueAt != 60 {
				t.Fatalf("after the previous one ended: waiting %v, due at %d", second.Waiting, second.DueAt)
			}
			if due := h.due(); len(due) != 1 || due[0].ID != "s@000050" {
				t.Fatalf("due index: %v", due)
			}
			if res := h.apply(fire(1, &fsmpb.FireItem{Id: "s@000050", DueAt: 60}))[0].(*FireResult); len(res.Accepted) != 1 {
				t.Fatalf("fire after release: %+v", res)
			}
			h.checkRecords()
		})
	}
}

// TestKeepTasksKeepsSchedulesOfItsSlots: splitting a state file keeps a
// schedule where keep keeps its id.
func TestKeepTasksKeepsSchedulesOfItsSlots(t *testing.T) {
	h := newHarness(t)
	h.apply(putSchedule(newSchedule("a", 100), true, 1), putSchedule(newSchedule("b", 100), true, 1))
	h.f.Close()
	if err := KeepTasks(h.path, func(id string) bool { return strings.HasPrefix(id, "a") }); err != nil {
		t.Fatal(err)
	}
	f, err := Open(h.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Schedule("a"); err != nil {
		t.Fatalf("kept schedule: %v", err)
	}
	if _, err := f.Schedule("b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("dropped schedule: %v", err)
	}
	if due, _ := f.DueSchedules(1<<62, nil, 10); len(due) != 1 {
		t.Fatalf("schedule_due after the split: %v", due)
	}
}

// TestRescheduledWaitingOccurrenceIsDue: a client's change of a waiting
// occurrence's time puts it back in the due index.
func TestRescheduledWaitingOccurrenceIsDue(t *testing.T) {
	h := newHarness(t)
	s := newSchedule("s", 40)
	s.Overlap = fsmpb.Overlap_OVERLAP_WAIT
	s = h.apply(putSchedule(s, true, 1))[0].(*ScheduleResult).Schedule
	h.apply(occurrences(s, 40, 60, occurrence("s", 40), occurrence("s", 50)))
	h.apply(fire(1, &fsmpb.FireItem{Id: "s@000040", DueAt: 40}), fire(1, &fsmpb.FireItem{Id: "s@000050", DueAt: 50}))
	at := int64(70)
	h.apply(&fsmpb.Command{Kind: &fsmpb.Command_Update{Update: &fsmpb.UpdateTask{Id: "s@000050", At: 55, ExecuteAt: &at}}})
	if got := h.get("s@000050"); got.Waiting || len(h.due()) != 1 {
		t.Fatalf("rescheduled waiting occurrence: waiting %v, due %v", got.Waiting, h.due())
	}
	h.checkRecords()
}
