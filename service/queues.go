package service

import (
	"context"
	"fmt"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

const (
	// BulkChunk is how many tasks one raft entry of a bulk cancel or
	// shift changes.
	BulkChunk = 1000
	// RedriveChunk is how many dead tasks one raft entry of a redrive
	// moves back.
	RedriveChunk = 1000
)

// PutQueue creates or replaces every setting of a queue.
func (s *Service) PutQueue(ctx context.Context, q *fsmpb.Queue) (*fsmpb.Queue, error) {
	return s.queueResult(ctx, &fsmpb.Command{Kind: &fsmpb.Command_PutQueue{PutQueue: &fsmpb.PutQueue{Queue: q, At: s.cfg.Now().UnixNano()}}})
}

// PauseQueue pauses (or resumes) a queue and changes nothing else, so a
// settings change committed meanwhile is kept.
func (s *Service) PauseQueue(ctx context.Context, name string, paused bool) (*fsmpb.Queue, error) {
	return s.queueResult(ctx, &fsmpb.Command{Kind: &fsmpb.Command_PauseQueue{PauseQueue: &fsmpb.PauseQueue{Name: name, Paused: paused, At: s.cfg.Now().UnixNano()}}})
}

// DeleteQueue removes a queue's settings; refused while it holds
// scheduled or running tasks.
func (s *Service) DeleteQueue(ctx context.Context, name string) error {
	_, err := s.queueResult(ctx, &fsmpb.Command{Kind: &fsmpb.Command_DeleteQueue{DeleteQueue: &fsmpb.DeleteQueue{Name: name}}})
	return err
}

func (s *Service) queueResult(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Queue, error) {
	res, err := propose[*fsm.QueueResult](ctx, s, cmd)
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Queue, nil
}

// Redrive moves dead tasks of queue back to scheduled, due now with their
// attempts reset: the task id, or (id empty) every dead task of the queue,
// RedriveChunk per raft entry. It returns how many it moved.
func (s *Service) Redrive(ctx context.Context, queue, id string) (int, error) {
	cmd := &fsmpb.RedriveTasks{Queue: queue, Limit: RedriveChunk}
	if id != "" {
		task, err := s.store.Get(id)
		if err != nil {
			return 0, err
		}
		if task.Queue != queue || task.State != fsmpb.State_DEAD {
			return 0, fmt.Errorf("%w: task %q is %s in queue %q; only a dead task of queue %q can be redriven",
				fsm.ErrConflict, id, fsm.StateName(task.State), task.Queue, queue)
		}
		cmd.Ids = []string{id}
	}
	total := 0
	for {
		cmd.At = s.cfg.Now().UnixNano()
		res, err := propose[*fsm.CountResult](ctx, s, &fsmpb.Command{Kind: &fsmpb.Command_Redrive{Redrive: cmd}})
		if err != nil {
			return total, fmt.Errorf("after redriving %d tasks: %w", total, err)
		}
		total += res.Changed
		if cmd.Ids != nil || res.Changed < RedriveChunk {
			return total, nil
		}
	}
}

// Bulk counts what a bulk operation selected and changed.
type Bulk struct {
	Matched, Changed int
}

// CancelSelected cancels the scheduled tasks sel picks, BulkChunk per raft
// entry (nothing, with dryRun: it only counts them).
func (s *Service) CancelSelected(ctx context.Context, sel fsm.Selector, dryRun bool) (Bulk, error) {
	return s.bulk(ctx, sel, dryRun, func(ids []string, now time.Time) *fsmpb.Command {
		return &fsmpb.Command{Kind: &fsmpb.Command_CancelMany{CancelMany: &fsmpb.CancelTasks{
			Ids: ids, At: now.UnixNano(), RetainUntil: s.retainUntil(now),
		}}}
	})
}

// ShiftSelected moves the scheduled tasks sel picks by `by`, BulkChunk per
// raft entry (nothing, with dryRun: it only counts them).
func (s *Service) ShiftSelected(ctx context.Context, sel fsm.Selector, by time.Duration, dryRun bool) (Bulk, error) {
	return s.bulk(ctx, sel, dryRun, func(ids []string, now time.Time) *fsmpb.Command {
		return &fsmpb.Command{Kind: &fsmpb.Command_Shift{Shift: &fsmpb.ShiftTasks{Ids: ids, By: int64(by), At: now.UnixNano()}}}
	})
}

func (s *Service) bulk(ctx context.Context, sel fsm.Selector, dryRun bool, command func(ids []string, now time.Time) *fsmpb.Command) (Bulk, error) {
	var out Bulk
	after := ""
	for {
		ids, more, err := s.store.SelectScheduled(sel, after, BulkChunk)
		if err != nil {
			return out, err
		}
		out.Matched += len(ids)
		if len(ids) > 0 && !dryRun {
			res, err := propose[*fsm.CountResult](ctx, s, command(ids, s.cfg.Now()))
			if err != nil {
				return out, fmt.Errorf("after changing %d tasks: %w", out.Changed, err)
			}
			out.Changed += res.Changed
		}
		if !more {
			return out, nil
		}
		after = ids[len(ids)-1]
	}
}
