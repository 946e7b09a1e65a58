package scheduler

import (
	"container/heap"
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
func (s *Scheduler) fire(ctx context.Context, term uint64, in <-chan []*fsmpb.FireItem, out chan<- []*fsmpb.Task) {
	results := make(chan firedBatch, maxFiresInFlight)
	var ordered sync.WaitGroup
	ordered.Add(1)
	go func() {
		defer ordered.Done()
		inOrder(ctx, results, out)
	}()
	var inflight sync.WaitGroup
	defer func() {
		inflight.Wait()
		close(results)
		ordered.Wait()
	}()
	slots := make(chan struct{}, maxFiresInFlight)
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
		case slots <- struct{}{}:
		case <-ctx.Done():
			results <- firedBatch{seq: seq} // keep the sequence whole
			continue                        // drain: the next leader fires these
		}
		inflight.Add(1)
		go func(seq int, items []*fsmpb.FireItem) {
			defer func() { <-slots; inflight.Done() }()
			results <- firedBatch{seq: seq, tasks: s.fireOnce(ctx, term, items)}
		}(seq, items)
	}
}

// firedBatch is the accepted tasks of the seq-th Fire proposal.
type firedBatch struct {
	seq   int
	tasks []*fsmpb.Task
}

// inOrder passes batches on in sequence order, holding early ones back.
func inOrder(ctx context.Context, in <-chan firedBatch, out chan<- []*fsmpb.Task) {
	defer close(out)
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
			if len(tasks) == 0 {
				continue
			}
			select {
			case out <- tasks:
			case <-ctx.Done():
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
		s.mu.Lock()
		if s.active && s.run == run {
			s.inbox.retries = append(s.inbox.retries, items...)
		}
		s.mu.Unlock()
		s.poke()
	})
}

// pace holds accepted tasks until their due time and then hands them to
// the dispatch workers: a task is never sent before it is due. It never
// blocks on the workers: what is due waits here (the dispatch gates bound
// how much that can be), so a backlog of deliveries cannot back up into
// the wheel loop, which also serves lease requests.
func (s *Scheduler) pace(ctx context.Context, in <-chan []*fsmpb.Task, out chan<- *fsmpb.Task) {
	defer close(out)
	var waiting byDue
	var due []*fsmpb.Task // due, in due order, not yet taken by a worker
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := s.cfg.Clock.Now().UnixNano()
		for len(waiting) > 0 && waiting[0].DueAt <= now {
			due = append(due, heap.Pop(&waiting).(*fsmpb.Task))
		}
		if len(waiting) > 0 {
			timer.Reset(time.Duration(waiting[0].DueAt - s.cfg.Clock.Now().UnixNano()))
		} else {
			timer.Stop()
		}
		var send chan<- *fsmpb.Task
		var next *fsmpb.Task
		if len(due) > 0 {
			send, next = out, due[0]
		}
		select {
		case <-ctx.Done():
			return
		case send <- next:
			due[0] = nil
			due = due[1:]
			if len(due) == 0 {
				due = nil // let the backing array go
			}
		case tasks, ok := <-in:
			if !ok {
				return
			}
			for _, t := range tasks {
				heap.Push(&waiting, t)
			}
		case <-timer.C:
		}
	}
}

// byDue is a min-heap of tasks on their due time. It holds only the tasks
// fired within the last FireLead, so it stays small.
type byDue []*fsmpb.Task

func (h byDue) Len() int           { return len(h) }
func (h byDue) Less(i, j int) bool { return h[i].DueAt < h[j].DueAt }
func (h byDue) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *byDue) Push(x any)        { *h = append(*h, x.(*fsmpb.Task)) }
func (h *byDue) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
