package main

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/metrics/labels"
)

// nodeCollector reports, at scrape time, this node's raft view, the tasks
// its state machine holds by queue and state, the due backlog, and the
// space left where the data directory is.
type nodeCollector struct {
	node    *cluster.Node
	dataDir string
	queues  *labels.Limiter // queues past it are summed as one

	term, commit, applied, leader, hasLeader, tasks   *prometheus.Desc
	backlog, backlogAge, diskFree, diskSize, finished *prometheus.Desc
}

func newNodeCollector(node *cluster.Node, dataDir string, queues *labels.Limiter) *nodeCollector {
	group := []string{"group"}
	return &nodeCollector{
		node: node, dataDir: dataDir, queues: queues,
		term:      prometheus.NewDesc("hourglass_raft_term", "The raft term this node's replica of the group is in.", group, nil),
		commit:    prometheus.NewDesc("hourglass_raft_commit_index", "The highest raft log index this node knows committed.", group, nil),
		applied:   prometheus.NewDesc("hourglass_raft_applied_index", "The highest raft log index this node applied.", group, nil),
		leader:    prometheus.NewDesc("hourglass_raft_leader", "1 while this node leads the group, else 0.", group, nil),
		hasLeader: prometheus.NewDesc("hourglass_raft_has_leader", "1 while this node knows a leader of the group (itself or another), else 0.", group, nil),
		tasks:     prometheus.NewDesc("hourglass_tasks", "Tasks in this node's replicas of every group, by queue and state.", []string{"queue", "state"}, nil),
		finished: prometheus.NewDesc("hourglass_tasks_finished_total",
			"Tasks that reached a final state (succeeded, dead, cancelled, expired), by queue, as this node applied the raft log since it started.", []string{"queue", "state"}, nil),
		backlog: prometheus.NewDesc("hourglass_due_backlog_tasks",
			"Scheduled tasks whose due time has passed but that are not fired yet (held by a paused queue, a rate limit, a busy target, or a scheduler falling behind).", group, nil),
		backlogAge: prometheus.NewDesc("hourglass_due_backlog_oldest_seconds",
			"How long ago the oldest task of the due backlog fell due (0 when there is none).", group, nil),
		diskFree: prometheus.NewDesc("hourglass_data_dir_free_bytes", "Bytes available to Hourglass on the file system of its data directory.", nil, nil),
		diskSize: prometheus.NewDesc("hourglass_data_dir_size_bytes", "Size in bytes of the file system of the data directory.", nil, nil),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.term, c.commit, c.applied, c.leader, c.hasLeader, c.tasks, c.backlog, c.backlogAge, c.diskFree, c.diskSize, c.finished} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	now := time.Now()
	groups := c.node.Groups()
	for _, g := range groups {
		st, id := g.Status(), g.ID().String()
		gauge(c.term, float64(st.Term), id)
		gauge(c.commit, float64(st.CommitIndex), id)
		gauge(c.applied, float64(st.AppliedIndex), id)
		gauge(c.leader, boolGauge(strings.EqualFold(st.State, "leader")), id)
		gauge(c.hasLeader, boolGauge(st.LeaderID != ""), id)
		if n, oldest, err := g.FSM().DueBacklog(now.UnixNano()); err != nil {
			ch <- prometheus.NewInvalidMetric(c.backlog, err)
		} else {
			gauge(c.backlog, float64(n), id)
			age := 0.0
			if n > 0 {
				age = now.Sub(time.Unix(0, oldest)).Seconds()
			}
			gauge(c.backlogAge, age, id)
		}
	}
	if free, size, err := diskSpace(c.dataDir); err != nil {
		ch <- prometheus.NewInvalidMetric(c.diskFree, err)
	} else {
		gauge(c.diskFree, float64(free))
		gauge(c.diskSize, float64(size))
	}
	type series struct{ queue, state string }
	finished := map[series]uint64{}
	for _, g := range groups {
		for _, f := range g.FSM().Finished() {
			finished[series{c.queues.Value(f.Queue), f.State}] += f.N
		}
	}
	for s, n := range finished {
		ch <- prometheus.MustNewConstMetric(c.finished, prometheus.CounterValue, float64(n), s.queue, s.state)
	}
	tasks := map[series]uint64{}
	for _, g := range groups {
		queues, err := g.FSM().Queues()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.tasks, err)
			return
		}
		for _, q := range queues {
			for state, n := range q.Counts {
				tasks[series{c.queues.Value(q.Name), state}] += n
			}
		}
	}
	for s, n := range tasks {
		gauge(c.tasks, float64(n), s.queue, s.state)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
