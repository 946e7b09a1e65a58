package service

import (
	"context"
	"crypto/sha256"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/schedules"
)

// CreateSchedule creates schedule s (its rule checked by the caller),
// idempotent by id and body: it returns the stored schedule and whether
// it existed already.
func (s *Service) CreateSchedule(ctx context.Context, sch *fsmpb.Schedule) (*fsmpb.Schedule, bool, error) {
	now := s.cfg.Now()
	sch.Fingerprint = ScheduleFingerprint(sch)
	sch.CreatedAt = now.UnixNano()
	r, err := schedules.Recurrence(sch, now)
	if err != nil {
		return nil, false, ruleError{err}
	}
	sch.NextAt = schedules.FirstRun(r, now)
	res, err := s.scheduleResult(ctx, &fsmpb.PutSchedule{Schedule: sch, Create: true, At: now.UnixNano()})
	if err != nil {
		return nil, false, err
	}
	return res.Schedule, res.Existed, nil
}

// ReplaceSchedule replaces every setting of schedule sch.Id (with
// ifVersion not 0, only if it is at that version): its next occurrence
// is the new rule's first from now, and the occurrences created ahead
// that have not started are dropped.
func (s *Service) ReplaceSchedule(ctx context.Context, sch *fsmpb.Schedule, ifVersion uint64) (*fsmpb.Schedule, error) {
	now := s.cfg.Now()
	old, err := s.store.Schedule(sch.Id)
	if err != nil {
		return nil, err
	}
	sch.CreatedAt = old.CreatedAt // anchors a fixed interval
	sch.NextAt = 0
	if !sch.Paused { // a paused one has no next run (it may have ended)
		r, err := schedules.Recurrence(sch, now)
		if err != nil {
			return nil, ruleError{err}
		}
		sch.NextAt = schedules.FirstRun(r, now)
	}
	res, err := s.scheduleResult(ctx, &fsmpb.PutSchedule{Schedule: sch, IfVersion: ifVersion, At: now.UnixNano()})
	if err != nil {
		return nil, err
	}
	return res.Schedule, nil
}

// PauseSchedule pauses or resumes a schedule and changes nothing else.
// Paused, it creates no occurrences (those created ahead are dropped);
// resumed, it runs from its next run after now: what it missed while
// paused does not run.
func (s *Service) PauseSchedule(ctx context.Context, id string, paused bool) (*fsmpb.Schedule, error) {
	for {
		old, err := s.store.Schedule(id)
		if err != nil {
			return nil, err
		}
		if old.Paused == paused {
			return old, nil
		}
		sch := proto.Clone(old).(*fsmpb.Schedule)
		sch.Paused = paused
		got, err := s.ReplaceSchedule(ctx, sch, old.Version)
		if err == nil || !errors.Is(err, fsm.ErrVersionMismatch) {
			return got, err
		}
		// Edited meanwhile: pause the new version.
	}
}

// DeleteSchedule deletes a schedule and its occurrences that have not
// started; those that have run on, and finished ones stay as tasks.
func (s *Service) DeleteSchedule(ctx context.Context, id string) (*fsmpb.Schedule, error) {
	res, err := propose[*fsm.ScheduleResult](ctx, s, &fsmpb.Command{Kind: &fsmpb.Command_DeleteSchedule{
		DeleteSchedule: &fsmpb.DeleteSchedule{Id: id, At: s.cfg.Now().UnixNano()}}})
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Schedule, nil
}

// CreateOccurrences proposes occurrences a leader planned
// (schedules.Plan).
func (s *Service) CreateOccurrences(ctx context.Context, cmd *fsmpb.CreateOccurrences) (*fsm.ScheduleResult, error) {
	return propose[*fsm.ScheduleResult](ctx, s, &fsmpb.Command{Kind: &fsmpb.Command_CreateOccurrences{CreateOccurrences: cmd}})
}

func (s *Service) scheduleResult(ctx context.Context, put *fsmpb.PutSchedule) (*fsm.ScheduleResult, error) {
	res, err := propose[*fsm.ScheduleResult](ctx, s, &fsmpb.Command{Kind: &fsmpb.Command_PutSchedule{PutSchedule: put}})
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res, nil
}

// ruleError is a schedule's rule that does not hold (a
// recurrence.FieldError, naming the field): fsm.ErrInvalid, said as the
// field's error alone.
type ruleError struct{ err error }

func (e ruleError) Error() string   { return e.err.Error() }
func (e ruleError) Unwrap() []error { return []error{fsm.ErrInvalid, e.err} }

// ScheduleFingerprint identifies a schedule's create request: its rule,
// policies and template, not what the state machine keeps of it.
func ScheduleFingerprint(sch *fsmpb.Schedule) []byte {
	body := &fsmpb.Schedule{
		Id: sch.Id, Cron: sch.Cron, Every: sch.Every, TimeZone: sch.TimeZone, StartAt: sch.StartAt, EndAt: sch.EndAt,
		Jitter: sch.Jitter, Paused: sch.Paused, Overlap: sch.Overlap, CatchUp: sch.CatchUp, CatchUpWindow: sch.CatchUpWindow,
	}
	if sch.Template != nil {
		body.Template = &fsmpb.Task{Fingerprint: Fingerprint(sch.Template, nil)}
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	sum := sha256.Sum256(b)
	return sum[:]
}
