package scheduler

import (
	"context"
	"math"
	"math/rand/v2"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// Backoff defaults, for tasks that name none.
const (
	DefaultBackoffInitial    = time.Second
	DefaultBackoffMax        = 5 * time.Minute
	DefaultBackoffMultiplier = 2.0
)

// maxOutcomes caps one RecordOutcomes command.
const maxOutcomes = 10_000

// decide turns an attempt's error into an outcome: success, a retry after
// a backoff, or dead once max_attempts attempts have failed.
func (s *Scheduler) decide(t *fsmpb.Task, err error) *fsmpb.Outcome {
	now := s.cfg.Clock.Now()
	o := &fsmpb.Outcome{Id: t.Id, Attempt: t.Attempts}
	switch {
	case err == nil:
		o.Kind = fsmpb.Outcome_SUCCEEDED
		o.RetainUntil = now.Add(s.cfg.Retention).UnixNano()
	case t.Attempts >= max(t.MaxAttempts, 1):
		o.Kind, o.Error = fsmpb.Outcome_DEAD, err.Error()
		o.RetainUntil = now.Add(s.cfg.Retention).UnixNano()
	default:
		o.Kind, o.Error = fsmpb.Outcome_RETRY, err.Error()
		o.RetryAt = now.Add(Backoff(t.GetBackoff(), t.Attempts, rand.Float64())).UnixNano()
	}
	return o
}

// Backoff is the delay before the attempt after failed attempt n (1-based):
// exponential growth from initial by multiplier, capped at max, with full
// jitter (u, in [0,1), picks a point between zero and that bound).
func Backoff(b *fsmpb.Backoff, n uint32, u float64) time.Duration {
	initial, ceiling, mult := float64(DefaultBackoffInitial), float64(DefaultBackoffMax), DefaultBackoffMultiplier
	if b != nil {
		if b.Initial > 0 {
			initial = float64(b.Initial)
		}
		if b.Max > 0 {
			ceiling = float64(b.Max)
		}
		if b.Multiplier >= 1 {
			mult = b.Multiplier
		}
	}
	bound := math.Min(ceiling, initial*math.Pow(mult, float64(n-1)))
	return time.Duration(u * bound)
}

// record proposes outcomes in batches. A batch that fails is retried while
// this node leads; after that, the tasks are still running in the fsm and
// the next leader fires them again.
func (s *Scheduler) record(ctx context.Context, in <-chan *fsmpb.Outcome) {
	for o := range in {
		batch := []*fsmpb.Outcome{o}
	more:
		for len(batch) < maxOutcomes {
			select {
			case next, ok := <-in:
				if !ok {
					break more
				}
				batch = append(batch, next)
			default:
				break more
			}
		}
		for {
			cmd := &fsmpb.Command{Kind: &fsmpb.Command_Outcomes{Outcomes: &fsmpb.RecordOutcomes{
				At: s.cfg.Clock.Now().UnixNano(), Outcomes: batch,
			}}}
			_, err := s.proposer.Propose(ctx, cmd)
			if err == nil || ctx.Err() != nil {
				break
			}
			s.log.Warn("record outcomes failed; retrying", "outcomes", len(batch), "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// purge deletes finished tasks past their retention, now and then.
func (s *Scheduler) purge(ctx context.Context) {
	const limit = 10_000
	ticker := time.NewTicker(s.cfg.PurgeInterval)
	defer ticker.Stop()
	for {
		for {
			cmd := &fsmpb.Command{Kind: &fsmpb.Command_Purge{Purge: &fsmpb.PurgeTasks{
				Before: s.cfg.Clock.Now().UnixNano(), Limit: limit,
			}}}
			res, err := s.proposer.Propose(ctx, cmd)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("purge failed", "err", err)
				}
				break
			}
			n := res.(*fsm.PurgeResult).Purged
			if n > 0 {
				s.log.Info("purged finished tasks past retention", "tasks", n)
			}
			if n < limit {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
