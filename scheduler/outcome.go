package scheduler

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/webhook"
)

// maxOutcomes caps one RecordOutcomes command.
const maxOutcomes = 10_000

// decide turns a delivery attempt's result into an outcome: success, or a
// failure, which the state machine turns into a retry after the backoff
// of the task's (or its queue's) policy or dead. A target that answered
// 429 or 503 is retried no earlier than its Retry-After (or a second).
func (s *Scheduler) decide(t *fsmpb.Task, err error) *fsmpb.Outcome {
	o := &fsmpb.Outcome{Id: t.Id, Attempt: t.Attempts}
	if err == nil {
		o.Kind = fsmpb.Outcome_SUCCEEDED
		return o
	}
	o.Kind, o.Error, o.Jitter = fsmpb.Outcome_FAILED, err.Error(), rand.Float64()
	var busy *webhook.BusyError
	if errors.As(err, &busy) {
		o.NotBefore = busy.Until.UnixNano()
	}
	return o
}

// outcomeLinger is how long an outcome waits for others to share its raft
// entry. Under load they share one anyway (they gather while an entry is
// being committed); at a steady few hundred or thousand a second each
// would otherwise pay for an entry, an fsync of the raft log and a state
// machine transaction of its own. Nobody waits for an outcome's entry:
// the delivery is done, and the task shows running that much longer. As
// long as the leader core's FireBatch, the outcomes of the tasks one fire
// entry carried share an entry too.
const outcomeLinger = 20 * time.Millisecond

// record proposes outcomes in batches. A batch that fails is retried while
// this node leads; after that, the tasks are still running in the fsm and
// the next leader fires them again.
func (s *Scheduler) record(ctx context.Context, in <-chan *fsmpb.Outcome) {
	linger := time.NewTimer(0)
	defer linger.Stop()
	for o := range in {
		batch := []*fsmpb.Outcome{o}
		linger.Reset(outcomeLinger)
	more:
		for len(batch) < maxOutcomes {
			select {
			case next, ok := <-in:
				if !ok {
					break more
				}
				batch = append(batch, next)
			case <-linger.C:
				break more
			case <-ctx.Done():
				break more
			}
		}
		s.proposeOutcomes(ctx, batch)
	}
}

// proposeOutcomes records a batch of outcomes, retrying while this node
// leads; after that, the tasks are still running in the fsm and the next
// leader takes care of them.
func (s *Scheduler) proposeOutcomes(ctx context.Context, batch []*fsmpb.Outcome) *fsm.OutcomeResult {
	for {
		r, err := s.writer.RecordOutcomes(ctx, s.cfg.Clock.Now(), batch)
		if err == nil {
			return r
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("record outcomes failed; retrying", "outcomes", len(batch), "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
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
			n, err := s.writer.Purge(ctx, s.cfg.Clock.Now(), limit)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("purge failed", "err", err)
				}
				break
			}
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
