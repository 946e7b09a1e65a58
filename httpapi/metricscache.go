package httpapi

import (
	"bytes"
	"net/http"
	"sync"
	"time"
)

// metricsCache serves /metrics from one rendering at most maxAge old:
// however many scrape at once, the registry is gathered at most once per
// maxAge and one copy of its output is held, so an anonymous flood of
// scrapes costs what one scrape costs. Every scraper gets the text format,
// uncompressed (what Prometheus always accepts).
type metricsCache struct {
	render http.Handler
	maxAge time.Duration
	now    func() time.Time

	mu     sync.Mutex // held while rendering: the others wait for it
	at     time.Time
	status int
	header http.Header
	body   []byte
}

func newMetricsCache(render http.Handler, maxAge time.Duration, now func() time.Time) *metricsCache {
	return &metricsCache{render: render, maxAge: maxAge, now: now}
}

func (c *metricsCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.body == nil || c.now().Sub(c.at) >= c.maxAge {
		req := r.Clone(r.Context())
		req.Header.Del("Accept")
		req.Header.Del("Accept-Encoding")
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		c.render.ServeHTTP(rec, req)
		c.status, c.header, c.body, c.at = rec.status, rec.header, rec.body.Bytes(), c.now()
	}
	status, header, body := c.status, c.header, c.body
	c.mu.Unlock()
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	w.Write(body)
}

// recorder is an http.ResponseWriter that keeps what is written.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
