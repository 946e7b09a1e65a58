package schedules

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// Store is what the loop reads from the state machine.
type Store interface {
	// DueSchedules pages through the schedules due by until, earliest
	// first, after schedule after (nil: from the first).
	DueSchedules(until int64, after *fsmpb.Schedule, limit int) ([]*fsmpb.Schedule, error)
}

// Writer proposes occurrences (service.Service).
type Writer interface {
	CreateOccurrences(ctx context.Context, cmd *fsmpb.CreateOccurrences) (*fsm.ScheduleResult, error)
}

// Config tunes the loop. Zero values take the defaults named.
type Config struct {
	// Tick is how often the loop looks for schedules due, besides when a
	// schedule changes (1s; well inside Lookahead).
	Tick   time.Duration
	Now    func() time.Time // time.Now
	Logger *slog.Logger
	// Metrics, when set, registers the loop's metrics.
	Metrics prometheus.Registerer
}

// Loop creates the occurrences of one group's schedules while this node
// leads the group.
type Loop struct {
	store   Store
	writer  Writer
	cfg     Config
	log     *slog.Logger
	wake    chan struct{}
	metrics *metrics
}

// New returns the loop of a group, reading store and writing through
// writer.
func New(store Store, writer Writer, cfg Config) *Loop {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Loop{store: store, writer: writer, cfg: cfg, log: cfg.Logger.With("component", "schedules"),
		wake: make(chan struct{}, 1), metrics: newMetrics(cfg.Metrics)}
}

// DueChanged implements fsm.Notifier: a schedule that changed may have
// an occurrence due sooner than the next tick.
func (l *Loop) DueChanged(changes []fsm.Change) {
	for _, c := range changes {
		if c.Kind == fsm.ChangeSchedule {
			l.poke()
			return
		}
	}
}

// Restored implements fsm.Notifier.
func (l *Loop) Restored() { l.poke() }

func (l *Loop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run creates occurrences until ctx ends (the group's leadership). It
// has the shape of cluster.LeaderFunc.
func (l *Loop) Run(ctx context.Context, term uint64) {
	ticker := time.NewTicker(l.cfg.Tick)
	defer ticker.Stop()
	for {
		l.once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-l.wake:
		}
	}
}

// once creates what is due now, schedule by schedule, page by page of
// the due list, and passes over it again while a pass created something.
// A schedule that cannot go on (a rule this build cannot read) only
// takes its place in the list: the pass goes on past it.
func (l *Loop) once(ctx context.Context) {
	const page = 100
	var after *fsmpb.Schedule // the last of the previous page
	progress := false         // in this pass
	for ctx.Err() == nil {
		now := l.cfg.Now()
		due, err := l.store.DueSchedules(now.Add(Lookahead).UnixNano(), after, page)
		if err != nil {
			l.log.Error("read schedules due", "err", err)
			return
		}
		for _, s := range due {
			if l.step(ctx, s, now) {
				progress = true
			}
		}
		switch {
		case len(due) == page:
			after = due[len(due)-1]
		case progress:
			after, progress = nil, false
		default:
			return
		}
	}
}

// step proposes schedule s's next occurrences; it reports whether the
// schedule's cursor moved.
func (l *Loop) step(ctx context.Context, s *fsmpb.Schedule, now time.Time) bool {
	r, err := Recurrence(s, now)
	if err != nil {
		// A rule this build cannot read (a zone its database lacks):
		// said once a tick, until the schedule is fixed.
		l.log.Error("schedule's rule does not parse; no occurrences created", "schedule", s.Id, "err", err)
		return false
	}
	cmd, late := Plan(s, r, now)
	if cmd == nil {
		return false
	}
	res, err := l.writer.CreateOccurrences(ctx, cmd)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("create occurrences failed; retrying", "schedule", s.Id, "err", err)
		}
		return false
	}
	if res.Err != nil {
		return false // an edit or another proposal came first: read again
	}
	l.metrics.created.Add(float64(res.Created))
	l.metrics.missed.Add(float64(cmd.Missed))
	l.metrics.late.Add(float64(late))
	if cmd.Missed > 0 {
		l.log.Warn("schedule missed occurrences (catch-up policy)", "schedule", s.Id, "missed", cmd.Missed)
	}
	return true
}

type metrics struct{ created, missed, late prometheus.Counter }

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_schedule_occurrences_created_total",
			Help: "Occurrences of schedules this node created as tasks, as leader.",
		}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_schedule_occurrences_missed_total",
			Help: "Occurrences of schedules passed over after downtime, by their catch-up policy (older than catch_up_window, or not the latest).",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_schedule_occurrences_late_total",
			Help: "Occurrences of schedules created after their time (after downtime or a restore), and run late.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.created, m.missed, m.late)
	}
	return m
}
