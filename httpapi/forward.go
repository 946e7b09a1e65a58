package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/slots"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// headerForwarded marks a request one node forwarded to another, so it is
// never forwarded twice (a leader change in between answers 503 instead).
const headerForwarded = "Hourglass-Forwarded-By"

// servedLocally reports whether r is answered by whichever node gets it:
// stale reads, the cluster view, the API's description, health, metrics,
// the console, and a path or method no route serves (404: nothing to
// relay).
func (a *API) servedLocally(r *http.Request) bool {
	if _, pattern := a.mux.Handler(r); pattern == "" || pattern == "/" {
		return true
	}
	if r.Method == http.MethodGet && (r.URL.Path == "/v1/cluster" || r.URL.Path == "/v1/openapi.json") {
		return true
	}
	return len(r.URL.Path) < 4 || r.URL.Path[:4] != "/v1/"
}

// leader waits, up to LeaderWait, for group g's leader to be known; b is
// this node's replica of g.
func (a *API) leader(r *http.Request, g slots.Group, b *Backend) (id, addr string, self bool, err *apiError) {
	deadline := time.Now().Add(a.cfg.LeaderWait)
	for {
		if b != nil {
			id, addr, self = b.Group.Leader()
		} else {
			// No replica here: gossip says who leads the group.
			id, addr = a.cfg.Node.LeaderOf(g)
			self = id == a.cfg.Node.ID() && id != ""
		}
		switch {
		case self:
			return id, addr, true, nil
		case id != "" && addr != "":
			return id, addr, false, nil
		case time.Now().After(deadline):
			if id == "" && b != nil {
				if st := b.Group.Status(); st.State == "Leader" {
					return "", "", false, unavailable("this node was elected leader and is still applying the raft log of earlier terms (applied %d of %d; waited %v); retry",
						st.AppliedIndex, st.CommitIndex, a.cfg.LeaderWait)
				}
			}
			if id == "" {
				return "", "", false, unavailable("no leader is elected (waited %v); a majority of the cluster may be down", a.cfg.LeaderWait)
			}
			return "", "", false, unavailable("the leader %s has not published its HTTP address yet", id)
		}
		select {
		case <-r.Context().Done():
			return "", "", false, unavailable("gave up waiting for a leader: %v", r.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func unavailable(format string, args ...any) *apiError {
	return &apiError{http.StatusServiceUnavailable, wire.CodeUnavailable, fmt.Sprintf(format, args...)}
}

// errLeaderChanged ends a forwarded request whose group elected another
// leader meanwhile.
var errLeaderChanged = errors.New("the group elected another leader")

// forward proxies r to leaderID, group g's leader at addr, and relays
// its answer as is. If the group elects another leader meanwhile (the
// one it went to was paused, or cut off), it gives up rather than wait
// for a node that may never answer.
func (a *API) forward(w http.ResponseWriter, r *http.Request, g slots.Group, b *Backend, leaderID, addr string) {
	if by := r.Header.Get(headerForwarded); by != "" {
		a.writeError(w, unavailable("forwarded by %s, but this node is not the leader either (leadership is changing); retry", by))
		return
	}
	scheme := "http://"
	if a.cfg.ForwardTLS != nil {
		scheme = "https://"
	}
	target, err := url.Parse(scheme + addr)
	if err != nil {
		a.writeError(w, unavailable("the leader %s publishes a bad HTTP address %q", leaderID, addr))
		return
	}
	self := a.cfg.Node.ID()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = r.Host
			pr.Out.Header.Set(headerForwarded, self)
		},
		Transport: a.forwardTransport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(context.Cause(r.Context()), errLeaderChanged) {
				a.writeError(w, unavailable("group %d elected another leader while the request was with %s, which did not answer; whether it took effect is not known; retry", g, leaderID))
				return
			}
			a.writeError(w, unavailable("the leader %s at %s did not answer: %v; retry", leaderID, addr, err))
		},
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	// A timer, not a goroutine: most forwards are answered before it
	// first fires.
	var watch *time.Timer
	watch = time.AfterFunc(time.Hour, func() {
		if ctx.Err() != nil {
			return // answered meanwhile
		}
		var now string
		if b != nil {
			now, _, _ = b.Group.Leader()
		} else {
			now, _ = a.cfg.Node.LeaderOf(g)
		}
		if now != "" && now != leaderID {
			cancel(errLeaderChanged)
			return
		}
		watch.Reset(leaderCheckEvery)
	})
	watch.Reset(leaderCheckEvery) // set, now that the callback can see watch
	defer watch.Stop()
	proxy.ServeHTTP(w, r.WithContext(ctx))
}

// leaderCheckEvery is how often a forwarded request looks whether its
// group elected another leader meanwhile.
const leaderCheckEvery = 100 * time.Millisecond

func (a *API) getCluster(w http.ResponseWriter, r *http.Request) {
	members, err := a.cfg.Node.Members()
	if err != nil {
		a.writeError(w, err)
		return
	}
	info := wire.ClusterInfo{Nodes: []wire.ClusterNode{}, Groups: []wire.ClusterGroup{}}
	for _, m := range members {
		info.Nodes = append(info.Nodes, wire.ClusterNode{
			ID: m.ID, HTTPAddr: m.HTTPAddr, RaftAddr: m.RaftAddr, GossipAddr: m.GossipAddr,
			State: memberState(m), Voter: m.Voter, Alive: m.Alive,
		})
	}
	table := a.cfg.Node.Table()
	statuses := map[slots.Group]cluster.Status{}
	for _, st := range a.cfg.Node.Status().Groups {
		statuses[st.Group] = st
	}
	for id := slots.Group(1); table != nil && id <= slots.Group(table.Groups()); id++ {
		st, here := statuses[id]
		b := a.backendOf(id)
		var g wire.ClusterGroup
		if here && b != nil {
			var err error
			if g, err = a.groupInfo(st, b, table); err != nil {
				a.writeError(w, err)
				return
			}
		} else {
			g = a.placedGroupInfo(id, table)
		}
		info.Groups = append(info.Groups, g)
		if id == 1 {
			info.Leader, info.Term, info.CommitIndex, info.AppliedIndex = g.Leader, g.Term, g.CommitIndex, g.AppliedIndex
		}
	}
	writeJSON(w, http.StatusOK, info)
}

// placedGroupInfo describes a group this node holds no replica of, as
// gossip tells it: its leader and where it is placed (its raft indexes
// and task count are its replicas' to tell).
func (a *API) placedGroupInfo(id slots.Group, table *slots.Table) wire.ClusterGroup {
	g := wire.ClusterGroup{ID: uint32(id), Slots: len(table.Slots(id)), Replicas: []wire.GroupReplica{}}
	if leader, addr := a.cfg.Node.LeaderOf(id); leader != "" {
		g.Leader = &wire.ClusterLeader{ID: leader, HTTPAddr: addr}
	}
	for _, r := range a.cfg.Node.PlacedReplicas(id) {
		g.Replicas = append(g.Replicas, wire.GroupReplica{ID: r.ID, State: r.State, Alive: r.Alive})
	}
	return g
}

// groupInfo describes one group as this node's replica b sees it.
func (a *API) groupInfo(st cluster.Status, b *Backend, table *slots.Table) (wire.ClusterGroup, error) {
	g := wire.ClusterGroup{ID: uint32(st.Group), Local: true, Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		Lag: st.CommitIndex - st.AppliedIndex, Replicas: []wire.GroupReplica{}}
	if table != nil {
		g.Slots = len(table.Slots(st.Group))
	}
	if id, addr, _ := b.Group.Leader(); id != "" {
		g.Leader = &wire.ClusterLeader{ID: id, HTTPAddr: addr}
	}
	members, err := b.Group.Members()
	if err != nil {
		return g, err
	}
	for _, m := range members {
		if m.InRaft {
			g.Replicas = append(g.Replicas, wire.GroupReplica{ID: m.ID, State: memberState(m), Alive: m.Alive})
		}
	}
	queues, _, err := b.Store.QueuesPage("", math.MaxInt)
	if err != nil {
		return g, err
	}
	for _, q := range queues {
		g.Tasks += q.Counts.Total()
	}
	return g, nil
}

// memberState is leader, follower or nonvoter for a member of a raft
// configuration, and joining for one only gossip knows.
func memberState(m cluster.Member) string {
	switch {
	case m.Leader:
		return "leader"
	case m.InRaft && m.Voter:
		return "follower"
	case m.InRaft:
		return "nonvoter"
	}
	return "joining"
}

func (a *API) removeNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" {
		a.writeError(w, invalid("id: required"))
		return
	}
	var err error
	if r.Header.Get(headerGroup) == cluster.MetaGroup.String() {
		err = a.cfg.Node.RemoveMember(id)
	} else {
		err = a.backend(r).Group.RemoveMember(id)
	}
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": id})
}
