package httpapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/google/uuid"

	"github.com/hourglass-scheduler/hourglass/slots"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// A request that concerns more than one group (a list, a queue, a batch
// of tasks of several groups) is split: each group gets its part, as a
// request served by that group alone (here when this node leads it, else
// forwarded to its leader), and the answers are merged into one. The
// handlers of this file do the splitting and merging, one per route.

// groupAnswer is one group's answer to its part of a request.
type groupAnswer struct {
	group  slots.Group
	status int
	header http.Header
	body   []byte
}

func (g groupAnswer) ok() bool { return g.status >= 200 && g.status < 300 }

// answerRecorder keeps a group's answer in memory.
type answerRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *answerRecorder) Header() http.Header { return r.header }
func (r *answerRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *answerRecorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}

// groupPart is one group's part of a request: its method, path and query,
// and body.
type groupPart struct {
	group  slots.Group
	method string
	target string // path and query
	body   []byte
}

// askGroups sends each part to its group, all at once, and returns the
// answers in the parts' order.
func (a *API) askGroups(r *http.Request, parts []groupPart) []groupAnswer {
	answers := make([]groupAnswer, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = a.askGroup(r, p)
		}()
	}
	wg.Wait()
	return answers
}

func (a *API) askGroup(r *http.Request, p groupPart) groupAnswer {
	sub, err := a.groupRequest(r, p, bytes.NewReader(p.body))
	if err != nil {
		return groupAnswer{group: p.group, status: http.StatusInternalServerError,
			body: []byte(`{"error":{"code":"internal","message":"split request"}}`)}
	}
	rec := &answerRecorder{header: http.Header{}}
	a.serveGroup(rec, sub, p.group)
	return groupAnswer{group: p.group, status: rec.status, header: rec.header, body: rec.body.Bytes()}
}

// groupRequest is r's part p, for p's group alone, with body (nil: none).
func (a *API) groupRequest(r *http.Request, p groupPart, body io.Reader) (*http.Request, error) {
	sub, err := http.NewRequestWithContext(r.Context(), p.method, p.target, body)
	if err != nil {
		return nil, err
	}
	if sub.Body != nil && sub.Body != http.NoBody && sub.ContentLength == 0 {
		// A stream of unknown length: with ContentLength 0 a forward
		// (httputil.ReverseProxy) would send no body at all.
		sub.ContentLength = -1
	}
	for k, v := range r.Header {
		if k != "Content-Length" {
			sub.Header[k] = v
		}
	}
	sub.Header.Set(headerGroup, p.group.String())
	sub.Host, sub.RemoteAddr, sub.TLS = r.Host, r.RemoteAddr, r.TLS
	return sub, nil
}

// everyGroup makes the same part for every group of the cluster.
func (a *API) everyGroup(r *http.Request, body []byte) []groupPart {
	table := a.cfg.Node.Table()
	count := slots.Group(table.Groups())
	parts := make([]groupPart, 0, count)
	for g := slots.Group(1); g <= count; g++ {
		parts = append(parts, groupPart{group: g, method: r.Method, target: r.URL.RequestURI(), body: body})
	}
	return parts
}

// relay answers w with a group's answer as it is.
func relay(w http.ResponseWriter, ans groupAnswer) {
	for _, k := range []string{"Content-Type", "Retry-After", "WWW-Authenticate"} {
		if v := ans.header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(ans.body)))
	w.WriteHeader(ans.status)
	w.Write(ans.body)
}

// firstFailure is the first answer that is not a success, if any.
func firstFailure(answers []groupAnswer) (groupAnswer, bool) {
	for _, ans := range answers {
		if !ans.ok() {
			return ans, true
		}
	}
	return groupAnswer{}, false
}

// answerError is the error a failed answer carries (its status and
// message when it is ours).
func answerError(ans groupAnswer) *wire.ErrorBody {
	var resp wire.ErrorResponse
	if json.Unmarshal(ans.body, &resp) == nil && resp.Error.Code != "" {
		return &resp.Error
	}
	return &wire.ErrorBody{Code: wire.CodeUnavailable, Message: fmt.Sprintf("group %d answered HTTP %d", ans.group, ans.status)}
}

// readBody reads r's whole body, up to limit bytes.
func (a *API) readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, error) {
	return readRequestBody(w, r, int64(limit))
}

// pickGroup is a group for new tasks without ids: one this node leads
// (taking turns), so that the create needs no forwarding; any group
// when it leads none.
func (a *API) pickGroup() slots.Group {
	table := a.cfg.Node.Table()
	count := uint64(table.Groups())
	turn := a.turn.Add(1)
	for i := range count {
		g := slots.Group((turn+i)%count + 1)
		if b := a.backendOf(g); b != nil {
			if _, _, self := b.Group.Leader(); self {
				return g
			}
		}
	}
	return slots.Group(turn%count + 1)
}

// newID is a new task id (a UUIDv7, so time-sortable) in a slot of group
// g: its last three hex digits (of the UUID's 62 random bits) are drawn
// again until it lands in g (Steer). A group holds at least one slot of
// 1,024, so 4,096 draws rarely miss it; then another UUID is made.
func newID(table *slots.Table, g slots.Group) string {
	var buf [36]byte
	for {
		id := formatUUID(&buf, uuid.Must(uuid.NewV7()))
		if table.Steer(id, 3, g) {
			return string(id)
		}
	}
}

// formatUUID writes u into buf as uuid.UUID.String does (8-4-4-4-12
// lower-case hex digits), without allocating.
func formatUUID(buf *[36]byte, u uuid.UUID) []byte {
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:36], u[10:16])
	return buf[:]
}
