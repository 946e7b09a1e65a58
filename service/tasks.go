package service

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math"
	"slices"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// NewTask is a task to create, as the API built it from its request.
type NewTask struct {
	Task *fsmpb.Task
	// Delay is the request's delay as written, or nil when it gave
	// execute_at: a delay counts in the fingerprint as written, so that
	// resending the same request later is still a repeat.
	Delay *string
}

// Created is the outcome of one create: the stored task, whether it
// existed already (an idempotent repeat), or the error that refused it
// (fsm.ErrConflict: the id is taken by another body).
type Created struct {
	Task    *fsmpb.Task
	Existed bool
	Err     error
}

// CreateTasks creates tasks in one raft entry, each idempotent by its id
// and fingerprint, and returns an outcome per task, in order.
func (s *Service) CreateTasks(ctx context.Context, tasks []NewTask) ([]Created, error) {
	cmd := &fsmpb.CreateTasks{Tasks: make([]*fsmpb.Task, len(tasks))}
	for i, t := range tasks {
		t.Task.Fingerprint = Fingerprint(t.Task, t.Delay)
		cmd.Tasks[i] = t.Task
	}
	res, err := propose[*fsm.CreateResult](ctx, s, &fsmpb.Command{Kind: &fsmpb.Command_Create{Create: cmd}})
	if err != nil {
		return nil, err
	}
	out := make([]Created, len(res.Items))
	for i, item := range res.Items {
		out[i] = Created(item)
	}
	return out, nil
}

// CancelTask cancels a scheduled task; it is kept for the retention
// period, its id taken.
func (s *Service) CancelTask(ctx context.Context, id string) (*fsmpb.Task, error) {
	now := s.cfg.Now()
	return s.taskResult(ctx, &fsmpb.Command{Kind: &fsmpb.Command_Cancel{Cancel: &fsmpb.CancelTask{
		Id: id, At: now.UnixNano(), RetainUntil: s.retainUntil(now),
	}}})
}

// Update changes a scheduled task; nil fields stay as they are.
type Update struct {
	ID string
	// IfVersion, when not 0, applies the update only to that version.
	IfVersion uint64
	ExecuteAt *int64 // unix ns
	Payload   []byte // non-nil to set; empty clears it
	Target    *fsmpb.Target
}

// UpdateTask changes a scheduled task.
func (s *Service) UpdateTask(ctx context.Context, u Update) (*fsmpb.Task, error) {
	return s.taskResult(ctx, &fsmpb.Command{Kind: &fsmpb.Command_Update{Update: &fsmpb.UpdateTask{
		Id: u.ID, At: s.cfg.Now().UnixNano(), IfVersion: u.IfVersion,
		ExecuteAt: u.ExecuteAt, Payload: u.Payload, Target: u.Target,
	}}})
}

func (s *Service) taskResult(ctx context.Context, cmd *fsmpb.Command) (*fsmpb.Task, error) {
	res, err := propose[*fsm.TaskResult](ctx, s, cmd)
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Task, nil
}

// Fingerprint identifies a create request for idempotency: the same id
// with the same body is a repeat, with another body a conflict. delay is
// the request's delay as written (nil: it gave execute_at). Every field is
// hashed with its length, so no two different requests hash alike by
// running together.
func Fingerprint(t *fsmpb.Task, delay *string) []byte {
	h := sha256.New()
	var buf [8]byte
	num := func(v uint64) {
		binary.BigEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	str := func(v string) {
		num(uint64(len(v)))
		io.WriteString(h, v)
	}
	str(t.Id)
	str(t.Queue)
	str(t.Name)
	if delay == nil {
		str("at")
		num(uint64(t.ExecuteAt))
	} else {
		str("delay")
		str(*delay)
	}
	str(string(t.Payload))
	if t.Target != nil {
		num(1)
		str(t.Target.Url)
		str(t.Target.Method)
		num(uint64(t.Target.Timeout))
		keys := make([]string, 0, len(t.Target.Headers))
		for k := range t.Target.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		num(uint64(len(keys)))
		for _, k := range keys {
			str(k)
			str(t.Target.Headers[k])
		}
	} else {
		num(0)
	}
	num(uint64(t.MaxAttempts))
	num(uint64(t.MaxLateness))
	if b := t.Backoff; b != nil {
		num(1)
		num(uint64(b.Initial))
		num(uint64(b.Max))
		num(math.Float64bits(b.Multiplier))
	} else {
		num(0)
	}
	return h.Sum(nil)
}
