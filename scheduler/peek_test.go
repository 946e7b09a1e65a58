package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/service"
)

// A peek reports a due pull task and leases nothing: the task is still
// there for a lease after it; on a queue with nothing due it waits its
// time and says no.
func TestPeekLeasesNothing(t *testing.T) {
	h, s := startScheduler(t, t.TempDir(), Config{}, func(n *cluster.Group) service.Proposer { return n })
	task := h.task("p1", "", time.Now())
	task.Target = nil // a pull task
	h.create(task)
	ctx := context.Background()
	ready, err := s.Peek(ctx, LeaseRequest{Queue: "default", Wait: 5 * time.Second})
	if err != nil || !ready {
		t.Fatalf("peek at a due task: %v %v", ready, err)
	}
	leased, err := s.Lease(ctx, LeaseRequest{Queue: "default", Max: 5, Lease: time.Minute})
	if err != nil || len(leased) != 1 || leased[0].Id != "p1" {
		t.Fatalf("lease after the peek: %v %v", leased, err)
	}
	began := time.Now()
	ready, err = s.Peek(ctx, LeaseRequest{Queue: "default", Wait: 200 * time.Millisecond})
	if err != nil || ready || time.Since(began) < 200*time.Millisecond {
		t.Fatalf("peek at an empty queue: %v %v after %v", ready, err, time.Since(began))
	}
}
