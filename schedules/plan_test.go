package schedules

import (
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/recurrence"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func schedule(t *testing.T, s *fsmpb.Schedule) (*fsmpb.Schedule, *recurrence.Recurrence) {
	t.Helper()
	s.Id, s.CreatedAt = "s", t0.UnixNano()
	if s.Template == nil {
		s.Template = &fsmpb.Task{Queue: "default", Payload: []byte("x")}
	}
	r, err := Recurrence(s, t0)
	if err != nil {
		t.Fatal(err)
	}
	s.NextAt = FirstRun(r, t0)
	return s, r
}

func TestPlanCreatesWhatFallsWithinTheLookahead(t *testing.T) {
	s, r := schedule(t, &fsmpb.Schedule{Every: int64(time.Second)})
	if got := time.Unix(0, s.NextAt).UTC(); !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("first run %v, want one interval after creation", got)
	}
	cmd, late := Plan(s, r, t0)
	if cmd == nil || late != 0 || cmd.Missed != 0 {
		t.Fatalf("plan: %v late %d", cmd, late)
	}
	if n := len(cmd.Tasks); n != int(Lookahead/time.Second) {
		t.Fatalf("%d occurrences within %v of a 1s schedule", n, Lookahead)
	}
	first := cmd.Tasks[0]
	if first.Id != "s@20261201T090001Z" || first.ExecuteAt != t0.Add(time.Second).UnixNano() || string(first.Payload) != "x" || first.Queue != "default" {
		t.Fatalf("first occurrence: %v", first)
	}
	if cmd.From != s.NextAt || cmd.NextAt != t0.Add(Lookahead+time.Second).UnixNano() {
		t.Fatalf("cursor %v → %v", time.Unix(0, cmd.From).UTC(), time.Unix(0, cmd.NextAt).UTC())
	}
	s.NextAt = cmd.NextAt
	if again, _ := Plan(s, r, t0); again != nil {
		t.Fatalf("planned again before anything fell due: %v", again)
	}
	s.Paused = true
	if paused, _ := Plan(s, r, t0.Add(time.Hour)); paused != nil {
		t.Fatal("a paused schedule planned occurrences")
	}
}

func TestPlanJitterIsWithinBoundAndStable(t *testing.T) {
	s, r := schedule(t, &fsmpb.Schedule{Cron: "* * * * * *", Jitter: int64(5 * time.Second)})
	a, _ := Plan(s, r, t0)
	b, _ := Plan(s, r, t0)
	if a == nil || len(a.Tasks) != 5 {
		t.Fatalf("plan: %v", a)
	}
	for i, task := range a.Tasks {
		at, _ := time.Parse("20060102T150405Z", task.Id[2:])
		if d := time.Duration(task.ExecuteAt - at.UnixNano()); d < 0 || d >= 5*time.Second {
			t.Fatalf("jitter %v outside [0, 5s)", d)
		}
		if b.Tasks[i].ExecuteAt != task.ExecuteAt {
			t.Fatal("jitter differs between two plans of the same occurrence")
		}
	}
}

// TestPlanCatchUp: after downtime, missed runs within the window run
// (all, at most MaxCatchUp, or the latest); older ones are counted.
func TestPlanCatchUp(t *testing.T) {
	for _, tc := range []struct {
		name         string
		s            *fsmpb.Schedule
		down         time.Duration
		late, missed int
	}{
		{"all within the window", &fsmpb.Schedule{Cron: "* * * * *"}, time.Hour, 59, 0},
		{"all, window 24h", &fsmpb.Schedule{Cron: "@hourly"}, 48 * time.Hour, 24, 23},
		{"all, window 90m", &fsmpb.Schedule{Cron: "@hourly", CatchUpWindow: int64(90 * time.Minute)}, 10 * time.Hour, 1, 8},
		{"latest", &fsmpb.Schedule{Cron: "* * * * *", CatchUp: fsmpb.CatchUp_CATCH_UP_LATEST}, time.Hour, 1, 58},
		{"at most MaxCatchUp", &fsmpb.Schedule{Every: int64(time.Second)}, time.Hour, MaxCatchUp, 3599 - MaxCatchUp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r := schedule(t, tc.s)
			now := t0.Add(tc.down)
			late, missed := 0, 0
			for range 100 {
				cmd, l := Plan(s, r, now)
				if cmd == nil {
					break
				}
				if len(cmd.Tasks) > MaxPerProposal {
					t.Fatalf("%d occurrences in one proposal", len(cmd.Tasks))
				}
				if cmd.Tasks[0].ExecuteAt < s.NextAt {
					t.Fatalf("occurrence %s before the cursor", cmd.Tasks[0].Id)
				}
				late += l
				missed += int(cmd.Missed)
				s.NextAt = cmd.NextAt
			}
			if late != tc.late || missed != tc.missed {
				t.Fatalf("late %d, missed %d; want %d and %d", late, missed, tc.late, tc.missed)
			}
			if next := time.Unix(0, s.NextAt); !next.After(now.Add(Lookahead)) {
				t.Fatalf("cursor %v not past the lookahead", next.UTC())
			}
		})
	}
}
