package leader

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// TestClockStepsOnTheLeader: the leader's clock steps back an hour, then
// forward two hours, with tasks in the wheel, in its ready lists, and
// created after the step back due before the time the wheel had reached,
// and a lease ending within the span the step forward skips. By that
// clock no task is ever fired more than the fire lead before its time,
// none is lost, none fires twice, and the lease expires once, no earlier
// than its end.
func TestClockStepsOnTheLeader(t *testing.T) {
	s := newSim(t, Config{})
	leaseEnd := t0.Add(50 * time.Minute)
	s.core.Changed([]fsm.Change{{Kind: fsm.ChangeLeased, ID: "leased", At: leaseEnd.UnixNano()}})
	due := map[string]time.Time{}
	for i := range 600 {
		id := fmt.Sprintf("t%03d", i)
		at := t0.Add(time.Duration(i) * 10 * time.Second) // over 100 minutes
		due[id] = at
		s.create(id, "q", at, false)
	}
	// Held in a ready list by its queue's rate limit when the clock steps.
	s.setQueue(&fsmpb.Queue{Name: "slow", Rate: 0.1, Burst: 1})
	for i := range 20 {
		id := fmt.Sprintf("s%03d", i)
		at := t0.Add(20*time.Minute - time.Duration(i)*time.Millisecond)
		due[id] = at
		s.create(id, "slow", at, false)
	}
	s.runUntil(t0.Add(20 * time.Minute))
	s.now = s.now.Add(-time.Hour) // stepped back
	for i := range 60 {
		id := fmt.Sprintf("b%03d", i)
		at := s.now.Add(time.Duration(i+1) * 15 * time.Second)
		due[id] = at
		s.create(id, "q", at, false)
	}
	s.runUntil(s.now.Add(10 * time.Minute))
	s.now = s.now.Add(2 * time.Hour) // stepped forward, past most due times
	s.runUntil(t0.Add(101 * time.Minute))
	lead := s.core.cfg.FireLead + s.core.cfg.FireBatch
	for id, at := range due {
		times := s.fired[id]
		if len(times) != 1 {
			t.Fatalf("%s fired %d times", id, len(times))
		}
		if early := at.Sub(times[0]); early > lead {
			t.Fatalf("%s due %v fired at %v by the leader's clock: %v early", id, at, times[0], early)
		}
	}
	if got := s.expired["leased"]; len(got) != 1 || got[0].Before(leaseEnd) {
		t.Fatalf("the lease ending at %v expired at %v by the leader's clock", leaseEnd, got)
	}
}

// TestRetryAfterKeepsItsTimeAcrossAClockStep: a host that asked for 30 s
// of quiet is sent to again when those 30 s have passed, though the
// leader's clock stepped back an hour 10 s into them.
func TestRetryAfterKeepsItsTimeAcrossAClockStep(t *testing.T) {
	s := newSim(t, Config{})
	s.finish = false
	due := t0.Add(time.Second)
	s.createTo("first", "q", due, "http://busy/")
	s.runUntil(due)
	s.finishSend("first", due.Add(30*time.Second))
	s.runUntil(due.Add(10 * time.Second))
	s.now = s.now.Add(-time.Hour)
	stepped := s.now
	s.createTo("second", "q", stepped.Add(time.Second), "http://busy/")
	s.runUntil(stepped.Add(21 * time.Second))
	want := stepped.Add(20 * time.Second) // the 20 s the Retry-After had left
	if got := s.sent["second"]; len(got) != 1 || got[0].Before(want) || got[0].Sub(want) > time.Millisecond {
		t.Fatalf("sent at %v by the stepped clock, want %v", got, want)
	}
}

// TestRateLimitKeepsItsPaceAcrossAClockStep: a queue limited to one task
// a second, with tasks long overdue, goes on at that pace when the clock
// steps back an hour, rather than waiting out the hour for its next token.
func TestRateLimitKeepsItsPaceAcrossAClockStep(t *testing.T) {
	s := newSim(t, Config{})
	s.setQueue(&fsmpb.Queue{Name: "limited", Rate: 1, Burst: 1})
	for i := range 100 {
		s.create(fmt.Sprintf("r%03d", i), "limited", t0.Add(-2*time.Hour), false)
	}
	s.runUntil(t0.Add(10*time.Second + 500*time.Millisecond))
	before := len(s.fired)
	s.now = s.now.Add(-time.Hour)
	s.runUntil(s.now.Add(10 * time.Second))
	if got := len(s.fired) - before; got != 10 {
		t.Fatalf("%d tasks fired in the 10 s after the clock stepped back, want 10 (one a second)", got)
	}
}

// TestNewLeaderWhoseClockIsBehind: leadership passes to a node whose
// clock reads 30 s behind the old leader's. It takes over a delivery the
// old leader fired (due, by the new clock, 25 s ahead) and a lease the
// old leader granted, and loads the rest from the due index. By its own
// clock it sends nothing before its time, expires the lease no earlier
// than its stamped end, and every task is fired once (the one taken over,
// once more as its next attempt).
func TestNewLeaderWhoseClockIsBehind(t *testing.T) {
	s := newSim(t, Config{})
	s.finish = false
	due := map[string]time.Time{}
	for i := range 120 {
		id := fmt.Sprintf("t%03d", i)
		at := t0.Add(time.Duration(i) * time.Second) // over two minutes
		due[id] = at
		s.create(id, "q", at, false)
	}
	s.runUntil(t0.Add(time.Minute))
	for len(s.sending) > 1 { // finished, but for the last one sent
		s.finishSend(s.sending[0].Task.Id, time.Time{})
	}
	inFlight := s.sending[0].Task
	leaseEnd := s.now.Add(10 * time.Second)
	s.store.running = []*fsmpb.Task{
		inFlight,
		{Id: "leased", Queue: "jobs", DueAt: t0.UnixNano(), FireTerm: 1, LeaseExpiresAt: leaseEnd.UnixNano()},
	}
	s.sending = nil
	s.tasks[inFlight.Id] = fsm.DueKey{At: inFlight.DueAt, ID: inFlight.Id} // to be fired again
	firedBefore := len(s.fired[inFlight.Id])

	s.now = s.now.Add(-30 * time.Second) // the new leader's clock
	s.core = New(s.store, Config{}, 2, s.now)
	var expiredAt time.Time
	for s.now.Before(t0.Add(3 * time.Minute)) {
		out := s.step()
		for len(s.sending) > 0 {
			s.finishSend(s.sending[0].Task.Id, time.Time{})
		}
		if slices.Contains(out.Expired, "leased") {
			expiredAt = s.now
		}
		s.now = out.Wake
	}
	if expiredAt.Before(leaseEnd) {
		t.Fatalf("the lease ending at %v expired at %v by the new leader's clock", leaseEnd, expiredAt)
	}
	if got := len(s.fired[inFlight.Id]) - firedBefore; got != 1 {
		t.Fatalf("the delivery in flight was fired %d times by the new leader, want 1", got)
	}
	if sent := s.sent[inFlight.Id]; time.Unix(0, inFlight.DueAt).After(sent[len(sent)-1]) {
		t.Fatalf("%s due %v sent again at %v by the new leader's clock", inFlight.Id, time.Unix(0, inFlight.DueAt), sent[len(sent)-1])
	}
	for id := range due {
		if id != inFlight.Id && len(s.fired[id]) != 1 {
			t.Fatalf("%s fired %d times", id, len(s.fired[id]))
		}
	}
}
