package fsm

import (
	"math"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// Retry defaults, for tasks and queues that name none.
const (
	DefaultMaxAttempts       = 5
	DefaultBackoffInitial    = time.Second
	DefaultBackoffMax        = 5 * time.Minute
	DefaultBackoffMultiplier = 2.0
)

// RetryPolicy is what decides a failed attempt's fate: the task's own
// settings where it has them, else its queue's, else the defaults.
type RetryPolicy struct {
	MaxAttempts      uint32
	Initial, Max     time.Duration
	Multiplier       float64
	MaxRetryDuration time.Duration // after execute_at; 0: no limit
}

// PolicyFor is the retry policy of task t in queue q (q may be nil).
func PolicyFor(t *fsmpb.Task, q *fsmpb.Queue) RetryPolicy {
	p := RetryPolicy{
		MaxAttempts: DefaultMaxAttempts, Initial: DefaultBackoffInitial,
		Max: DefaultBackoffMax, Multiplier: DefaultBackoffMultiplier,
	}
	if q != nil {
		if q.MaxAttempts > 0 {
			p.MaxAttempts = q.MaxAttempts
		}
		if q.MinBackoff > 0 {
			p.Initial = time.Duration(q.MinBackoff)
		}
		if q.MaxBackoff > 0 {
			p.Max = time.Duration(q.MaxBackoff)
		}
		p.MaxRetryDuration = time.Duration(q.MaxRetryDuration)
	}
	if t.MaxAttempts > 0 {
		p.MaxAttempts = t.MaxAttempts
	}
	if b := t.Backoff; b != nil {
		if b.Initial > 0 {
			p.Initial = time.Duration(b.Initial)
		}
		if b.Max > 0 {
			p.Max = time.Duration(b.Max)
		}
		if b.Multiplier >= 1 {
			p.Multiplier = b.Multiplier
		}
	}
	p.Max = max(p.Max, p.Initial)
	return p
}

// Backoff is the delay before the attempt after failed attempt n (1-based):
// growth from Initial by Multiplier, capped at Max, with full jitter (u, in
// [0,1), picks a point between zero and that bound).
//
// It runs inside the state machine, so it must give the same answer on
// every node: only single IEEE operations (exactly rounded everywhere, never
// fused), no math.Pow.
func (p RetryPolicy) Backoff(n uint32, u float64) time.Duration {
	bound := p.Initial
	for i := uint32(1); i < n && bound < p.Max; i++ {
		next := float64(bound) * p.Multiplier
		if next >= float64(p.Max) {
			bound = p.Max
			break
		}
		bound = time.Duration(next)
	}
	bound = min(bound, p.Max)
	if u <= 0 || u != u { // NaN, too, from a hostile entry
		return 0
	}
	if u >= 1 {
		return bound
	}
	return time.Duration(float64(bound) * u)
}

// Burst is the token bucket size of a queue's rate limit: its burst, or
// by default a tenth of a second's worth (at least 1), which absorbs the
// jitter of timers without letting much more through at once.
func Burst(q *fsmpb.Queue) float64 {
	if b := q.GetBurst(); b > 0 {
		return float64(b)
	}
	return max(1, math.Ceil(q.GetRate()/10))
}
