package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/service"
	"github.com/hourglass-scheduler/hourglass/slots"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// Node is what the API needs to know of this node and its cluster.
type Node interface {
	// Table says which group holds each slot; nil while this node does
	// not know the cluster's groups yet.
	Table() *slots.Table
	// ID is this node's id.
	ID() string
	Members() ([]cluster.Member, error)
	Status() cluster.NodeStatus
	// LeaderOf names a group's leader and its HTTP address, also of a
	// group this node holds no replica of (empty while none is known).
	LeaderOf(id slots.Group) (leaderID, httpAddr string)
	// PlacedReplicas lists the nodes a group is placed on.
	PlacedReplicas(id slots.Group) []cluster.Replica
	// RemoveMember takes a node out of the cluster's meta group, which
	// places the groups (on the meta group's leader only).
	RemoveMember(id string) error
}

// GroupView is what the API needs to know of one group's raft.
type GroupView interface {
	// Leader names the group's leader and its HTTP address; self when it
	// is this node.
	Leader() (id, httpAddr string, self bool)
	// VerifyLeader confirms with a quorum, at a moment after the call,
	// that this node still leads the group (a leader paused or cut off
	// may not know it was deposed).
	VerifyLeader() error
	Members() ([]cluster.Member, error)
	RemoveMember(id string) error
	Status() cluster.Status
}

// Backend is this node's replica of one group, as the API uses it.
type Backend struct {
	Service *service.Service
	Store   Store
	Group   GroupView
	Backups Backups
	// Workers serves pull workers; nil: the worker endpoints answer 503.
	Workers Workers

	id slots.Group // set by SetBackend
}

// headerGroup names the group a request is for, when a node forwards it
// to the group's leader (or a node fanning a request out over the groups
// sends it one part): the receiver serves it from that group alone.
const headerGroup = "Hourglass-Group"

// SetBackend makes b serve the requests of group id (this node's replica
// of it), from now on.
func (a *API) SetBackend(id slots.Group, b *Backend) {
	b.id = id
	a.groupsMu.Lock()
	defer a.groupsMu.Unlock()
	a.groups[id] = b
}

// RemoveBackend stops serving group id from this node's replica (which
// the placement moved away): its requests go to its leader.
func (a *API) RemoveBackend(id slots.Group) {
	a.groupsMu.Lock()
	defer a.groupsMu.Unlock()
	delete(a.groups, id)
}

func (a *API) backendOf(id slots.Group) *Backend {
	a.groupsMu.RLock()
	defer a.groupsMu.RUnlock()
	return a.groups[id]
}

type backendKey struct{}

// backend is the group replica a group's handler serves r from (set by
// serveGroup).
func (a *API) backend(r *http.Request) *Backend {
	return r.Context().Value(backendKey{}).(*Backend)
}

// groupOfRequest says which group r is for: the group a forwarding node
// named, or the group of the task id in its path; all is true when r
// concerns every group (a list, a queue, the cluster).
func (a *API) groupOfRequest(r *http.Request, pattern string) (id slots.Group, all bool, err *apiError) {
	if h := r.Header.Get(headerGroup); h != "" {
		n, perr := strconv.ParseUint(h, 10, 32)
		// Group 0, the meta group, only for a member's removal.
		if perr != nil || n == 0 && pattern != removeNodePattern {
			return 0, false, invalid("%s: %q is not a group id", headerGroup, h)
		}
		return slots.Group(n), false, nil
	}
	table := a.cfg.Node.Table()
	if table == nil {
		return 0, false, unavailable("this node is joining the cluster and does not know its groups yet; retry")
	}
	if taskRoutes[pattern] {
		// The mux sets path values only as it serves: /v1/tasks/{id}...
		return table.GroupOf(pathSegment(r, 3)), false, nil
	}
	if table.Groups() == 1 && pattern != removeNodePattern {
		return 1, false, nil // one group holds everything
	}
	return 0, true, nil
}

// pathSegment is the i-th segment of r's path ("" when it has fewer).
func pathSegment(r *http.Request, i int) string {
	segments := strings.Split(r.URL.Path, "/")
	if i < len(segments) {
		return segments[i]
	}
	return ""
}

// removeNodePattern removes a member from every group, and from the meta
// group, which places them.
const removeNodePattern = "DELETE /v1/cluster/nodes/{id}"

// taskRoutes are the routes about one task or schedule, named in their
// path (a schedule and its occurrences are in the group of its id).
var taskRoutes = map[string]bool{
	"GET /v1/schedules/{id}":         true,
	"PATCH /v1/schedules/{id}":       true,
	"DELETE /v1/schedules/{id}":      true,
	"POST /v1/schedules/{id}/pause":  true,
	"POST /v1/schedules/{id}/resume": true,
	"GET /v1/tasks/{id}":             true,
	"DELETE /v1/tasks/{id}":          true,
	"PATCH /v1/tasks/{id}":           true,
	"POST /v1/tasks/{id}/ack":        true,
	"POST /v1/tasks/{id}/nack":       true,
	"POST /v1/tasks/{id}/extend":     true,
}

// serveGroup serves r from group id: on this node when it leads the group
// (or r is a stale read and this node has a replica), else by forwarding
// r to the group's leader.
func (a *API) serveGroup(w http.ResponseWriter, r *http.Request, id slots.Group) (route string) {
	b := a.backendOf(id)
	stale := r.Method == http.MethodGet && r.URL.Query().Get("stale") == "true"
	if b == nil || !stale {
		leaderID, addr, self, err := a.leader(r, id, b)
		if err != nil {
			a.writeError(w, err)
			return routeForwarded
		}
		if !self {
			r.Header.Set(headerGroup, id.String())
			a.forward(w, r, id, b, leaderID, addr)
			return routeForwarded
		}
		// A read answered from this node's state is linearizable only if
		// no other leader was elected meanwhile: one paused or cut off
		// may still take itself for the leader, and answer with what a
		// newer leader has since changed. Writes need no check: raft
		// refuses them there.
		if r.Method == http.MethodGet && b != nil {
			if err := b.Group.VerifyLeader(); err != nil {
				why := err.Error()
				if errors.Is(err, cluster.ErrNotLeader) || errors.Is(err, cluster.ErrIndeterminate) {
					why = "another was elected"
				}
				a.writeError(w, unavailable("this node could not confirm with the others that it still leads group %d (%s); retry", id, why))
				return routeForwarded
			}
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), backendKey{}, b))
	a.mux.ServeHTTP(w, r)
	return r.Pattern // set by the mux
}

// readCloser is a request body of bytes read before.
func readCloser(body []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(body)) }

// noRouteAcross answers a request of a route that has no handler across
// groups: a bug (TestEveryRouteIsRoutedAcrossGroups keeps it from
// happening).
func (a *API) noRouteAcross(w http.ResponseWriter, r *http.Request) {
	a.writeError(w, &apiError{http.StatusInternalServerError, wire.CodeInternal,
		"no way to serve " + r.Method + " " + r.URL.Path + " across the cluster's groups"})
}
