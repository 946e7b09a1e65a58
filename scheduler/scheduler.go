package scheduler

import (
	"context"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/leader"
	"github.com/hourglass-scheduler/hourglass/metrics/labels"
	"github.com/hourglass-scheduler/hourglass/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is what the scheduler reads from the state machine.
type Store interface {
	ScanDue(from *fsm.DueKey, until int64, limit int, fn func(fsm.DueKey, fsm.Route) bool) (int, error)
	Running() ([]*fsmpb.Task, error)
	Get(id string) (*fsmpb.Task, error)
	Queue(name string) (*fsm.QueueInfo, error)
}

// Writer is the leader's typed write path (service.Service).
type Writer interface {
	Fire(ctx context.Context, term uint64, at time.Time, items []*fsmpb.FireItem) (*fsm.FireResult, error)
	Lease(ctx context.Context, term uint64, at, until time.Time, items []*fsmpb.FireItem) (*fsm.FireResult, error)
	RecordOutcomes(ctx context.Context, at time.Time, outcomes []*fsmpb.Outcome) (*fsm.OutcomeResult, error)
	ExtendLease(ctx context.Context, at time.Time, id string, token []byte, attempt uint32, until time.Time) (*fsmpb.Task, error)
	Purge(ctx context.Context, before time.Time, limit int) (int, error)
}

// LeaderVerifier confirms that this node still leads (a quorum round trip).
type LeaderVerifier interface {
	VerifyLeader() error
}

// Clock tells the time; tests may slow or stop it.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Config tunes the scheduler. Zero values take the defaults named.
type Config struct {
	// Horizon is how far ahead tasks are loaded into the wheel (1m).
	Horizon time.Duration
	// MaxLoaded caps the tasks held in the wheel (1,000,000).
	MaxLoaded int
	// FireLead is how long before its time a task is fired, so the Fire
	// entry is committed when the time comes (20ms).
	FireLead time.Duration
	// CatchUpRate is how many overdue tasks per second are loaded after
	// leadership starts (5,000).
	CatchUpRate int
	// Workers is the number of concurrent webhook deliveries (256).
	Workers int
	// TargetConcurrency caps the requests in flight to one target host
	// (64), so that a slow receiver cannot take every worker; the host's
	// other fired tasks wait without a worker. A host is the URL's host
	// and port however they are spelled (fsm.Route).
	TargetConcurrency int
	// QueueConcurrency caps the requests in flight of one queue (half of
	// Workers), so that one queue's slow targets, under any number of
	// names, leave the other queues their workers. Keep it above
	// TargetConcurrency, or one slow host holds all of its queue.
	QueueConcurrency int
	// Share is how many groups a queue's tasks are spread over (1): this
	// group's scheduler enforces its share of each queue's rate limit and
	// concurrency cap (leader.Config.Share), and takes its share of
	// Workers, TargetConcurrency, QueueConcurrency, CatchUpRate and
	// MaxInFlight, which are the cluster's.
	Share int
	// MaxInFlight caps the webhook deliveries fired and not yet finished
	// (16,384), and a quarter of it those of one host: beyond it, due
	// tasks wait, still scheduled.
	MaxInFlight int
	// PurgeInterval is how often finished tasks past retention are purged
	// (1m).
	PurgeInterval time.Duration
	// Proxy, when set, is the HTTP proxy webhooks are sent through.
	Proxy *url.URL
	// SigningKeys, when set, sign every delivery with each key
	// (client.SignWebhook): more than one while keys are rotated.
	SigningKeys [][]byte
	// QueueLabels bounds the queue label of the scheduler's metrics (nil:
	// every queue its own series).
	QueueLabels *labels.Limiter
	// ErrorBodyBytes is how much of a failed response's body goes into the
	// task's last_error after its status line (webhook.Sender).
	ErrorBodyBytes int
	// Targets is the policy every webhook connection is checked against
	// (nil: only the addresses always refused).
	Targets *webhook.TargetPolicy
	// Leadership, when set, is asked before a delivery whose Fire is
	// older than FireLead plus StaleAfter: a leader that was paused (or
	// starved) may have been replaced meanwhile without knowing it yet.
	Leadership LeaderVerifier
	// StaleAfter: see Leadership (250ms, the leader lease).
	StaleAfter time.Duration
	Clock      Clock
	Logger     *slog.Logger
	// Metrics, when set, registers the scheduler's metrics.
	Metrics prometheus.Registerer
}

func (c *Config) setDefaults() {
	core := c.core()
	core.SetDefaults() // the core's defaults, which the shell uses too
	c.Horizon, c.MaxLoaded, c.FireLead, c.CatchUpRate, c.MaxInFlight = core.Horizon, core.MaxLoaded, core.FireLead, core.CatchUpRate, core.MaxInFlight
	c.Workers, c.TargetConcurrency, c.QueueConcurrency = core.Workers, core.TargetConcurrency, core.QueueConcurrency
	// The limits are the cluster's: with its queues' tasks spread over
	// Share groups, this group's leader takes its share of them, as the
	// core does of each queue's.
	if c.Share > 1 {
		for _, limit := range []*int{&c.Workers, &c.TargetConcurrency, &c.QueueConcurrency, &c.CatchUpRate, &c.MaxInFlight} {
			*limit = max(1, *limit/c.Share)
		}
	}
	if c.PurgeInterval <= 0 {
		c.PurgeInterval = time.Minute
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = 250 * time.Millisecond
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// core is the configuration of the leader core.
func (c *Config) core() leader.Config {
	return leader.Config{Horizon: c.Horizon, MaxLoaded: c.MaxLoaded, FireLead: c.FireLead, CatchUpRate: c.CatchUpRate, MaxInFlight: c.MaxInFlight,
		Workers: c.Workers, TargetConcurrency: c.TargetConcurrency, QueueConcurrency: c.QueueConcurrency, Share: c.Share}
}

// Scheduler is the leader's firing machinery. Install it as the fsm's
// Notifier and run Run while leading.
type Scheduler struct {
	cfg     Config
	store   Store
	writer  Writer
	sender  *webhook.Sender
	log     *slog.Logger
	metrics *metrics

	loaded atomic.Int64 // tasks in the wheel, for Loaded

	verifyMu     sync.Mutex // one leadership check at a time
	verifiedAt   time.Time  // when leadership was last confirmed
	verifiedTerm uint64     // in which term

	mu         sync.Mutex
	active     bool
	run        uint64 // counts the runs, so a late retry cannot reach a later one
	inbox      inbox
	wake       chan struct{}
	lastWaiter uint64 // numbers the lease requests
}

// inbox is what other goroutines hand the wheel loop.
type inbox struct {
	changes   []fsm.Change
	retries   []*fsmpb.FireItem // fires to propose again (see requeue)
	reset     bool
	unreserve []string           // ids of tasks a fire or lease did not take
	giveBack  []leader.LeaseItem // leases that did not commit
	fired     [][]*fsmpb.Task    // accepted by committed Fire entries, in release order
	finished  []finishedSend
	waiters   []*waiter // new lease requests
	dropped   []*waiter // lease requests given up
}

// finishedSend is a delivery that ended; until, if set, is when its host
// asked to be left alone till (429/503).
type finishedSend struct {
	job   leader.SendJob
	until time.Time
}

// New returns a scheduler reading store and writing through writer.
func New(store Store, writer Writer, cfg Config) *Scheduler {
	cfg.setDefaults()
	s := &Scheduler{
		cfg:    cfg,
		store:  store,
		writer: writer,
		log:    cfg.Logger.With("component", "scheduler"),
		wake:   make(chan struct{}, 1),
	}
	s.sender = &webhook.Sender{Client: webhook.NewClient(cfg.Workers, cfg.Targets, cfg.Proxy), SigningKeys: cfg.SigningKeys, ErrorBodyBytes: cfg.ErrorBodyBytes, Now: cfg.Clock.Now}
	s.metrics = newMetrics(s, cfg.Metrics)
	return s
}

// Loaded is the number of tasks held in memory, in the timing wheel:
// bounded by what falls due within the horizon and by MaxLoaded, not by
// the number of tasks pending.
func (s *Scheduler) Loaded() int { return int(s.loaded.Load()) }

// DueChanged implements fsm.Notifier: it queues the changes for the wheel
// loop while the scheduler runs, and ignores them otherwise.
func (s *Scheduler) DueChanged(changes []fsm.Change) {
	s.tell(0, func(in *inbox) { in.changes = append(in.changes, changes...) })
}

// tell puts what add adds into the inbox of run (0: of whichever run is
// active) and wakes the loop; with no such run, it drops it.
func (s *Scheduler) tell(run uint64, add func(*inbox)) {
	s.mu.Lock()
	if s.active && (run == 0 || s.run == run) {
		add(&s.inbox)
	}
	s.mu.Unlock()
	s.poke()
}

// Restored implements fsm.Notifier: the wheel is rebuilt from scratch.
func (s *Scheduler) Restored() {
	s.mu.Lock()
	waiters := s.inbox.waiters
	s.inbox = inbox{reset: true, waiters: waiters}
	s.mu.Unlock()
	s.poke()
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take hands the loop what arrived since it last looked.
func (s *Scheduler) take() inbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.inbox
	s.inbox = inbox{}
	return in
}

// setActive starts or ends a run. Lease requests queued while no run was
// active wait for the next; those queued when a run ends are answered.
func (s *Scheduler) setActive(active bool) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active = active
	s.run++
	waiters := s.inbox.waiters
	s.inbox = inbox{}
	if active {
		s.inbox.waiters = waiters
	} else {
		failAll(slices.Values(waiters))
	}
	return s.run
}

// Run does the leader's duties for term until ctx ends. It has the shape
// of cluster.LeaderFunc.
func (s *Scheduler) Run(ctx context.Context, term uint64) {
	// Listen before loading: a change that lands while the wheel is being
	// filled is then either seen by the scan or heard of, or both.
	run := s.setActive(true)
	defer s.setActive(false)

	fires := make(chan []*fsmpb.FireItem, 256)
	expiries := make(chan []string, 256)
	// The core never has more deliveries out than there are workers, so
	// a worker takes each at once (but after a restore; see loop).
	work := make(chan leader.SendJob, s.cfg.Workers)
	outcomes := make(chan *fsmpb.Outcome, 4*s.cfg.Workers)

	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	// A delivery in progress when leadership ends is cut off: its
	// connection is closed (webhook.Client.Abort).
	s.sender.Client.Reopen()
	spawn(func() { <-ctx.Done(); s.sender.Client.Abort() })
	spawn(func() { s.fire(ctx, term, fires) })
	spawn(func() { s.expire(ctx, expiries) })
	var workers sync.WaitGroup
	for i := 0; i < s.cfg.Workers; i++ {
		workers.Add(1)
		go func() { defer workers.Done(); s.deliver(ctx, term, work, outcomes) }()
	}
	spawn(func() { workers.Wait(); close(outcomes) })
	spawn(func() { s.record(ctx, outcomes) })
	spawn(func() { s.purge(ctx) })

	s.log.Info("scheduler running", "term", term)
	s.loop(ctx, run, term, fires, expiries, work)
	close(work)
	wg.Wait()
	s.log.Info("scheduler stopped", "term", term)
}
