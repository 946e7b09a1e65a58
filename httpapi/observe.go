package httpapi

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// apiMetrics are the API's Prometheus metrics.
type apiMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// created counts tasks this node committed as new, by queue.
	created  *prometheus.CounterVec
	inFlight prometheus.Gauge
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_http_requests_total",
			Help: "HTTP requests this node answered, by route (method and pattern; forwarded: sent on to the leader) and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hourglass_http_request_duration_seconds",
			Help:    "How long this node took to answer HTTP requests, by route (a lease's long poll included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_tasks_created_total",
			Help: "Tasks created through this node while it was the leader, by queue (an idempotent repeat of a create is not counted).",
		}, []string{"queue"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hourglass_http_requests_in_flight",
			Help: "HTTP requests in progress that count against the concurrency limit (health checks and metrics do not).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.created, m.inFlight)
	}
	return m
}

// Route labels of requests the router never saw.
const (
	routeForwarded       = "forwarded"
	routeUnauthenticated = "unauthenticated"
	routeThrottled       = "throttled"
)

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// flushes).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe counts and times a request and logs it at debug level. Only the
// method, path, status, size and time are logged: never headers (tokens)
// nor bodies (payloads).
func (a *API) observe(rec *statusRecorder, r *http.Request, route string, began time.Time) {
	took := time.Since(began)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	a.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	a.metrics.duration.WithLabelValues(route).Observe(took.Seconds())
	if a.log.Enabled(r.Context(), slog.LevelDebug) {
		a.log.Debug("request", "method", r.Method, "path", r.URL.Path, "route", route, "status", status,
			"bytes", rec.bytes, "took", took, "remote", r.RemoteAddr)
	}
}
