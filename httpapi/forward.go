package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// Cluster is what the API needs to know of the cluster.
type Cluster interface {
	// Leader names the leader and its HTTP address; self when it is us.
	Leader() (id, httpAddr string, self bool)
	Members() ([]cluster.Member, error)
	RemoveMember(id string) error
	Status() cluster.Status
}

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
	if r.Method == http.MethodGet && (r.URL.Path == "/v1/cluster" || r.URL.Path == "/v1/openapi.json" || r.URL.Query().Get("stale") == "true") {
		return true
	}
	return len(r.URL.Path) < 4 || r.URL.Path[:4] != "/v1/"
}

// leader waits, up to LeaderWait, for a leader to be known.
func (a *API) leader(r *http.Request) (id, addr string, self bool, err error) {
	deadline := time.Now().Add(a.cfg.LeaderWait)
	for {
		id, addr, self = a.cfg.Cluster.Leader()
		switch {
		case self:
			return id, addr, true, nil
		case id != "" && addr != "":
			return id, addr, false, nil
		case time.Now().After(deadline):
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

// forward proxies r to the leader at addr and relays its answer as is.
func (a *API) forward(w http.ResponseWriter, r *http.Request, leaderID, addr string) {
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
	self := a.cfg.Cluster.Status().NodeID
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = r.Host
			pr.Out.Header.Set(headerForwarded, self)
		},
		Transport: a.forwardTransport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			a.writeError(w, unavailable("the leader %s at %s did not answer: %v; retry", leaderID, addr, err))
		},
	}
	proxy.ServeHTTP(w, r)
}

func (a *API) getCluster(w http.ResponseWriter, r *http.Request) {
	members, err := a.cfg.Cluster.Members()
	if err != nil {
		a.writeError(w, err)
		return
	}
	st := a.cfg.Cluster.Status()
	info := wire.ClusterInfo{Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, Nodes: []wire.ClusterNode{}}
	if id, addr, _ := a.cfg.Cluster.Leader(); id != "" {
		info.Leader = &wire.ClusterLeader{ID: id, HTTPAddr: addr}
	}
	for _, m := range members {
		state := "joining"
		switch {
		case m.Leader:
			state = "leader"
		case m.InRaft && m.Voter:
			state = "follower"
		case m.InRaft:
			state = "nonvoter"
		}
		info.Nodes = append(info.Nodes, wire.ClusterNode{
			ID: m.ID, HTTPAddr: m.HTTPAddr, RaftAddr: m.RaftAddr, GossipAddr: m.GossipAddr,
			State: state, Voter: m.Voter, Alive: m.Alive,
		})
	}
	writeJSON(w, http.StatusOK, info)
}

func (a *API) removeNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" {
		a.writeError(w, invalid("id: required"))
		return
	}
	if err := a.cfg.Cluster.RemoveMember(id); err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": id})
}
