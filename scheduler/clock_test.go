package scheduler

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// steppedClock is the real clock plus an offset the test steps.
type steppedClock struct{ offset atomic.Int64 }

func (c *steppedClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *steppedClock) step(d time.Duration) { c.offset.Add(int64(d)) }

// TestClockStepsOnTheLeader: the leader's clock steps back a minute, then
// forward an hour. Tasks created after the step back, due before the time
// the leader had reached, and tasks due within the hour the clock then
// skips, are each delivered once (but for one cancelled two seconds
// before its time, which is not delivered), none before its time by the leader's
// clock when it delivers.
func TestClockStepsOnTheLeader(t *testing.T) {
	clock := &steppedClock{}
	h := start(t, t.TempDir(), Config{Clock: clock})
	recv := newReceiver(t)
	h.create(h.task("first", recv.URL+"/ok", clock.Now().Add(100*time.Millisecond)))
	h.waitState("first", fsmpb.State_SUCCEEDED, 5*time.Second)

	clock.step(-time.Minute)
	due := map[string]time.Time{}
	var tasks []*fsmpb.Task
	for i := range 10 {
		id := fmt.Sprintf("back%d", i)
		due[id] = clock.Now().Add(time.Duration(i+1) * 100 * time.Millisecond)
		tasks = append(tasks, h.task(id, recv.URL+"/ok", due[id]))
	}
	for i := range 10 {
		id := fmt.Sprintf("skipped%d", i)
		due[id] = clock.Now().Add(time.Duration(i+1) * 5 * time.Minute)
		tasks = append(tasks, h.task(id, recv.URL+"/ok", due[id]))
	}
	cancelled := h.task("cancelled", recv.URL+"/ok", clock.Now().Add(3*time.Second))
	h.create(append(tasks, cancelled)...)
	for i := range 10 {
		h.waitState(fmt.Sprintf("back%d", i), fsmpb.State_SUCCEEDED, 5*time.Second)
	}
	// Cancelled before its time, as the leader's clock tells it: the
	// cancel wins.
	if _, err := h.writes.CancelTask(context.Background(), "cancelled"); err != nil {
		t.Fatalf("cancel a task due %v later by the leader's clock: %v", time.Unix(0, cancelled.ExecuteAt).Sub(clock.Now()), err)
	}
	clock.step(time.Hour)
	for i := range 10 {
		h.waitState(fmt.Sprintf("skipped%d", i), fsmpb.State_SUCCEEDED, 5*time.Second)
	}
	if got := recv.deliveries("cancelled"); len(got) != 0 {
		t.Fatalf("a cancelled task was delivered: %+v", got)
	}
	for id, at := range due {
		got := recv.deliveries(id)
		if len(got) != 1 {
			t.Fatalf("%s delivered %d times", id, len(got))
		}
		// The receiver notes the real time; the clock read an offset from
		// it: -1m for the back tasks, +59m for the skipped ones.
		offset := -time.Minute
		if id[0] == 's' {
			offset += time.Hour
		}
		if by := got[0].at.Add(offset); by.Before(at) {
			t.Fatalf("%s due %v delivered at %v by the leader's clock: %v early", id, at, by, at.Sub(by))
		}
	}
}
