package cluster

import (
	"context"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// groupMetrics are a group replica's Prometheus metrics (registered only when
// Config.Metrics is set).
type groupMetrics struct {
	// applyDuration is how long a proposal took from its raft entry's
	// submission on the leader to its result from the state machine.
	applyDuration prometheus.Histogram
	// leaderChanges counts the leaders this node saw elected (or lost).
	leaderChanges prometheus.Counter
	reg           *trackedRegisterer
}

func newGroupMetrics(reg prometheus.Registerer) *groupMetrics {
	m := &groupMetrics{
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hourglass_raft_apply_duration_seconds",
			Help:    "How long raft entries written on this node (as leader) took from submission to their result from the state machine: replication, fsync and apply.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_raft_leader_changes_total",
			Help: "Changes of the group's raft leader this node observed (a new leader, or none).",
		}),
	}
	m.reg = &trackedRegisterer{reg: reg}
	m.reg.MustRegister(m.applyDuration, m.leaderChanges)
	return m
}

// unregister takes every metric of the replica (the owner's too, see
// Group.Metrics) out of the registry, when the replica is removed.
func (m *groupMetrics) unregister() { m.reg.unregisterAll() }

// trackedRegisterer registers with reg (nothing when nil) and remembers
// what, so that a replica's metrics can all be unregistered.
type trackedRegisterer struct {
	reg prometheus.Registerer
	mu  sync.Mutex
	cs  []prometheus.Collector
}

func (t *trackedRegisterer) Register(c prometheus.Collector) error {
	if t.reg == nil {
		return nil
	}
	if err := t.reg.Register(c); err != nil {
		return err
	}
	t.mu.Lock()
	t.cs = append(t.cs, c)
	t.mu.Unlock()
	return nil
}

func (t *trackedRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t *trackedRegisterer) Unregister(c prometheus.Collector) bool {
	if t.reg == nil {
		return false
	}
	return t.reg.Unregister(c)
}

func (t *trackedRegisterer) unregisterAll() {
	t.mu.Lock()
	cs := t.cs
	t.cs = nil
	t.mu.Unlock()
	for _, c := range cs {
		t.reg.Unregister(c)
	}
}

// countLeaderChanges counts raft's leader observations until ctx ends.
func (g *Group) countLeaderChanges(ctx context.Context) {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	g.raft.RegisterObserver(obs)
	defer g.raft.DeregisterObserver(obs)
	for {
		select {
		case <-ch:
			g.metrics.leaderChanges.Inc()
		case <-ctx.Done():
			return
		}
	}
}
