package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

// The server refuses to deliver webhooks to its own API and raft ports, in
// any spelling, and to a --target-deny network.
func TestServerRefusesOwnListenersAsTargets(t *testing.T) {
	denied := freeAddr(t)
	srv := startServer(t, t.TempDir(), freeAddr(t), "--target-deny", "127.0.0.0/30")
	_, httpPort, _ := net.SplitHostPort(strings.TrimPrefix(srv.addr, "http://"))
	_, raftPort, _ := net.SplitHostPort(srv.raftAddr)
	c := client.New(srv.addr, "")
	ctx := context.Background()
	own, deny, metadata := "cluster's own listeners", "--target-deny", "link-local"
	cases := []struct{ url, why string }{
		{srv.addr + "/v1/tasks", own},
		{"http://localhost:" + httpPort + "/v1/tasks", own},
		{"http://[::ffff:127.0.0.1]:" + httpPort + "/v1/tasks", own},
		{"http://127.0.0.1:" + raftPort + "/", own},
		{"http://" + denied + "/", deny},
		{"http://169.254.169.254/latest/meta-data/", metadata},
	}
	urls := make([]string, len(cases))
	for i, c := range cases {
		urls[i] = c.url
	}
	ids := make([]string, len(urls))
	for i, u := range urls {
		task, err := c.CreateTask(ctx, client.CreateTaskRequest{Queue: "ssrf", Delay: "10ms", MaxAttempts: 1, Target: &client.Target{URL: u, Timeout: "2s"}})
		if err != nil {
			t.Fatalf("create %s: %v", u, err)
		}
		ids[i] = task.ID
	}
	for i, id := range ids {
		var task *client.Task
		waitFor(t, 20*time.Second, fmt.Sprintf("the task to %s to die", urls[i]), func() bool {
			var err error
			task, err = c.GetTask(ctx, id)
			return err == nil && task.State == "dead"
		})
		if !strings.Contains(task.LastError, "target address refused") || !strings.Contains(task.LastError, cases[i].why) {
			t.Errorf("%s: last_error %q, want the target refused as %s", urls[i], task.LastError, cases[i].why)
		}
	}
}
