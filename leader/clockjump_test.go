package leader

import (
	"fmt"
	"testing"
	"time"
)

// TestClockStepsOnTheLeader: the leader's clock steps back an hour, then
// forward two hours. By that clock no task is ever fired more than the
// fire lead before its time, none is lost, and none fires twice.
func TestClockStepsOnTheLeader(t *testing.T) {
	s := newSim(t, Config{})
	due := map[string]time.Time{}
	for i := range 600 {
		id := fmt.Sprintf("t%03d", i)
		at := t0.Add(time.Duration(i) * 10 * time.Second) // over 100 minutes
		due[id] = at
		s.create(id, "q", at, false)
	}
	s.runUntil(t0.Add(20 * time.Minute))
	s.now = s.now.Add(-time.Hour) // stepped back
	s.runUntil(s.now.Add(10 * time.Minute))
	s.now = s.now.Add(2 * time.Hour) // stepped forward, past most due times
	s.runUntil(t0.Add(101 * time.Minute))
	lead := s.core.cfg.FireLead
	for id, at := range due {
		times := s.fired[id]
		if len(times) != 1 {
			t.Fatalf("%s fired %d times", id, len(times))
		}
		if early := at.Sub(times[0]); early > lead {
			t.Fatalf("%s due %v fired at %v by the leader's clock: %v early", id, at, times[0], early)
		}
	}
}
