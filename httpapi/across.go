package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/scheduler"
	"github.com/hourglass-scheduler/hourglass/slots"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// acrossGroups are the handlers of the routes that concern more than one
// group, by pattern: they split a request over the groups and merge the
// answers (see fanout.go). A route not here is served by one group.
func (a *API) acrossGroups() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"POST /v1/tasks":                  a.createAcross,
		"POST /v1/tasks/batch":            a.batchAcross,
		"GET /v1/tasks":                   a.listAcross,
		"GET /v1/queues":                  a.queuesAcross,
		"GET /v1/queues/{queue}":          a.queueAcross,
		"PUT /v1/queues/{queue}":          a.queueWriteAcross,
		"POST /v1/queues/{queue}/pause":   a.queueWriteAcross,
		"POST /v1/queues/{queue}/resume":  a.queueWriteAcross,
		"DELETE /v1/queues/{queue}":       a.queueDeleteAcross,
		"POST /v1/queues/{queue}/redrive": a.redriveAcross,
		"POST /v1/queues/{queue}/cancel":  a.bulkAcross,
		"POST /v1/queues/{queue}/shift":   a.bulkAcross,
		"GET /v1/stats/due":               a.dueStatsAcross,
		"POST /v1/schedules":              a.createAcross,
		"GET /v1/schedules":               a.schedulesAcross,
		"POST /v1/tasks/ack":              a.acksAcross,
		leasePattern:                      a.leaseAcross,
		"DELETE /v1/cluster/nodes/{id}":   a.removeNodeAcross,
		"GET " + snapshotPath:             a.snapshotAcross,
		"POST " + snapshotPath:            a.restoreAcross,
	}
}

// createAcross sends a new task to the group of its id, or, without an
// id, to a group this node leads (whose handler then makes an id in
// that group's slots).
func (a *API) createAcross(w http.ResponseWriter, r *http.Request) {
	body, err := a.readBody(w, r, a.cfg.Limits.MaxPayload+bodySlack)
	if err != nil {
		a.writeError(w, err)
		return
	}
	var peek struct {
		ID string `json:"id"`
	}
	g := slots.Group(0)
	if mayNameID(body) && json.Unmarshal(body, &peek) == nil && peek.ID != "" {
		g = a.cfg.Node.Table().GroupOf(peek.ID)
	} else {
		g = a.pickGroup() // a bad body gets its answer there
	}
	r.Body = readCloser(body)
	r.ContentLength = int64(len(body))
	a.serveGroup(w, r, g)
}

// batchAcross sends a batch whole to one group when its tasks all belong
// there (or have no ids); otherwise it checks the whole batch, splits it
// by group, and answers every task in request order. A batch is atomic
// per group: a group that fails fails all of its tasks, each with the
// error.
func (a *API) batchAcross(w http.ResponseWriter, r *http.Request) {
	body, err := a.readBody(w, r, a.cfg.Limits.MaxBodySize)
	if err != nil {
		a.writeError(w, err)
		return
	}
	table := a.cfg.Node.Table()
	var peek struct {
		Tasks []struct {
			ID string `json:"id"`
		} `json:"tasks"`
	}
	target := slots.Group(0)
	split := false
	if mayNameID(body) && json.Unmarshal(body, &peek) == nil {
		for _, t := range peek.Tasks {
			if t.ID == "" {
				continue
			}
			g := table.GroupOf(t.ID)
			if target != 0 && g != target {
				split = true
				break
			}
			target = g
		}
	}
	if !split {
		if target == 0 {
			target = a.pickGroup()
		}
		r.Body = readCloser(body)
		r.ContentLength = int64(len(body))
		a.serveGroup(w, r, target)
		return
	}

	// Check every task first, so an error names the task's place in the
	// request, then send each group its tasks.
	var req wire.BatchRequest
	if err := decodeJSON(body, &req); err != nil {
		a.writeError(w, err)
		return
	}
	if len(req.Tasks) > a.cfg.Limits.MaxBatch {
		a.writeError(w, invalid("tasks: %d tasks, over the batch limit of %d", len(req.Tasks), a.cfg.Limits.MaxBatch))
		return
	}
	b := &taskBuilder{limits: a.cfg.Limits, now: a.cfg.Now()}
	for i := range req.Tasks {
		if _, err := b.build(&req.Tasks[i], "tasks["+strconv.Itoa(i)+"]."); err != nil {
			a.writeError(w, err)
			return
		}
	}
	fresh := a.pickGroup() // for the tasks without ids
	groupOf := func(i int) slots.Group {
		if id := req.Tasks[i].ID; id != "" {
			return table.GroupOf(id)
		}
		return fresh
	}
	results, _, err := scatter(a, r, req.Tasks, groupOf,
		func(tasks []wire.CreateTaskRequest) any { return wire.BatchRequest{Tasks: tasks} },
		func(resp *wire.BatchResponse) []wire.BatchResult { return resp.Results },
		func(e *wire.ErrorBody) wire.BatchResult { return wire.BatchResult{Error: e} })
	if err != nil {
		a.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.BatchResponse{Results: results})
}

// mayNameID reports whether body may hold an "id" key: false only when no
// string in it can decode to "id" (no escapes, and encoding/json matches
// keys in any case: only ASCII I and D fold to i and d). Most creates name
// no id, and then need no look inside to be routed.
func mayNameID(body []byte) bool {
	if bytes.Contains(body, []byte(`\u`)) {
		return true
	}
	for i := bytes.IndexByte(body, '"'); i >= 0 && i+3 < len(body); {
		if body[i+1]|0x20 == 'i' && body[i+2]|0x20 == 'd' && body[i+3] == '"' {
			return true
		}
		next := bytes.IndexByte(body[i+1:], '"')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

// scatter sends each group its items of a request (wrap makes a group's
// request body of them), all groups at once, and gathers their results
// (unwrap takes them from a group's answer) in the items' order. Each item
// of a group that failed, or answered with another number of results,
// gets failed(the error). The answers are returned too.
func scatter[I, R, Resp any](a *API, r *http.Request, items []I, groupOf func(int) slots.Group,
	wrap func([]I) any, unwrap func(*Resp) []R, failed func(*wire.ErrorBody) R) ([]R, []groupAnswer, error) {
	places := map[slots.Group][]int{}
	for i := range items {
		g := groupOf(i)
		places[g] = append(places[g], i)
	}
	var parts []groupPart
	for g, idx := range places {
		mine := make([]I, len(idx))
		for j, i := range idx {
			mine[j] = items[i]
		}
		data, err := json.Marshal(wrap(mine))
		if err != nil {
			return nil, nil, err
		}
		parts = append(parts, groupPart{group: g, method: r.Method, target: r.URL.RequestURI(), body: data})
	}
	answers := a.askGroups(r, parts)
	out := make([]R, len(items))
	for k, ans := range answers {
		idx := places[parts[k].group]
		var resp Resp
		var got []R
		if ans.ok() && json.Unmarshal(ans.body, &resp) == nil {
			got = unwrap(&resp)
		}
		for j, i := range idx {
			if len(got) != len(idx) {
				out[i] = failed(answerError(ans))
			} else {
				out[i] = got[j]
			}
		}
	}
	return out, answers, nil
}

// listAcross merges the groups' pages in the order each group lists in
// (by id, or by state, queue and id): the page token says, per group,
// where its next page starts.
func (a *API) listAcross(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "queue", "state", "limit", "page_token", "stale"); err != nil {
		a.writeError(w, err)
		return
	}
	q := r.URL.Query()
	limit, err := listLimit(r, defaultListLimit)
	if err != nil {
		a.writeError(w, err)
		return
	}
	parts := a.everyGroup(r, nil)
	cursors, err := decodeGroupsToken(q.Get("page_token"), len(parts))
	if err != nil {
		a.writeError(w, err)
		return
	}
	var asked []groupPart
	for i, p := range parts {
		if cursors[i].done {
			continue
		}
		sq := cloneQuery(q)
		sq.Del("page_token")
		if cursors[i].after != nil {
			sq.Set("page_token", base64.RawURLEncoding.EncodeToString(cursors[i].after))
		}
		p.target = r.URL.Path + "?" + sq.Encode()
		asked = append(asked, p)
	}
	answers := a.askGroups(r, asked)
	if failed, ok := firstFailure(answers); ok {
		relay(w, failed)
		return
	}
	filtered := q.Get("queue") != "" || q.Get("state") != ""
	type item struct {
		raw json.RawMessage
		key []byte
	}
	type stream struct {
		group int // index into cursors
		items []item
		more  bool
	}
	streams := make([]*stream, len(answers))
	for k, ans := range answers {
		var page struct {
			Tasks         []json.RawMessage `json:"tasks"`
			NextPageToken string            `json:"next_page_token"`
		}
		if err := json.Unmarshal(ans.body, &page); err != nil {
			a.writeError(w, err)
			return
		}
		s := &stream{group: int(asked[k].group) - 1, more: page.NextPageToken != ""}
		for _, raw := range page.Tasks {
			var t struct{ ID, State, Queue string }
			if err := json.Unmarshal(raw, &t); err != nil {
				a.writeError(w, err)
				return
			}
			s.items = append(s.items, item{raw: raw, key: listKey(filtered, t.State, t.Queue, t.ID)})
		}
		streams[k] = s
	}
	out := struct {
		Tasks         []json.RawMessage `json:"tasks"`
		NextPageToken string            `json:"next_page_token,omitempty"`
	}{Tasks: []json.RawMessage{}}
	size := 0
	taken := make([]int, len(streams))
	for len(out.Tasks) < limit && size < a.cfg.Limits.MaxListBytes {
		best := -1
		for k, s := range streams {
			if taken[k] < len(s.items) && (best < 0 || bytes.Compare(s.items[taken[k]].key, streams[best].items[taken[best]].key) < 0) {
				best = k
			}
		}
		if best < 0 {
			break
		}
		it := streams[best].items[taken[best]]
		out.Tasks = append(out.Tasks, it.raw)
		size += len(it.raw)
		taken[best]++
	}
	for k, s := range streams {
		c := &cursors[s.group]
		switch {
		case taken[k] > 0:
			c.after = s.items[taken[k]-1].key
			c.done = taken[k] == len(s.items) && !s.more
		case len(s.items) == 0 && !s.more:
			c.done = true
		}
	}
	if slices.ContainsFunc(cursors, func(c groupCursor) bool { return !c.done }) {
		out.NextPageToken = encodeGroupsToken(cursors)
	}
	writeJSON(w, http.StatusOK, out)
}

// listKey is where a listed task stands in its group's list (the cursor
// after it): its id, or with a filter its by-state key.
func listKey(filtered bool, state, queue, id string) []byte {
	if !filtered {
		return []byte(id)
	}
	s, _ := fsm.ParseState(state)
	return fsm.StateKey(s, queue, id)
}

// groupCursor is where a group's next page starts: after the key after
// (nil: at the first), or nowhere (done).
type groupCursor struct {
	after []byte
	done  bool
}

// groupsTokenMark starts the page token of a list across groups.
const groupsTokenMark = 'G'

func encodeGroupsToken(cursors []groupCursor) string {
	buf := []byte{groupsTokenMark}
	for _, c := range cursors {
		switch {
		case c.done:
			buf = append(buf, 2)
		case c.after == nil:
			buf = append(buf, 0)
		default:
			buf = append(buf, 1)
			buf = binary.AppendUvarint(buf, uint64(len(c.after)))
			buf = append(buf, c.after...)
		}
	}
	return base64.RawURLEncoding.EncodeToString(buf)
}

func decodeGroupsToken(s string, count int) ([]groupCursor, error) {
	cursors := make([]groupCursor, count)
	if s == "" {
		return cursors, nil
	}
	bad := invalid("page_token: not a token from a previous page of this list")
	buf, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(buf) == 0 || buf[0] != groupsTokenMark {
		return nil, bad
	}
	buf = buf[1:]
	for i := range cursors {
		if len(buf) == 0 {
			return nil, bad
		}
		kind := buf[0]
		buf = buf[1:]
		switch kind {
		case 0:
		case 2:
			cursors[i].done = true
		case 1:
			n, w := binary.Uvarint(buf)
			if w <= 0 || n == 0 || uint64(len(buf)-w) < n {
				return nil, bad
			}
			cursors[i].after = bytes.Clone(buf[w : w+int(n)])
			buf = buf[w+int(n):]
		default:
			return nil, bad
		}
	}
	if len(buf) != 0 {
		return nil, bad
	}
	return cursors, nil
}

func cloneQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// queuesAcross merges the groups' pages of queues, by name: each group
// lists its first queues after the same name, so the first names of all
// are the page.
func (a *API) queuesAcross(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "stale", "limit", "page_token"); err != nil {
		a.writeError(w, err)
		return
	}
	limit, err := listLimit(r, maxListLimit)
	if err != nil {
		a.writeError(w, err)
		return
	}
	pages, ok := askEvery[wire.QueueList](a, w, r, nil)
	if !ok {
		return
	}
	byName := map[string]*wire.Queue{}
	more := false
	for _, page := range pages {
		more = more || page.NextPageToken != ""
		for _, q := range page.Queues {
			mergeQueue(byName, q)
		}
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	slices.Sort(names)
	out := wire.QueueList{Queues: []wire.Queue{}}
	for _, name := range names[:min(limit, len(names))] {
		out.Queues = append(out.Queues, *byName[name])
	}
	if more || len(names) > limit {
		out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(out.Queues[len(out.Queues)-1].Name))
	}
	writeJSON(w, http.StatusOK, out)
}

// mergeQueue adds q, one group's view of a queue, to byName: the counts
// add up; the settings, the same in every group, are the first's.
func mergeQueue(byName map[string]*wire.Queue, q wire.Queue) {
	have, ok := byName[q.Name]
	if !ok {
		q.Tasks = maps.Clone(q.Tasks) // the view's own, to add to
		if q.Tasks == nil {
			q.Tasks = map[string]uint64{}
		}
		byName[q.Name] = &q
		return
	}
	for state, n := range q.Tasks {
		have.Tasks[state] += n
	}
	if q.CreatedAt.Before(have.CreatedAt) {
		have.CreatedAt = q.CreatedAt
	}
	if q.UpdatedAt.After(have.UpdatedAt) {
		have.UpdatedAt = q.UpdatedAt
	}
}

// mergedQueue answers with the queue as every group that has it sees it
// together; not found only when no group has it.
func (a *API) mergedQueue(w http.ResponseWriter, answers []groupAnswer) {
	byName := map[string]*wire.Queue{}
	var missing groupAnswer
	for _, ans := range answers {
		if ans.status == http.StatusNotFound {
			missing = ans
			continue
		}
		if !ans.ok() {
			relay(w, ans)
			return
		}
		var q wire.Queue
		if err := json.Unmarshal(ans.body, &q); err != nil {
			a.writeError(w, err)
			return
		}
		mergeQueue(byName, q)
	}
	for _, q := range byName {
		writeJSON(w, http.StatusOK, q)
		return
	}
	relay(w, missing)
}

func (a *API) queueAcross(w http.ResponseWriter, r *http.Request) {
	a.mergedQueue(w, a.askGroups(r, a.everyGroup(r, nil)))
}

// queueWriteAcross writes a queue's settings (or pauses or resumes it) in
// every group, so each enforces them on its tasks. The groups commit
// apart: after a failure some may have the change and others not, and the
// error says to retry (the write is idempotent).
func (a *API) queueWriteAcross(w http.ResponseWriter, r *http.Request) {
	body, err := a.readBody(w, r, bodySlack)
	if err != nil {
		a.writeError(w, err)
		return
	}
	a.mergedQueue(w, a.askGroups(r, a.everyGroup(r, body)))
}

// queueDeleteAcross deletes a queue's settings in every group.
func (a *API) queueDeleteAcross(w http.ResponseWriter, r *http.Request) {
	answers := a.askGroups(r, a.everyGroup(r, nil))
	if failed, ok := firstFailure(answers); ok {
		relay(w, failed)
		return
	}
	relay(w, answers[0])
}

// redriveAcross redrives one task in its group, or a queue's dead tasks
// in every group, and adds up the count.
func (a *API) redriveAcross(w http.ResponseWriter, r *http.Request) {
	body, err := a.readBody(w, r, bodySlack)
	if err != nil {
		a.writeError(w, err)
		return
	}
	var req wire.RedriveRequest
	if len(body) > 0 && json.Unmarshal(body, &req) == nil && req.ID != "" {
		g := a.cfg.Node.Table().GroupOf(req.ID)
		r.Body = readCloser(body)
		r.ContentLength = int64(len(body))
		a.serveGroup(w, r, g)
		return
	}
	parts, ok := askEvery[wire.RedriveResponse](a, w, r, body)
	if !ok {
		return
	}
	var out wire.RedriveResponse
	for _, part := range parts {
		out.Redriven += part.Redriven
	}
	writeJSON(w, http.StatusOK, out)
}

// bulkAcross cancels or shifts a queue's selected tasks in every group
// and adds up the counts.
func (a *API) bulkAcross(w http.ResponseWriter, r *http.Request) {
	body, err := a.readBody(w, r, bodySlack)
	if err != nil {
		a.writeError(w, err)
		return
	}
	parts, ok := askEvery[wire.BulkResponse](a, w, r, body)
	if !ok {
		return
	}
	var out wire.BulkResponse
	for _, part := range parts {
		out.Matched += part.Matched
		out.Changed += part.Changed
		out.DryRun = part.DryRun
	}
	writeJSON(w, http.StatusOK, out)
}

// askEvery sends r to every group (body: r's, read before) and decodes
// every answer as a T; on a failure it answers w itself (the first
// failed answer, or the decoding error) and returns false.
func askEvery[T any](a *API, w http.ResponseWriter, r *http.Request, body []byte) ([]T, bool) {
	answers := a.askGroups(r, a.everyGroup(r, body))
	if failed, ok := firstFailure(answers); ok {
		relay(w, failed)
		return nil, false
	}
	parts := make([]T, len(answers))
	for i, ans := range answers {
		if err := json.Unmarshal(ans.body, &parts[i]); err != nil {
			a.writeError(w, fmt.Errorf("group %d answered: %w", ans.group, err))
			return nil, false
		}
	}
	return parts, true
}

// dueStatsAcross adds up the groups' counts, bucket by bucket.
func (a *API) dueStatsAcross(w http.ResponseWriter, r *http.Request) {
	parts, ok := askEvery[wire.DueStats](a, w, r, nil)
	if !ok {
		return
	}
	out := parts[0]
	for _, part := range parts[1:] {
		if len(part.Buckets) != len(out.Buckets) {
			a.writeError(w, errors.New("groups answered due stats of different buckets"))
			return
		}
		out.Total += part.Total
		for k := range out.Buckets {
			out.Buckets[k].Count += part.Buckets[k].Count
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// acksAcross splits a batch of acks by the group of each task, and
// answers every ack in request order.
func (a *API) acksAcross(w http.ResponseWriter, r *http.Request) {
	body, err := a.readBody(w, r, maxAcks*(bodySlack/16))
	if err != nil {
		a.writeError(w, err)
		return
	}
	var req wire.AcksRequest
	if err := decodeJSON(body, &req); err != nil || len(req.Acks) == 0 || len(req.Acks) > maxAcks {
		// The group's handler says what is wrong with it.
		r.Body = readCloser(body)
		r.ContentLength = int64(len(body))
		a.serveGroup(w, r, 1)
		return
	}
	table := a.cfg.Node.Table()
	if g, one := oneGroup(table, req.Acks); one {
		// A worker acks what its leases handed it, and a lease takes
		// from one group: that group answers the request whole, as in a
		// cluster of one group, without the split and the merge.
		r.Body = readCloser(body)
		r.ContentLength = int64(len(body))
		a.serveGroup(w, r, g)
		return
	}
	results, answers, err := scatter(a, r, req.Acks, func(i int) slots.Group { return table.GroupOf(req.Acks[i].ID) },
		func(acks []wire.AckItem) any { return wire.AcksRequest{Acks: acks} },
		func(resp *wire.AcksResponse) []wire.AckResult { return resp.Results },
		func(e *wire.ErrorBody) wire.AckResult { return wire.AckResult{Error: e} })
	if err != nil {
		a.writeError(w, err)
		return
	}
	// A request the groups refuse whole (a bad lease token, say) is
	// refused whole here too.
	for _, ans := range answers {
		if ans.status >= 400 && ans.status < 500 {
			relay(w, ans)
			return
		}
	}
	writeJSON(w, http.StatusOK, wire.AcksResponse{Results: results})
}

// oneGroup returns the group of every ack's task, if they share one.
func oneGroup(table *slots.Table, acks []wire.AckItem) (slots.Group, bool) {
	var g slots.Group
	for i, ack := range acks {
		switch mine := table.GroupOf(ack.ID); {
		case i == 0:
			g = mine
		case mine != g:
			return 0, false
		}
	}
	return g, len(acks) > 0
}

// removeNodeAcross takes a node out of every group's configuration and out
// of the meta group (so out of the placement); it is not found only when
// none has it.
func (a *API) removeNodeAcross(w http.ResponseWriter, r *http.Request) {
	// The groups first, then the meta group: were it first, the
	// placement could start moving replicas while the groups' leaders
	// still take the node for a member.
	answers := a.askGroups(r, a.everyGroup(r, nil))
	answers = append(answers, a.askGroup(r, groupPart{group: cluster.MetaGroup, method: r.Method, target: r.URL.RequestURI()}))
	var missing groupAnswer
	found := false
	for _, ans := range answers {
		switch {
		case ans.status == http.StatusNotFound:
			missing = ans
		case !ans.ok():
			relay(w, ans)
			return
		default:
			found = true
		}
	}
	if !found {
		relay(w, missing)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": pathSegment(r, 4)})
}

// leaseAcross leases a queue's due tasks from any group: from the first
// group, in turn, that has any, without waiting (the groups this node
// leads first, so that a worker of each node mostly leases without a hop
// to another node); when none
// has any, it waits on them all at once with peeks, which lease nothing,
// until one has a task, and leases from that one first. Only sweeps
// lease, one group at a time, so no lease is ever granted to an answer
// that is not sent (a lease granted to a request called off would hold
// its task until it expired).
func (a *API) leaseAcross(w http.ResponseWriter, r *http.Request) {
	body, err := a.readBody(w, r, bodySlack)
	if err != nil {
		a.writeError(w, err)
		return
	}
	var req wire.LeaseRequest
	if len(body) > 0 {
		if err := decodeJSON(body, &req); err != nil {
			a.writeError(w, err)
			return
		}
	}
	want := req.Max
	if want == 0 {
		want = 1
	}
	if want < 1 || want > maxLeaseTasks {
		a.writeError(w, invalid("max: must be between 1 and %d, got %d", maxLeaseTasks, req.Max))
		return
	}
	wait := time.Duration(0)
	if req.Wait != "" {
		if wait, err = parseDuration("wait", req.Wait, 0, maxLeaseWait); err != nil {
			a.writeError(w, err)
			return
		}
	}
	if req.Lease != "" {
		if _, err = parseDuration("lease", req.Lease, minLease, maxLease); err != nil {
			a.writeError(w, err)
			return
		}
	}
	deadline := time.Now().Add(wait)
	parts := a.everyGroup(r, nil)
	start := a.pickGroup()
	for {
		out, failure, failures := a.sweepLeases(r, parts, start, want, req.Lease)
		switch {
		case len(out.Tasks) > 0:
			writeJSON(w, http.StatusOK, out)
			return
		case failures == len(parts):
			relay(w, failure) // no group could answer
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			writeJSON(w, http.StatusOK, out)
			return
		}
		ready, ok := a.peekGroups(r, parts, left)
		if !ok {
			writeJSON(w, http.StatusOK, out) // nothing fell due within the wait
			return
		}
		start = ready // lease from the group that has tasks first
	}
}

// sweepLeases leases up to want tasks from the first group, in turn from
// group start on, that has any, without waiting. A group that cannot
// answer (no leader just now) is passed over; failures counts them,
// failure is the first.
func (a *API) sweepLeases(r *http.Request, parts []groupPart, start slots.Group, want int, lease string) (out wire.LeaseResponse, failure groupAnswer, failures int) {
	out.Tasks = []wire.LeasedTask{}
	n := len(parts)
	for k := range n {
		p := parts[(int(start)-1+k)%n]
		got, ans := a.leaseFrom(r, p, want-len(out.Tasks), lease)
		if !ans.ok() {
			if failures == 0 {
				failure = ans
			}
			failures++
			continue
		}
		out.Tasks = append(out.Tasks, got...)
		if len(out.Tasks) > 0 {
			// Enough for one answer: the next request starts elsewhere
			// (or here again), and a group led here costs no hop.
			break
		}
	}
	return out, failure, failures
}

// leaseFrom leases up to max tasks from p's group without waiting: from
// the scheduler itself when this node leads the group (no request, no
// JSON), else through the group's leader.
func (a *API) leaseFrom(r *http.Request, p groupPart, max int, lease string) ([]wire.LeasedTask, groupAnswer) {
	queue := pathSegment(r, 3)
	if b := a.backendOf(p.group); b != nil && b.Workers != nil && validName(queue) {
		if _, _, self := b.Group.Leader(); self {
			d := defaultLease
			if lease != "" {
				d, _ = time.ParseDuration(lease) // checked by leaseAcross
			}
			tasks, err := b.Workers.Lease(r.Context(), scheduler.LeaseRequest{Queue: queue, Max: max, Lease: d})
			if err != nil {
				status, body := a.classify(err)
				data, _ := json.Marshal(wire.ErrorResponse{Error: body})
				return nil, groupAnswer{group: p.group, status: status, header: http.Header{}, body: data}
			}
			return leasedViews(tasks), groupAnswer{group: p.group, status: http.StatusOK}
		}
	}
	p.body, _ = json.Marshal(wire.LeaseRequest{Max: max, Wait: "0s", Lease: lease})
	ans := a.askGroup(r, p)
	if !ans.ok() {
		return nil, ans
	}
	var got wire.LeaseResponse
	if err := json.Unmarshal(ans.body, &got); err != nil {
		ans.status = http.StatusBadGateway
		return nil, ans
	}
	return got.Tasks, ans
}

// peekGroups waits, up to wait, on every group at once until one has a
// due task of the queue, and returns that group. A peek leases nothing,
// so the others can be called off without losing a task.
func (a *API) peekGroups(r *http.Request, parts []groupPart, wait time.Duration) (slots.Group, bool) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	sub := r.WithContext(ctx)
	sub.Header = r.Header.Clone()
	sub.Header.Set(headerLeasePeek, "1")
	body, _ := json.Marshal(wire.LeaseRequest{Max: 1, Wait: wait.String()})
	answers := make(chan groupAnswer, len(parts))
	for _, p := range parts {
		p.body = body
		go func() { answers <- a.askGroup(sub, p) }()
	}
	for range parts {
		ans := <-answers
		if ans.ok() && ans.header.Get(headerLeaseReady) != "" {
			return ans.group, true
		}
	}
	return 0, false
}
