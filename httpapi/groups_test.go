package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/fsm/archive"
	"github.com/hourglass-scheduler/hourglass/fsm/archive/archivetest"
	"github.com/hourglass-scheduler/hourglass/slots"
)

// newGroupsServer is the API over a real single node whose cluster has
// the given number of groups (no schedulers).
func newGroupsServer(t *testing.T, groups int) *testServer {
	t.Helper()
	node, err := cluster.Open(cluster.Config{NodeID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Groups: groups})
	if err != nil {
		t.Fatal(err)
	}
	api := New(Config{Node: node, Health: node, Limits: Limits{MaxPayload: 1000, MaxBatch: 50}})
	node.Start(func(g *cluster.Group) cluster.LeaderFunc {
		api.SetBackend(g.ID(), groupBackend(g))
		return func(ctx context.Context, _ uint64) { <-ctx.Done() }
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); node.Close() })
	return &testServer{Server: srv, node: node}
}

// groupOf is the group that holds task id on s's node.
func (s *testServer) groupOf(id string) *cluster.Group {
	return s.node.Group(s.node.Table().GroupOf(id))
}

// listAll pages through GET /v1/tasks?query with pages of limit tasks.
func (s *testServer) listAll(t *testing.T, query string, limit int) []client.Task {
	t.Helper()
	var all []client.Task
	token := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("more than 100 pages")
		}
		q, _ := url.ParseQuery(query)
		q.Set("limit", fmt.Sprint(limit))
		if token != "" {
			q.Set("page_token", token)
		}
		r := s.do(t, "GET", "/v1/tasks?"+q.Encode(), "")
		if r.status != http.StatusOK {
			t.Fatalf("list %s: %d %s", q.Encode(), r.status, r.body)
		}
		var page client.ListResponse
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Tasks) > limit {
			t.Fatalf("a page of %d tasks, over the limit of %d", len(page.Tasks), limit)
		}
		all = append(all, page.Tasks...)
		if page.NextPageToken == "" {
			return all
		}
		token = page.NextPageToken
	}
}

func ids(tasks []client.Task) []string {
	out := make([]string, len(tasks))
	for i, t := range tasks {
		out[i] = t.ID
	}
	return out
}

// With the tasks spread over three groups, every route answers as with
// one: creates land in the group of their id (or, without one, get an id
// of the group that takes them), reads find them, lists page through all
// groups in order, and queues, stats and bulk changes add up.
func TestEveryRouteAcrossGroups(t *testing.T) {
	s := newGroupsServer(t, 3)
	var want []string
	perGroup := map[slots.Group]int{}
	for i := range 30 {
		queue := fmt.Sprintf("q%d", i%2)
		r := s.do(t, "POST", "/v1/tasks", fmt.Sprintf(`{"queue":%q,"delay":"1h",%s}`, queue, validTarget))
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		id := r.task(t).ID
		if _, err := s.groupOf(id).FSM().Get(id); err != nil {
			t.Fatalf("task %s is not in the group of its slot: %v", id, err)
		}
		perGroup[s.node.Table().GroupOf(id)]++
		want = append(want, id)
	}
	if len(perGroup) != 3 {
		t.Fatalf("30 creates without ids went to groups %v, want all three in turn", perGroup)
	}

	// A batch of ids of every group is split; an invalid task is named by
	// its place in the whole batch, and nothing is created.
	var tasks []string
	for i := range 12 {
		tasks = append(tasks, fmt.Sprintf(`{"id":"b%02d","queue":"q%d","delay":"1h",%s}`, i, i%2, validTarget))
	}
	bad := slices.Clone(tasks)
	bad[7] = `{"id":"b07","delay":"soon",` + validTarget + `}`
	if r := s.do(t, "POST", "/v1/tasks/batch", `{"tasks":[`+strings.Join(bad, ",")+`]}`); r.status != http.StatusBadRequest ||
		!strings.Contains(r.errorBody(t).Message, "tasks[7].delay") {
		t.Fatalf("a batch with a bad task: %d %s", r.status, r.body)
	}
	if _, err := s.groupOf("b00").FSM().Get("b00"); err == nil {
		t.Fatal("a refused batch created a task")
	}
	r := s.do(t, "POST", "/v1/tasks/batch", `{"tasks":[`+strings.Join(tasks, ",")+`]}`)
	var batch client.BatchResponse
	if r.status != http.StatusOK || json.Unmarshal(r.body, &batch) != nil || len(batch.Results) != 12 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	batchGroups := map[slots.Group]bool{}
	for i, res := range batch.Results {
		id := fmt.Sprintf("b%02d", i)
		if res.Task == nil || res.Task.ID != id {
			t.Fatalf("result %d of the batch: %+v, want task %s", i, res, id)
		}
		if _, err := s.groupOf(id).FSM().Get(id); err != nil {
			t.Fatalf("%s is not in the group of its slot: %v", id, err)
		}
		batchGroups[s.node.Table().GroupOf(id)] = true
		want = append(want, id)
	}
	if len(batchGroups) < 2 {
		t.Fatalf("the batch's ids fell in %d group: the test needs them in several", len(batchGroups))
	}
	slices.Sort(want)

	// A request that names a group (as a node forwarding to it does)
	// cannot put a task in a group its id does not belong to: an id lives
	// in one group, so it is unique in the cluster.
	other := s.node.Table().GroupOf("b03")%3 + 1
	if r := s.do(t, "POST", "/v1/tasks", `{"id":"b03","delay":"1h",`+validTarget+`}`, "Hourglass-Group", fmt.Sprint(other)); r.status != http.StatusBadRequest ||
		!strings.Contains(r.errorBody(t).Message, "belongs to group") {
		t.Fatalf("a create naming another group: %d %s", r.status, r.body)
	}
	if _, err := s.node.Group(other).FSM().Get("b03"); err == nil {
		t.Fatal("a task was stored in a group its id does not belong to")
	}

	// One task's routes.
	if r := s.do(t, "GET", "/v1/tasks/b03", ""); r.status != http.StatusOK || r.task(t).ID != "b03" {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	if r := s.do(t, "DELETE", "/v1/tasks/b03", ""); r.status != http.StatusOK || r.task(t).State != "cancelled" {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}

	// Lists: every task once, in id order, whatever the page size.
	for _, limit := range []int{1, 7, 100} {
		if got := ids(s.listAll(t, "", limit)); !slices.Equal(got, want) {
			t.Fatalf("list by pages of %d: %d tasks %v\nwant %d %v", limit, len(got), got, len(want), want)
		}
	}
	var q1 []string
	for _, task := range s.listAll(t, "", 100) {
		if task.Queue == "q1" && task.State == "scheduled" {
			q1 = append(q1, task.ID)
		}
	}
	if got := ids(s.listAll(t, "queue=q1&state=scheduled", 4)); !slices.Equal(got, q1) {
		t.Fatalf("filtered list: %v, want %v", got, q1)
	}
	if r := s.do(t, "GET", "/v1/tasks?page_token=Zm9v", ""); r.status != http.StatusBadRequest {
		t.Fatalf("a foreign page token: %d %s", r.status, r.body)
	}

	// Queues: settings go to every group; counts add up.
	if r := s.do(t, "PUT", "/v1/queues/q1", `{"max_attempts":4}`); r.status != http.StatusOK {
		t.Fatalf("put queue: %d %s", r.status, r.body)
	}
	for _, g := range s.node.Groups() {
		info, err := g.FSM().Queue("q1")
		if err != nil || info.Settings.GetMaxAttempts() != 4 {
			t.Fatalf("group %d: queue q1 %+v %v", g.ID(), info, err)
		}
	}
	r = s.do(t, "GET", "/v1/queues/q1", "")
	var queue client.Queue
	if r.status != http.StatusOK || json.Unmarshal(r.body, &queue) != nil {
		t.Fatalf("get queue: %d %s", r.status, r.body)
	}
	if queue.MaxAttempts != 4 || queue.Tasks["scheduled"] != uint64(len(q1)) {
		t.Fatalf("queue q1: %+v; want max_attempts 4 and %d scheduled", queue, len(q1))
	}
	if r := s.do(t, "GET", "/v1/queues/nope", ""); r.status != http.StatusNotFound {
		t.Fatalf("a queue no group has: %d %s", r.status, r.body)
	}
	r = s.do(t, "GET", "/v1/queues?limit=1", "")
	var queues client.QueueList
	if r.status != http.StatusOK || json.Unmarshal(r.body, &queues) != nil || len(queues.Queues) != 1 || queues.Queues[0].Name != "q0" || queues.NextPageToken == "" {
		t.Fatalf("first page of queues: %d %s", r.status, r.body)
	}
	r = s.do(t, "GET", "/v1/queues?limit=1&page_token="+queues.NextPageToken, "")
	if r.status != http.StatusOK || json.Unmarshal(r.body, &queues) != nil || len(queues.Queues) != 1 || queues.Queues[0].Name != "q1" {
		t.Fatalf("second page of queues: %d %s", r.status, r.body)
	}

	// Stats and bulk changes add up over the groups.
	r = s.do(t, "GET", "/v1/stats/due?step=1h&to="+time.Now().Add(3*time.Hour).UTC().Format(time.RFC3339), "")
	var stats client.DueStats
	if r.status != http.StatusOK || json.Unmarshal(r.body, &stats) != nil || stats.Total != uint64(len(want)-1) {
		t.Fatalf("due stats: %d %s; want %d due", r.status, r.body, len(want)-1)
	}
	r = s.do(t, "POST", "/v1/queues/q1/cancel", `{"dry_run":true}`)
	var bulk client.BulkResponse
	if r.status != http.StatusOK || json.Unmarshal(r.body, &bulk) != nil || bulk.Matched != len(q1) || bulk.Changed != 0 {
		t.Fatalf("bulk dry run: %d %s; want %d matched", r.status, r.body, len(q1))
	}

	// Cluster: every group shows; removing an unknown node is not found.
	r = s.do(t, "GET", "/v1/cluster", "")
	var info client.ClusterInfo
	if r.status != http.StatusOK || json.Unmarshal(r.body, &info) != nil || len(info.Groups) != 3 {
		t.Fatalf("cluster: %d %s", r.status, r.body)
	}
	total := 0
	for _, g := range info.Groups {
		total += g.Slots
		if g.Leader == nil || g.Leader.ID != "n1" || len(g.Replicas) != 1 {
			t.Fatalf("group %+v", g)
		}
	}
	if total != slots.Count {
		t.Fatalf("the groups hold %d slots, want %d", total, slots.Count)
	}
	if r := s.do(t, "DELETE", "/v1/cluster/nodes/nobody", ""); r.status != http.StatusNotFound {
		t.Fatalf("remove an unknown node: %d %s", r.status, r.body)
	}
}

// The page token of a list across groups holds a cursor per group, and
// is refused when damaged.
func TestGroupsTokenRoundTrip(t *testing.T) {
	cursors := []groupCursor{{}, {after: []byte("abc")}, {done: true}}
	got, err := decodeGroupsToken(encodeGroupsToken(cursors), 3)
	if err != nil || len(got) != 3 || got[0].after != nil || got[0].done || string(got[1].after) != "abc" || !got[2].done {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	token := encodeGroupsToken(cursors)
	for _, bad := range []string{"!", "Rw", token[:len(token)-1], encodeGroupsToken(cursors[:2])} {
		if _, err := decodeGroupsToken(bad, 3); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}

// A backup of three groups is one archive of their three states; restored,
// every group is back as it was. A backup of a single-group cluster
// restores into three groups too, its tasks split by slot.
func TestBackupAndRestoreAcrossGroups(t *testing.T) {
	s := newGroupsServer(t, 3)
	var tasks []string
	for i := range 30 {
		tasks = append(tasks, fmt.Sprintf(`{"id":"t%02d","delay":"1h",%s}`, i, validTarget))
	}
	if r := s.do(t, "POST", "/v1/tasks/batch", `{"tasks":[`+strings.Join(tasks, ",")+`]}`); r.status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	backup := s.do(t, "GET", "/v1/snapshot", "")
	if backup.status != http.StatusOK || backup.header.Get("Hourglass-Snapshot-Groups") != "3" {
		t.Fatalf("backup: %d %s", backup.status, backup.header)
	}
	meta, err := archive.ExtractGroups(bytes.NewReader(backup.body), t.TempDir(), nil)
	if err != nil || len(meta.Groups) != 3 || meta.Tasks.Total() != 30 {
		t.Fatalf("the backup: %+v %v", meta, err)
	}

	// Changes after the backup are undone by the restore.
	if r := s.do(t, "DELETE", "/v1/tasks/t05", ""); r.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if r := s.do(t, "POST", "/v1/tasks", `{"id":"later","delay":"1h",`+validTarget+`}`); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r := s.do(t, "POST", "/v1/snapshot", string(backup.body))
	var restored client.RestoreResponse
	if r.status != http.StatusOK || json.Unmarshal(r.body, &restored) != nil || len(restored.Restored.Groups) != 3 || restored.Restored.TotalTasks != 30 {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	waitRestored := func(id, state string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := s.do(t, "GET", "/v1/tasks/"+id, "")
			if state == "" && r.status == http.StatusNotFound || state != "" && r.status == http.StatusOK && r.task(t).State == state {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the restore, task %s: %d %s; want state %q", id, r.status, r.body, state)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitRestored("t05", "scheduled")
	waitRestored("later", "")

	// A damaged archive changes nothing.
	bad := archivetest.Damage(t, backup.body, len(backup.body)/2)
	if r := s.do(t, "POST", "/v1/snapshot", string(bad)); r.status != http.StatusBadRequest {
		t.Fatalf("a damaged archive: %d %s", r.status, r.body)
	}

	// A single-group cluster's backup: split by slot over the groups.
	one := newTestServerWith(t, cluster.Config{}, func(c *testConfig) { c.Limits.MaxBatch = 50 })
	var old []string
	for i := range 20 {
		old = append(old, fmt.Sprintf(`{"id":"old%02d","delay":"2h",%s}`, i, validTarget))
	}
	if r := one.do(t, "POST", "/v1/tasks/batch", `{"tasks":[`+strings.Join(old, ",")+`]}`); r.status != http.StatusOK {
		t.Fatalf("batch on one group: %d %s", r.status, r.body)
	}
	single := one.do(t, "GET", "/v1/snapshot", "")
	if single.status != http.StatusOK {
		t.Fatalf("backup of one group: %d", single.status)
	}
	if r := s.do(t, "POST", "/v1/snapshot", string(single.body)); r.status != http.StatusOK {
		t.Fatalf("restore of a single-group backup into three groups: %d %s", r.status, r.body)
	}
	waitRestored("t00", "")
	for i := range 20 {
		id := fmt.Sprintf("old%02d", i)
		waitRestored(id, "scheduled")
		if _, err := s.groupOf(id).FSM().Get(id); err != nil {
			t.Fatalf("%s is not in the group of its slot: %v", id, err)
		}
	}
	if got := len(s.listAll(t, "", 100)); got != 20 {
		t.Fatalf("%d tasks after restoring 20", got)
	}
}

// Every route of the API is served by one group (a task's), by whichever
// node gets it, or across the groups.
func TestEveryRouteIsRoutedAcrossGroups(t *testing.T) {
	api := New(Config{Metrics: http.NotFoundHandler()})
	local := map[string]bool{"GET /v1/cluster": true, "GET /v1/openapi.json": true}
	for _, pattern := range api.Routes() {
		if !strings.Contains(pattern, " /v1/") || local[pattern] {
			continue
		}
		if !taskRoutes[pattern] && api.across[pattern] == nil {
			t.Errorf("route %s is served neither by one task's group nor across groups", pattern)
		}
	}
}

func TestMayNameID(t *testing.T) {
	for _, c := range []struct {
		body string
		want bool
	}{
		{`{"tasks":[{"queue":"q","payload":{"n":1}},{"queue":"q"}]}`, false},
		{`{"tasks":[{"queue":"q","idx":1,"xid":"id ","i":"d"}]}`, false},
		{`{"tasks":[{"queue":"q"},{"id":"t1"}]}`, true},
		{`{"tasks":[{"ID":"t1"}]}`, true},
		{`{"tasks":[{"iD":"t1"}]}`, true},
		{`{"tasks":[{"\u0069d":"t1"}]}`, true},
		{`{"tasks":[{"queue":"q","payload":{"id":7}}]}`, true}, // may: looked into
		{`{"tasks":[{"queue":"q\"id\""}]}`, false},             // a value q"id", no key
		{`"id"`, true},
		{`"i`, false},
	} {
		if got := mayNameID([]byte(c.body)); got != c.want {
			t.Errorf("mayNameID(%s) = %v, want %v", c.body, got, c.want)
		}
	}
}

// FuzzMayNameID: whenever mayNameID says a body names no id, decoding it
// as batchAcross and createAcross peek at it finds none.
func FuzzMayNameID(f *testing.F) {
	for _, s := range []string{`{"tasks":[{"id":"a"}]}`, `{"tasks":[{"Id":"a"}]}`, `{"tasks":[{"\u0049D":"a"}]}`, `{"tasks":[{"queue":"q"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var peek struct {
			Tasks []struct {
				ID string `json:"id"`
			} `json:"tasks"`
		}
		if mayNameID(body) {
			return
		}
		_ = json.Unmarshal(body, &peek) // a body it refuses has no ids either
		for i, task := range peek.Tasks {
			if task.ID != "" {
				t.Fatalf("mayNameID(%s) = false, but tasks[%d] has id %q", body, i, task.ID)
			}
		}
		var one struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(body, &one) == nil && one.ID != "" {
			t.Fatalf("mayNameID(%s) = false, but it has id %q", body, one.ID)
		}
	})
}
