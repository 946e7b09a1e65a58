package service

import (
	"context"
	"fmt"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// Proposer replicates a command through raft and returns what the state
// machine answered (cluster.Group).
type Proposer interface {
	Propose(ctx context.Context, cmd *fsmpb.Command) (any, error)
}

// lingeringProposer is a Proposer that can let a command wait for others
// to share its raft entry (cluster.Group).
type lingeringProposer interface {
	ProposeWithin(ctx context.Context, cmd *fsmpb.Command, linger time.Duration) (any, error)
}

// workerLinger is how long the commands that pull workers cause, leases
// and acks, may wait for others to share a raft entry. At a steady
// rate each lease and each ack would otherwise pay for an entry, a raft
// log fsync and a state-machine transaction of its own; a worker's lease
// answer waits for its tasks' due time anyway (see Lease), and the SDK's
// worker acks in the background.
const workerLinger = 5 * time.Millisecond

// Store is what the service reads before a write: the bulk operations
// select their tasks, a redrive checks the task it names.
type Store interface {
	Get(id string) (*fsmpb.Task, error)
	SelectScheduled(sel fsm.Selector, after string, limit int) ([]string, bool, error)
	Schedule(id string) (*fsmpb.Schedule, error)
}

// Config tunes the service. Zero values take the defaults named.
type Config struct {
	// Retention is how long finished tasks are kept (7 days).
	Retention time.Duration
	// Now tells the time stamped into commands (time.Now).
	Now func() time.Time
}

// DefaultRetention is how long finished tasks are kept unless configured.
const DefaultRetention = 7 * 24 * time.Hour

// Service is the typed write path of one group.
type Service struct {
	p     Proposer
	store Store
	cfg   Config
}

// New returns the service writing through p and reading store.
func New(p Proposer, store Store, cfg Config) *Service {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{p: p, store: store, cfg: cfg}
}

// retainUntil is when a task finished at now may be purged.
func (s *Service) retainUntil(now time.Time) int64 { return now.Add(s.cfg.Retention).UnixNano() }

// propose proposes cmd and returns the state machine's answer as a T.
func propose[T any](ctx context.Context, s *Service, cmd *fsmpb.Command) (T, error) {
	return proposeWithin[T](ctx, s, cmd, 0)
}

// proposeWithin is propose for a command that may wait up to linger for
// others to share its raft entry, where the proposer allows it.
func proposeWithin[T any](ctx context.Context, s *Service, cmd *fsmpb.Command, linger time.Duration) (T, error) {
	var zero T
	var res any
	var err error
	if lp, ok := s.p.(lingeringProposer); ok && linger > 0 {
		res, err = lp.ProposeWithin(ctx, cmd, linger)
	} else {
		res, err = s.p.Propose(ctx, cmd)
	}
	if err != nil {
		return zero, err
	}
	r, ok := res.(T)
	if !ok {
		return zero, fmt.Errorf("the state machine answered %T to a %T command", res, cmd.Kind)
	}
	return r, nil
}
