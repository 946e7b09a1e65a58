package service

import (
	"context"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// The leader's writes. Their time comes from the caller: the leader's
// clock, which decides what is due, stamps what it writes.

// Fire moves due tasks of term to running before they are sent (commit
// before send); a task past its max_lateness ends expired instead.
func (s *Service) Fire(ctx context.Context, term uint64, at time.Time, items []*fsmpb.FireItem) (*fsm.FireResult, error) {
	return propose[*fsm.FireResult](ctx, s, &fsmpb.Command{Kind: &fsmpb.Command_Fire{Fire: &fsmpb.FireTasks{
		Term: term, At: at.UnixNano(), Items: items, RetainUntil: s.retainUntil(at),
	}}})
}

// Lease leases due pull tasks of term to a worker until `until`; each item
// carries its lease token.
//
// The lease may wait for other commands to share its raft entry, a
// quarter of the time left before its first task is due, at most
// workerLinger: the leader hands pull tasks out a little before their
// time, and the answer waits for it anyway. Tasks due already do not
// wait.
func (s *Service) Lease(ctx context.Context, term uint64, at, until time.Time, items []*fsmpb.FireItem) (*fsm.FireResult, error) {
	linger := workerLinger
	for _, it := range items {
		linger = min(linger, time.Duration(it.DueAt-at.UnixNano())/4)
	}
	return proposeWithin[*fsm.FireResult](ctx, s, &fsmpb.Command{Kind: &fsmpb.Command_Fire{Fire: &fsmpb.FireTasks{
		Term: term, At: at.UnixNano(), Items: items, LeaseUntil: until.UnixNano(), RetainUntil: s.retainUntil(at),
	}}}, linger)
}

// RecordOutcomes records how attempts ended, in one raft entry; a
// finished task is kept for the retention period. Outcomes that workers
// reported (acks, nacks) may wait up to workerLinger for other commands
// to share their entry: their tasks are done either way. The outcomes of
// webhooks wait for each other in the scheduler already.
func (s *Service) RecordOutcomes(ctx context.Context, at time.Time, outcomes []*fsmpb.Outcome) (*fsm.OutcomeResult, error) {
	retain := s.retainUntil(at)
	linger := workerLinger
	for _, o := range outcomes {
		o.RetainUntil = retain
		if !o.Worker {
			linger = 0
		}
	}
	return proposeWithin[*fsm.OutcomeResult](ctx, s, &fsmpb.Command{Kind: &fsmpb.Command_Outcomes{Outcomes: &fsmpb.RecordOutcomes{
		At: at.UnixNano(), Outcomes: outcomes,
	}}}, linger)
}

// ExtendLease moves the end of a live lease, which its holder names by
// token (and, unless 0, attempt), to until.
func (s *Service) ExtendLease(ctx context.Context, at time.Time, id string, token []byte, attempt uint32, until time.Time) (*fsmpb.Task, error) {
	return s.taskResult(ctx, &fsmpb.Command{Kind: &fsmpb.Command_Extend{Extend: &fsmpb.ExtendLease{
		Id: id, Attempt: attempt, LeaseToken: token, At: at.UnixNano(), Until: until.UnixNano(),
	}}})
}

// Purge deletes up to limit finished tasks whose retention ended by
// before, and returns how many.
func (s *Service) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := propose[*fsm.PurgeResult](ctx, s, &fsmpb.Command{Kind: &fsmpb.Command_Purge{Purge: &fsmpb.PurgeTasks{
		Before: before.UnixNano(), Limit: uint32(limit),
	}}})
	if err != nil {
		return 0, err
	}
	return res.Purged, nil
}
