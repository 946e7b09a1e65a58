package schedules

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/recurrence"
)

const (
	// Lookahead is how far ahead of its time an occurrence is created.
	Lookahead = 5 * time.Second
	// MaxPerProposal caps the occurrences one CreateOccurrences carries.
	MaxPerProposal = 100
	// MaxCatchUp caps the missed occurrences (due before the plan is
	// made) that run after downtime: the latest MaxCatchUp; older ones
	// are counted as missed.
	MaxCatchUp = 1000
	// DefaultCatchUpWindow: occurrences missed by more than this are not
	// run after downtime (24h, EventBridge Scheduler's default maximum
	// event age).
	DefaultCatchUpWindow = 24 * time.Hour
	// maxSteps bounds how many runs a plan looks at, however long the
	// downtime and however short the interval.
	maxSteps = 1_000_000
)

// Recurrence is schedule s's rule, parsed; now is only for the check
// that it still runs at all.
func Recurrence(s *fsmpb.Schedule, now time.Time) (*recurrence.Recurrence, error) {
	rule := recurrence.Rule{Cron: s.Cron, Every: time.Duration(s.Every), TimeZone: s.TimeZone}
	if s.StartAt != 0 {
		rule.StartAt = time.Unix(0, s.StartAt)
	}
	if s.EndAt != 0 {
		rule.EndAt = time.Unix(0, s.EndAt)
	}
	return recurrence.Parse(rule, time.Unix(0, s.CreatedAt), now)
}

// FirstRun is the first run after now (0: none): of a new schedule, or
// of one edited or resumed (what it missed while paused does not run). A
// fixed interval's first run is one interval after its creation, or at
// its start_at.
func FirstRun(r *recurrence.Recurrence, now time.Time) int64 {
	next, ok := r.Next(now)
	if !ok {
		return 0
	}
	return next.UnixNano()
}

// Plan is the next step of creating schedule s's occurrences at now: the
// occurrences from its cursor (s.NextAt) up to now plus Lookahead, at
// most MaxPerProposal, as tasks made from its template; the runs passed
// over by the catch-up policy (missed); and the cursor after them. Late
// counts the occurrences created after their time. A nil command means
// nothing is due.
//
// Runs before now are missed ones (the leader was down, or the group
// was restored from a backup): those older than the catch-up window are
// passed over; of the rest, CATCH_UP_LATEST runs only the last, and
// CATCH_UP_ALL the last MaxCatchUp.
func Plan(s *fsmpb.Schedule, r *recurrence.Recurrence, now time.Time) (cmd *fsmpb.CreateOccurrences, late int) {
	if s.Paused || s.NextAt == 0 || s.NextAt > now.Add(Lookahead).UnixNano() {
		return nil, 0
	}
	window := time.Duration(s.CatchUpWindow)
	if window <= 0 {
		window = DefaultCatchUpWindow
	}
	cmd = &fsmpb.CreateOccurrences{ScheduleId: s.Id, Version: s.Version, From: s.NextAt, At: now.UnixNano()}
	horizon := now.Add(Lookahead)
	// Runs due before now, oldest first, of which at most keep run.
	var overdue []time.Time
	keep := MaxCatchUp
	if s.CatchUp == fsmpb.CatchUp_CATCH_UP_LATEST {
		keep = 1
	}
	next, ok := time.Unix(0, s.NextAt), true
	for steps := 0; ok && next.Before(now) && steps < maxSteps; steps++ {
		if now.Sub(next) > window {
			cmd.Missed++
		} else if overdue = append(overdue, next); len(overdue) > keep {
			overdue = overdue[1:]
			cmd.Missed++
		}
		next, ok = r.Next(next)
	}
	runs := overdue
	for ; ok && !next.After(horizon) && len(runs) < MaxPerProposal; next, ok = r.Next(next) {
		runs = append(runs, next)
	}
	if len(runs) > MaxPerProposal {
		// Overdue runs beyond one proposal: the rest go in the next,
		// whose cursor is the first of them.
		next, ok = runs[MaxPerProposal], true
		runs = runs[:MaxPerProposal]
	}
	if ok {
		cmd.NextAt = next.UnixNano()
	}
	for _, at := range runs {
		cmd.Tasks = append(cmd.Tasks, Occurrence(s, at, now))
		if at.Before(now) {
			late++
		}
	}
	return cmd, late
}

// Occurrence is the task of schedule s's run at `at`, created at now.
func Occurrence(s *fsmpb.Schedule, at, now time.Time) *fsmpb.Task {
	t := proto.Clone(s.Template).(*fsmpb.Task)
	t.Id = recurrence.OccurrenceID(s.Id, at)
	t.ExecuteAt = at.Add(recurrence.Jitter(s.Id, at, time.Duration(s.Jitter))).UnixNano()
	t.CreatedAt, t.UpdatedAt = now.UnixNano(), now.UnixNano()
	t.Fingerprint = []byte(fmt.Sprintf("occurrence of %s v%d", s.Id, s.Version))
	return t
}
