package main

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-scheduler/hourglass/cluster"
)

// nodeCollector reports, at scrape time, this node's raft view and the
// tasks its state machine holds by queue and state.
type nodeCollector struct {
	node *cluster.Node

	term, commit, applied, leader, tasks *prometheus.Desc
}

func newNodeCollector(node *cluster.Node) *nodeCollector {
	return &nodeCollector{
		node:    node,
		term:    prometheus.NewDesc("hourglass_raft_term", "The raft term this node is in.", nil, nil),
		commit:  prometheus.NewDesc("hourglass_raft_commit_index", "The highest raft log index this node knows committed.", nil, nil),
		applied: prometheus.NewDesc("hourglass_raft_applied_index", "The highest raft log index this node applied.", nil, nil),
		leader:  prometheus.NewDesc("hourglass_raft_leader", "1 while this node is the raft leader, else 0.", nil, nil),
		tasks:   prometheus.NewDesc("hourglass_tasks", "Tasks in this node's state machine, by queue and state.", []string{"queue", "state"}, nil),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.term, c.commit, c.applied, c.leader, c.tasks} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.node.Status()
	leader := 0.0
	if strings.EqualFold(st.State, "leader") {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(c.term, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(c.commit, prometheus.GaugeValue, float64(st.CommitIndex))
	ch <- prometheus.MustNewConstMetric(c.applied, prometheus.GaugeValue, float64(st.AppliedIndex))
	ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, leader)
	queues, err := c.node.FSM().Queues()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.tasks, err)
		return
	}
	for _, q := range queues {
		for state, n := range q.Counts {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(n), q.Name, state)
		}
	}
}
