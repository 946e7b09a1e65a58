package scheduler

import (
	"context"
	"sync"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// maxFireItems caps one Fire command.
const maxFireItems = 10_000

// maxFiresInFlight bounds the Fire proposals awaiting their commit. More
// than one, so that a commit held up by a slow fsync does not hold up the
// fires released behind it: they go into the next raft entry instead.
const maxFiresInFlight = 8

// fire proposes Fire commands for released tasks, coalescing whatever has
// been released meanwhile, and passes the accepted tasks on, in the order
// they were released (so overdue tasks go out in due order even though
// their Fire proposals overlap). Nothing is sent for a task whose Fire did
// not commit.
func (s *Scheduler) fire(ctx context.Context, term uint64, in <-chan []*fsmpb.FireItem) {
	results := make(chan firedBatch, maxFiresInFlight)
	var ordered sync.WaitGroup
	ordered.Add(1)
	go func() {
		defer ordered.Done()
		inOrder(results, s.accepted)
	}()
	// A fixed set of proposers rather than a goroutine a proposal: each
	// keeps the stack that encoding and proposing grew (a new goroutine
	// grew it again every time: 7% of a node at a steady 1,000 fires a
	// second).
	jobs := make(chan fireJob)
	var proposers sync.WaitGroup
	for range maxFiresInFlight {
		proposers.Go(func() {
			for j := range jobs {
				results <- firedBatch{seq: j.seq, tasks: s.fireOnce(ctx, term, j.items)}
			}
		})
	}
	defer func() {
		close(jobs)
		proposers.Wait()
		close(results)
		ordered.Wait()
	}()
	for seq := 0; ; seq++ {
		items, ok := <-in
		if !ok {
			return
		}
	more:
		for len(items) < maxFireItems {
			select {
			case next, ok := <-in:
				if !ok {
					break more
				}
				items = append(items, next...)
			default:
				break more
			}
		}
		select {
		case jobs <- fireJob{seq: seq, items: items}:
		case <-ctx.Done():
			results <- firedBatch{seq: seq} // keep the sequence whole
			continue                        // drain: the next leader fires these
		}
	}
}

// fireJob is the seq-th Fire proposal's items.
type fireJob struct {
	seq   int
	items []*fsmpb.FireItem
}

// firedBatch is the accepted tasks of the seq-th Fire proposal.
type firedBatch struct {
	seq   int
	tasks []*fsmpb.Task
}

// inOrder passes batches on in sequence order, holding early ones back.
func inOrder(in <-chan firedBatch, out func([]*fsmpb.Task)) {
	held := map[int][]*fsmpb.Task{}
	next := 0
	for b := range in {
		held[b.seq] = b.tasks
		for {
			tasks, ok := held[next]
			if !ok {
				break
			}
			delete(held, next)
			next++
			if len(tasks) > 0 {
				out(tasks)
			}
		}
	}
}

// fireOnce proposes one Fire command and returns the tasks it accepted.
func (s *Scheduler) fireOnce(ctx context.Context, term uint64, items []*fsmpb.FireItem) []*fsmpb.Task {
	fired, err := s.writer.Fire(ctx, term, s.cfg.Clock.Now(), items)
	if err != nil {
		if ctx.Err() == nil {
			// Still leading: give the tasks back to the wheel loop,
			// which fires them again (reclaiming any whose Fire did
			// commit).
			s.log.Warn("fire failed; retrying", "tasks", len(items), "err", err)
			s.requeue(items)
		}
		return nil
	}
	s.notAccepted(items, fired)
	s.metrics.observeFired(s.cfg.Clock.Now(), fired.Accepted)
	s.metrics.skipped.Add(float64(len(fired.Skipped)))
	return fired.Accepted
}

// requeue hands fire items whose Fire failed back to the wheel loop,
// after a short pause, to be fired again with reclaim set: the failed Fire
// may have committed, and nothing was sent for it.
func (s *Scheduler) requeue(items []*fsmpb.FireItem) {
	for _, it := range items {
		it.Reclaim = true
	}
	s.mu.Lock()
	run := s.run
	s.mu.Unlock()
	time.AfterFunc(100*time.Millisecond, func() {
		s.tell(run, func(in *inbox) { in.retries = append(in.retries, items...) })
	})
}

// accepted hands the core the tasks a committed Fire accepted: it sends
// each at its due time, as the send gates allow.
func (s *Scheduler) accepted(tasks []*fsmpb.Task) {
	s.tell(0, func(in *inbox) { in.fired = append(in.fired, tasks) })
}
