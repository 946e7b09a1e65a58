package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Requests are counted by route and status; new tasks by queue, an
// idempotent repeat not; and every request is logged at debug level
// without its headers or body.
func TestRequestsAreCountedAndLogged(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	srv := newTestServer(t, func(c *testConfig) {
		c.Registry = reg
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const secret = "s3cret-payload-and-header"
	create := `{"id":"m1","queue":"mail","delay":"1h","payload":{"p":"` + secret + `"},"target":{"url":"http://example.com/"}}`
	for range 2 {
		srv.do(t, http.MethodPost, "/v1/tasks", create, "Authorization", "Bearer "+secret)
	}
	srv.do(t, http.MethodPost, "/v1/tasks/batch", `{"tasks":[{"queue":"mail","delay":"1h","target":{"url":"http://example.com/"}},{"queue":"sms","delay":"1h","target":{"url":"http://example.com/"}}]}`)
	srv.do(t, http.MethodGet, "/v1/tasks/m1", "")
	srv.do(t, http.MethodGet, "/v1/tasks/nope", "")
	srv.do(t, http.MethodGet, "/v1/no-such-thing", "")

	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hourglass_tasks_created_total Tasks created through this node while it was the leader, by queue (an idempotent repeat of a create is not counted).
# TYPE hourglass_tasks_created_total counter
hourglass_tasks_created_total{queue="mail"} 2
hourglass_tasks_created_total{queue="sms"} 1
# HELP hourglass_http_requests_total HTTP requests this node answered, by route (method and pattern; forwarded: sent on to the leader) and status code.
# TYPE hourglass_http_requests_total counter
hourglass_http_requests_total{code="200",route="GET /v1/tasks/{id}"} 1
hourglass_http_requests_total{code="200",route="POST /v1/tasks"} 1
hourglass_http_requests_total{code="200",route="POST /v1/tasks/batch"} 1
hourglass_http_requests_total{code="201",route="POST /v1/tasks"} 1
hourglass_http_requests_total{code="404",route="/"} 1
hourglass_http_requests_total{code="404",route="GET /v1/tasks/{id}"} 1
`), "hourglass_tasks_created_total", "hourglass_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "hourglass_http_request_duration_seconds"); n != 4 {
		t.Errorf("request duration histograms: %d routes, want 4", n)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the logs hold the payload or the Authorization header:\n%s", logs.String())
	}
	if got := strings.Count(logs.String(), `"msg":"request"`); got != 6 {
		t.Errorf("%d request lines logged, want 6:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), `"path":"/v1/tasks/m1","route":"GET /v1/tasks/{id}","status":200`) {
		t.Errorf("no request line for GET /v1/tasks/m1:\n%s", logs.String())
	}
}
