package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

func pushTask(id, queue, url string) *fsmpb.Task {
	return &fsmpb.Task{Id: id, Queue: queue, Target: &fsmpb.Target{Url: url}}
}

func addTasks(g *sendGates, now time.Time, n int, queue string, urls ...string) {
	for i := 0; i < n; i++ {
		t := pushTask(fmt.Sprintf("%s-%d", queue, i), queue, urls[i%len(urls)])
		g.add(t, fsm.RouteOf(t), now)
	}
}

func countBy(jobs []sendJob, key func(fsm.Route) string) map[string]int {
	n := map[string]int{}
	for _, j := range jobs {
		n[key(j.route)]++
	}
	return n
}

// TestSendGatesHangingQueueLeavesOthersTheirWorkers is issue 17's probe
// in miniature: one queue's tasks go to an endpoint that never answers,
// spelled four ways; they take no more than the queue's share, and the
// other queue's deliveries all go at once.
func TestSendGatesHangingQueueLeavesOthersTheirWorkers(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := newSendGates(256, 64, 64)
	addTasks(g, now, 400, "slow", "http://127.0.0.1:18003/", "http://127.0.0.1:018003/", "http://127.0.0.1:0018003/", "http://[::ffff:127.0.0.1]:18003/")
	slow := g.take()
	if len(slow) != 64 {
		t.Fatalf("the hanging queue got %d workers, want its share of 64", len(slow))
	}
	if hosts := countBy(slow, func(r fsm.Route) string { return r.Host }); len(hosts) != 1 {
		t.Fatalf("one endpoint counted as %d hosts: %v", len(hosts), hosts)
	}
	addTasks(g, now, 60, "fast", "http://127.0.0.1:18004/", "http://127.0.0.1:18005/", "http://127.0.0.1:18006/")
	if fast := g.take(); len(fast) != 60 {
		t.Fatalf("the healthy queue got %d of its 60 deliveries out at once", len(fast))
	}
	// Its share is spent: nothing more of it goes until one ends.
	addTasks(g, now, 1, "slow", "http://127.0.0.1:18003/")
	if more := g.take(); len(more) != 0 {
		t.Fatalf("%d more of the hanging queue went", len(more))
	}
	g.finished(slow[0].route, time.Time{}, now)
	if more := g.take(); len(more) != 1 || more[0].task.Queue != "slow" {
		t.Fatalf("after one ended: %v", more)
	}
}

// TestSendGatesHostCap: one host gets at most perHost, whatever queues
// its deliveries come from, and the next goes when one ends.
func TestSendGatesHostCap(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := newSendGates(100, 3, 100)
	addTasks(g, now, 5, "a", "http://h:1/")
	addTasks(g, now, 5, "b", "http://H:01/x")
	jobs := g.take()
	if len(jobs) != 3 {
		t.Fatalf("%d deliveries to one host, cap 3", len(jobs))
	}
	g.finished(jobs[0].route, time.Time{}, now)
	if more := g.take(); len(more) != 1 {
		t.Fatalf("%d went after one ended, want 1", len(more))
	}
}

// TestSendGatesRetryAfter: a host that answered with Retry-After gets
// nothing until then; tick lets its deliveries go.
func TestSendGatesRetryAfter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := newSendGates(10, 10, 10)
	addTasks(g, now, 1, "q", "http://busy/")
	first := g.take()
	until := now.Add(2 * time.Second)
	g.finished(first[0].route, until, now)
	if next := g.next(now); !next.Equal(until) {
		t.Fatalf("next wake %v, want %v", next, until)
	}
	addTasks(g, now.Add(time.Second), 3, "q", "http://busy/")
	addTasks(g, now.Add(time.Second), 1, "q", "http://other/")
	if got := g.take(); len(got) != 1 || got[0].route.Host != "other:80" {
		t.Fatalf("inside Retry-After: %v", got)
	}
	g.tick(until.Add(-time.Millisecond))
	if got := g.take(); len(got) != 0 {
		t.Fatalf("%d went before Retry-After ended", len(got))
	}
	g.tick(until)
	if got := g.take(); len(got) != 3 {
		t.Fatalf("%d went when Retry-After ended, want 3", len(got))
	}
	if next := g.next(until); !next.IsZero() {
		t.Fatalf("a wake at %v with no block left", next)
	}
}

// TestSendGatesWorkersTakeTurns: routes held back by the worker cap get
// the workers that free up in turn.
func TestSendGatesWorkersTakeTurns(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := newSendGates(2, 10, 10)
	addTasks(g, now, 10, "a", "http://a/")
	addTasks(g, now, 10, "b", "http://b/")
	addTasks(g, now, 10, "c", "http://c/")
	inFlight := g.take()
	var order []string
	for i := 0; i < 9; i++ {
		g.finished(inFlight[0].route, time.Time{}, now)
		inFlight = append(inFlight[1:], g.take()...)
		order = append(order, inFlight[len(inFlight)-1].task.Queue)
	}
	n := map[string]int{}
	for _, q := range order {
		n[q]++
	}
	if n["a"] != 3 || n["b"] != 3 || n["c"] != 3 {
		t.Fatalf("freed workers went %v", order)
	}
}

// TestSendGatesRandomHistories checks, after every event of random
// histories, that no gate is exceeded, nothing goes to a blocked host,
// and nothing waits that every gate would let go (no lost wake-up).
func TestSendGatesRandomHistories(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		workers, perHost, perQueue := 1+rng.IntN(8), 1+rng.IntN(4), 1+rng.IntN(4)
		g := newSendGates(workers, perHost, perQueue)
		now := time.Unix(1_700_000_000, 0)
		var inFlight []sendJob
		blocked := map[string]time.Time{}
		took := func() {
			for _, j := range g.take() {
				if now.Before(blocked[j.route.Host]) {
					t.Fatalf("seed %d: sent to %s before its Retry-After", seed, j.route.Host)
				}
				inFlight = append(inFlight, j)
			}
		}
		for step := 0; step < 300; step++ {
			// Time passes; the dispatcher ticks when next says.
			later := now.Add(time.Duration(rng.IntN(300)) * time.Millisecond)
			for at := g.next(now); !at.IsZero() && !at.After(later); at = g.next(now) {
				now = at
				g.tick(now)
				took()
			}
			now = later
			switch op := rng.IntN(10); {
			case op < 5:
				q, h := fmt.Sprintf("q%d", rng.IntN(3)), fmt.Sprintf("http://h%d/", rng.IntN(3))
				task := pushTask(fmt.Sprint(step), q, h)
				g.add(task, fsm.RouteOf(task), now)
			case len(inFlight) > 0:
				i := rng.IntN(len(inFlight))
				var until time.Time
				if rng.IntN(5) == 0 {
					until = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
					if until.After(blocked[inFlight[i].route.Host]) {
						blocked[inFlight[i].route.Host] = until
					}
				}
				g.finished(inFlight[i].route, until, now)
				inFlight = append(inFlight[:i], inFlight[i+1:]...)
			}
			took()
			hosts := countBy(inFlight, func(r fsm.Route) string { return r.Host })
			queues := countBy(inFlight, func(r fsm.Route) string { return r.Queue })
			if len(inFlight) > workers {
				t.Fatalf("seed %d step %d: %d in flight, %d workers", seed, step, len(inFlight), workers)
			}
			for h, n := range hosts {
				if n > perHost {
					t.Fatalf("seed %d step %d: %d in flight to %s, cap %d", seed, step, n, h, perHost)
				}
			}
			for q, n := range queues {
				if n > perQueue {
					t.Fatalf("seed %d step %d: %d in flight of %s, cap %d", seed, step, n, q, perQueue)
				}
			}
			// Work-conserving: every waiting route is held by a gate.
			for r, rt := range g.routes {
				if rt.head == len(rt.waiting) {
					t.Fatalf("seed %d step %d: empty route %v kept", seed, step, r)
				}
				if len(inFlight) < workers && hosts[r.Host] < perHost && queues[r.Queue] < perQueue && !now.Before(blocked[r.Host]) {
					t.Fatalf("seed %d step %d: route %v waits with every gate open", seed, step, r)
				}
			}
		}
	}
}

// BenchmarkSendGates is one delivery's way through the gates: added,
// handed out, finished, with 64 in flight to one host.
func BenchmarkSendGates(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	g := newSendGates(256, 64, 128)
	task := pushTask("t", "q", "http://127.0.0.1:18003/")
	route := fsm.RouteOf(task)
	for i := 0; i < 64; i++ {
		g.add(task, route, now)
	}
	g.take()
	b.ReportAllocs()
	for b.Loop() {
		g.add(task, route, now)
		g.finished(route, time.Time{}, now)
		g.take()
	}
}
