package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/metrics/labels"
	"github.com/hourglass-scheduler/hourglass/service"
)

// TestTaskSeriesAreBounded: past the limiter's queues, the tasks of every
// other queue are one series per state, queue="(other)", so that clients
// making up queue names cannot grow /metrics.
func TestTaskSeriesAreBounded(t *testing.T) {
	node, err := cluster.Open(cluster.Config{NodeID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	node.Start(func(*cluster.Group) cluster.LeaderFunc { return func(ctx context.Context, _ uint64) { <-ctx.Done() } }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := node.Group(1)
	if err := g.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	var tasks []service.NewTask
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("t%02d", i)
		tasks = append(tasks, service.NewTask{Task: &fsmpb.Task{Id: id, Queue: fmt.Sprintf("q%02d", i%10), ExecuteAt: 4e18}})
	}
	if _, err := service.New(g, g.FSM(), service.Config{}).CreateTasks(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newNodeCollector(node, t.TempDir(), labels.New(3)))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	scheduled := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "hourglass_tasks" {
			continue
		}
		for _, m := range f.GetMetric() {
			var queue, state string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "queue":
					queue = l.GetValue()
				case "state":
					state = l.GetValue()
				}
			}
			if state == "scheduled" {
				scheduled[queue] = m.GetGauge().GetValue()
			}
		}
	}
	var queues []string
	total := 0.0
	for q, n := range scheduled {
		queues = append(queues, q)
		total += n
	}
	slices.Sort(queues)
	if !slices.Equal(queues, []string{"(other)", "q00", "q01", "q02"}) || scheduled["(other)"] != 35 || total != 50 {
		t.Fatalf("scheduled tasks by queue label: %v", scheduled)
	}
}
