package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

// retry calls fn until it succeeds or fails with something other than
// unavailable (an election under way), for up to 20 s.
func retry[T any](t *testing.T, what string, fn func() (T, error)) (T, error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := fn()
		if err == nil || !errors.Is(err, client.ErrUnavailable) && !isConnErr(err) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// isConnErr: the node asked was the one killed, or not listening yet.
func isConnErr(err error) bool {
	var e *client.Error
	return !errors.As(err, &e)
}

// TestClusterLeaseSurvivesLeaderKill leases pull tasks through a follower,
// kills the leader, and works on through a survivor: the leases committed
// before the kill hold on the new leader (acks of their attempt succeed),
// those left alone run out and are offered again as the next attempt, and
// nothing else is offered twice.
func TestClusterLeaseSurvivesLeaderKill(t *testing.T) {
	nodes := startCluster(t)
	leader, follower := leaderAndFollower(t, nodes)
	c := client.New(follower.addr(), "")
	ctx := context.Background()
	const n = 20
	for i := 0; i < n; i++ {
		if _, err := c.CreateTask(ctx, client.CreateTaskRequest{ID: fmt.Sprintf("p-%02d", i), Queue: "jobs", Delay: "0s"}); err != nil {
			t.Fatal(err)
		}
	}
	leased, err := c.LeaseTasks(ctx, "jobs", client.LeaseRequest{Max: 10, Wait: "5s", Lease: "4s"})
	if err != nil || len(leased) != 10 {
		t.Fatalf("lease through a follower: %d tasks, %v", len(leased), err)
	}
	leader.srv.kill()

	// Ack half of the leased tasks on the new leader, before their lease ends.
	for _, task := range leased[:5] {
		if _, err := retry(t, "ack", func() (*client.Task, error) { return c.AckTask(ctx, task.ID, task.LeaseToken, "done") }); err != nil {
			t.Fatalf("ack of %s attempt %d after the failover: %v", task.ID, task.Attempt, err)
		}
	}
	// Lease everything else: the 10 never leased at once, the 5 left
	// alone once their lease has run out.
	attempts := map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	for len(attempts) < n-5 && time.Now().Before(deadline) {
		got, err := retry(t, "lease", func() ([]client.LeasedTask, error) {
			return c.LeaseTasks(ctx, "jobs", client.LeaseRequest{Max: 20, Wait: "2s", Lease: "30s"})
		})
		if err != nil {
			t.Fatal(err)
		}
		var acks []client.AckItem
		for _, task := range got {
			if _, seen := attempts[task.ID]; seen {
				t.Fatalf("task %s offered twice after the failover", task.ID)
			}
			attempts[task.ID] = task.Attempt
			acks = append(acks, client.AckItem{ID: task.ID, LeaseToken: task.LeaseToken})
		}
		if len(acks) == 0 {
			continue
		}
		// All in one request, with a stale ack of an attempt already
		// answered: that one alone is refused.
		acks = append(acks, client.AckItem{ID: leased[0].ID, LeaseToken: leased[0].LeaseToken})
		results, err := c.AckTasks(ctx, acks)
		if err != nil || len(results) != len(acks) {
			t.Fatalf("batch ack: %d results, %v", len(results), err)
		}
		for i, r := range results[:len(acks)-1] {
			if r.Error != nil {
				t.Fatalf("ack of %s: %+v", acks[i].ID, r.Error)
			}
		}
		if e := results[len(acks)-1].Error; e == nil || e.Code != client.CodeConflict {
			t.Fatalf("stale ack in a batch: %+v", e)
		}
	}
	for _, task := range leased[:5] {
		if _, again := attempts[task.ID]; again {
			t.Fatalf("task %s acked after the failover was offered again", task.ID)
		}
	}
	for _, task := range leased[5:] {
		if attempts[task.ID] != 2 {
			t.Fatalf("task %s, its lease left to run out, came back at attempt %d, want 2", task.ID, attempts[task.ID])
		}
	}
	q, err := c.GetQueue(ctx, "jobs")
	if err != nil || q.Tasks["succeeded"] != n {
		t.Fatalf("queue after the failover: %+v %v", q, err)
	}
	// The new leader counted the five leases that ran out.
	var survivors []*clusterNode
	for _, n := range nodes {
		if n != leader {
			survivors = append(survivors, n)
		}
	}
	resp, err := http.Get("http://" + strings.TrimPrefix(leaderOf(t, survivors, follower).addr(), "http://") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `hourglass_attempts_total{group="1",outcome="lease_expired",queue="jobs"} 5`; !strings.Contains(string(body), want) {
		t.Fatalf("the new leader's /metrics lacks %q", want)
	}
	t.Logf("leases survived the leader kill: 5 acked on the new leader, 5 re-offered at attempt 2, %d offered once", n-10)
}
