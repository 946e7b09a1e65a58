package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/recurrence"
)

// TestScheduleAcrossLeaderKillAndRollingRestart runs an every-second
// schedule on three nodes while the leader is killed (kill -9) and
// restarted, and then every node in turn is restarted. Every occurrence
// up to the end must be delivered, none before its time, and none twice
// with the same attempt.
func TestScheduleAcrossLeaderKillAndRollingRestart(t *testing.T) {
	nodes := startCluster(t)
	leader, follower := leaderAndFollower(t, nodes)
	recv := newCheckedReceiver(t)
	ctx := context.Background()
	s, err := client.New(follower.addr(), "").CreateSchedule(ctx, client.ScheduleRequest{
		ID: "tick", Every: "1s", Task: &client.TaskTemplate{Payload: []byte(`{"job":"tick"}`), Target: &client.Target{URL: recv.URL}},
	})
	if err != nil {
		t.Fatal(err)
	}
	first := s.NextRuns[0]

	waitFor(t, 30*time.Second, "5 occurrences delivered", func() bool { return recv.count() >= 5 })
	leader.srv.kill()
	killed := recv.count()
	waitFor(t, 30*time.Second, "5 more delivered after the kill", func() bool { return recv.count() >= killed+5 })
	leader.rejoin(t, nodes)
	rollingRestart(t, nodes)
	restarted := recv.count()
	waitFor(t, 30*time.Second, "3 more delivered after the restarts", func() bool { return recv.count() >= restarted+3 })

	paused, err := client.New(nodes[0].addr(), "").PauseSchedule(ctx, "tick")
	if err != nil || !paused.Paused {
		t.Fatalf("pause: %+v %v", paused, err)
	}
	// Occurrences due before the pause have fired by now (an occurrence
	// fires 20ms ahead); those after it were dropped with it.
	end := time.Now().Add(-time.Second).Truncate(time.Second)
	want := map[string]time.Time{}
	for at := first; !at.After(end); at = at.Add(time.Second) {
		want[recurrence.OccurrenceID("tick", at)] = at
	}
	waitFor(t, 30*time.Second, fmt.Sprintf("the %d occurrences up to the pause delivered", len(want)), func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		for id := range want {
			if len(recv.got[id]) == 0 {
				return false
			}
		}
		return true
	})

	recv.mu.Lock()
	defer recv.mu.Unlock()
	for id, deliveries := range recv.got {
		sched, at, ok := recurrence.ParseOccurrenceID(id)
		if !ok || sched != "tick" {
			t.Errorf("delivery of %q, no occurrence of the schedule", id)
			continue
		}
		attempts := map[int]bool{}
		for _, d := range deliveries {
			if d.at.Before(at) {
				t.Errorf("%s delivered early, at %s", id, d.at.Format(time.RFC3339Nano))
			}
			if attempts[d.attempt] {
				t.Errorf("%s delivered twice as attempt %d", id, d.attempt)
			}
			attempts[d.attempt] = true
		}
		if len(deliveries) > 1 {
			t.Logf("%s delivered %d times (attempts %v): a delivery cut by a failover is retried", id, len(deliveries), attempts)
		}
	}
	got, err := client.New(nodes[1].addr(), "").GetSchedule(ctx, "tick")
	if err != nil {
		t.Fatal(err)
	}
	if got.Missed != 0 || got.Occurrences < uint64(len(want)) {
		t.Fatalf("schedule after the faults: %d occurrences, %d missed; want at least %d and none missed", got.Occurrences, got.Missed, len(want))
	}
	t.Logf("%d occurrences up to the pause delivered across a leader kill and a rolling restart", len(want))
}
