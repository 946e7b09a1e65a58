package history

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hourglass-scheduler/hourglass/client"
)

// TestRecorderSeesAStaleRead: calls through a recording client to a
// server that forgets a task it acknowledged are recorded as the model
// reads them, the history is found not linearizable, for that task only,
// and the visualization is an HTML page.
func TestRecorderSeesAStaleRead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/tasks":
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"id":"a","state":"scheduled","version":3}`))
		case "POST /v1/tasks/batch":
			w.Write([]byte(`{"results":[{"task":{"id":"b","state":"scheduled","version":4}},{"error":{"code":"unavailable","message":"no leader"}}]}`))
		case "GET /v1/tasks/a": // forgotten
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no task"}}`))
		case "GET /v1/tasks/b":
			w.Write([]byte(`{"id":"b","state":"running","version":6}`))
		case "DELETE /v1/tasks/b":
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":{"code":"conflict","message":"running"}}`))
		case "GET /v1/tasks":
			w.Write([]byte(`{"tasks":[{"id":"b","state":"succeeded","version":7}]}`))
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	rec := NewRecorder()
	c := client.New(srv.URL, "", client.WithTransport(rec.Transport))
	ctx := context.Background()
	if _, err := c.CreateTask(ctx, client.CreateTaskRequest{ID: "a", Delay: "1h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTasks(ctx, []client.CreateTaskRequest{{ID: "b", Delay: "1s"}, {ID: "c", Delay: "1s"}}); err != nil {
		t.Fatal(err)
	}
	c.GetTask(ctx, "a")
	c.GetTask(ctx, "b")
	c.CancelTask(ctx, "b")
	c.ListTasks(ctx, client.ListOptions{})
	stale := &http.Client{Transport: rec.Transport(http.DefaultTransport)}
	if resp, err := stale.Get(srv.URL + "/v1/tasks/b?stale=true"); err != nil { // not recorded
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	rec.Delivered("b", time.Now())

	var got []string
	for _, op := range rec.ops {
		in, out := op.Input.(Input), op.Output.(Output)
		got = append(got, taskModel.DescribeOperation(in, out)+" "+in.ID)
		if out.Unknown != (op.Return == unanswered) {
			t.Errorf("%v: answered %v, return %d", in, !out.Unknown, op.Return)
		}
	}
	want := []string{
		"create → scheduled v3 a", "create → scheduled v4 b", "create → no answer c",
		"get → 404 a", "get → running v6 b", "cancel → 409 b", "get → succeeded v7 b", "delivered b",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("recorded\n%q\nwant\n%q", got, want)
	}

	res, err := rec.Check(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != porcupine.Illegal || !slices.Equal(res.Bad, []string{"a"}) {
		t.Fatalf("verdict %v on tasks %v, want Illegal on a", res.Verdict, res.Bad)
	}
	if !bytes.Contains(res.Visualization, []byte("<html")) {
		t.Fatalf("visualization: %.200q", res.Visualization)
	}
}
