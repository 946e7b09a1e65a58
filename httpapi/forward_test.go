package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/cluster"
)

// apiNode is a cluster node with its API on a real port.
type apiNode struct {
	node *cluster.Node
	srv  *httptest.Server
}

func startAPICluster(t *testing.T) map[string]*apiNode {
	t.Helper()
	nodes := map[string]*apiNode{}
	seed := ""
	for _, id := range []string{"n1", "n2", "n3"} {
		srv := httptest.NewUnstartedServer(nil)
		var join []string
		if seed != "" {
			join = []string{seed}
		}
		node, err := cluster.Open(cluster.Config{
			NodeID: id, DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
			HTTPAdvertise: srv.Listener.Addr().String(), Join: join, BootstrapExpect: 3, Groups: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		api := New(Config{Node: node, Health: node, LeaderWait: time.Second})
		node.Start(func(g *cluster.Group) cluster.LeaderFunc {
			api.SetBackend(g.ID(), groupBackend(g))
			return func(ctx context.Context, _ uint64) { <-ctx.Done() }
		}, nil)
		if seed == "" {
			seed = node.Status().GossipAddr
		}
		srv.Config.Handler = api
		srv.Start()
		n := &apiNode{node: node, srv: srv}
		nodes[id] = n
		t.Cleanup(func() { srv.Close(); node.Close() })
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		agreed := 0
		for _, n := range nodes {
			if g := n.node.Group(1); g == nil {
				continue
			} else if id, addr, _ := g.Leader(); id != "" && addr != "" {
				agreed++
			}
		}
		if agreed == len(nodes) {
			return nodes
		}
		if time.Now().After(deadline) {
			t.Fatal("cluster did not form within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAnyNodeAcceptsAnyRequest(t *testing.T) {
	nodes := startAPICluster(t)
	var follower, leader *apiNode
	for _, n := range nodes {
		if n.node.Group(1).IsLeader() {
			leader = n
		} else {
			follower = n
		}
	}
	ts := &testServer{Server: follower.srv, node: follower.node, group: follower.node.Group(1)}

	created := ts.do(t, "POST", "/v1/tasks", `{"id":"fwd","delay":"1h",`+validTarget+`}`)
	if created.status != http.StatusCreated || created.task(t).ID != "fwd" {
		t.Fatalf("create through a follower: %d %s", created.status, created.body)
	}
	// The default read goes to the leader, which has the task at once.
	if r := ts.do(t, "GET", "/v1/tasks/fwd", ""); r.status != http.StatusOK {
		t.Fatalf("read through a follower: %d %s", r.status, r.body)
	}
	// A stale read is answered from the follower's own copy.
	deadline := time.Now().Add(5 * time.Second)
	for ts.do(t, "GET", "/v1/tasks/fwd?stale=true", "").status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("stale read never saw the task")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Errors come back from the leader unchanged.
	if r := ts.do(t, "POST", "/v1/tasks", `{"delay":"-1s",`+validTarget+`}`); r.status != 400 || !strings.Contains(r.errorBody(t).Message, "delay") {
		t.Fatalf("bad input through a follower: %d %s", r.status, r.body)
	}
	// A request marked forwarded is not forwarded again.
	if r := ts.do(t, "POST", "/v1/tasks", `{"delay":"1s",`+validTarget+`}`, headerForwarded, "n9"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("twice-forwarded request: %d %s", r.status, r.body)
	}

	// A path or method no route serves is answered 404 by the follower
	// itself (marked as forwarded once already, it would be a 503 if
	// relayed).
	if r := ts.do(t, "GET", "/v1/nothing/here", "", headerForwarded, "n9"); r.status != http.StatusNotFound {
		t.Fatalf("unknown path through a follower: %d %s", r.status, r.body)
	}
	if r := ts.do(t, "PUT", "/v1/tasks/fwd", "{}", headerForwarded, "n9"); r.status != http.StatusNotFound {
		t.Fatalf("unknown method through a follower: %d %s", r.status, r.body)
	}

	r := ts.do(t, "GET", "/v1/cluster", "")
	var info client.ClusterInfo
	if err := json.Unmarshal(r.body, &info); err != nil || info.Leader == nil || len(info.Nodes) != 3 {
		t.Fatalf("cluster view: %d %s", r.status, r.body)
	}
	if info.Leader.ID != leader.node.Status().NodeID || info.Leader.HTTPAddr != leader.srv.Listener.Addr().String() {
		t.Fatalf("cluster view names leader %+v", info.Leader)
	}
	for _, n := range info.Nodes {
		if !n.Alive || !n.Voter || n.State == "joining" || n.HTTPAddr == "" {
			t.Fatalf("node %+v", n)
		}
	}
	if r := ts.do(t, "DELETE", "/v1/cluster/nodes/nobody", ""); r.status != http.StatusNotFound {
		t.Fatalf("remove unknown node: %d %s", r.status, r.body)
	}
}

func TestNoLeaderIsA503WithinBoundedTime(t *testing.T) {
	nodes := startAPICluster(t)
	// The survivor is chosen before anything stops: stopping the leader
	// hands leadership to another node, which then leads too.
	var survivor *apiNode
	for _, n := range nodes {
		if survivor == nil && !n.node.Group(1).IsLeader() {
			survivor = n
		}
	}
	for id, n := range nodes {
		if n == survivor {
			continue
		}
		n.srv.Close()
		if err := n.node.Close(); err != nil {
			t.Fatal(err)
		}
		delete(nodes, id)
	}
	// Stopping the leader hands leadership over, possibly to the survivor,
	// which then leads a lost cluster until its lease runs out. Wait until
	// it has seen no leader for a while.
	deadline := time.Now().Add(15 * time.Second)
	var leaderless time.Time
	for {
		if id, _, _ := survivor.node.Group(1).Leader(); id != "" {
			leaderless = time.Time{}
		} else if leaderless.IsZero() {
			leaderless = time.Now()
		}
		if !leaderless.IsZero() && time.Since(leaderless) > 1500*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the survivor never settled without a leader")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts := &testServer{Server: survivor.srv, node: survivor.node, group: survivor.node.Group(1)}
	start := time.Now()
	r := ts.do(t, "POST", "/v1/tasks", `{"delay":"1h",`+validTarget+`}`)
	took := time.Since(start)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.errorBody(t).Message, "no leader") {
		t.Fatalf("write without quorum: %d %s", r.status, r.body)
	}
	if took > 5*time.Second {
		t.Fatalf("answered after %v", took)
	}
	if n := ts.taskCount(t); n != 0 {
		t.Fatalf("%d tasks stored without quorum", n)
	}
}
