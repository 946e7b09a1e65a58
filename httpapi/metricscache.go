package httpapi

import (
	"bytes"
	"net/http"
	"sync"
)

// metricsCache serves /metrics with at most one rendering at a time:
// scrapes that arrive while one renders wait for it and are all answered
// with its output, so a flood of concurrent scrapes costs what one costs
// and holds one copy of the output. A scrape that arrives when none is
// rendering starts a fresh one (the answer is never older than the scrape
// that asked). Every scraper gets the text format, uncompressed (what
// Prometheus always accepts).
type metricsCache struct {
	render http.Handler

	mu        sync.Mutex
	done      *sync.Cond
	rendering bool
	waiters   int // scrapes waiting for the rendering under way (tests read it)
	gen       uint64
	status    int
	header    http.Header
	body      []byte
}

func newMetricsCache(render http.Handler) *metricsCache {
	c := &metricsCache{render: render}
	c.done = sync.NewCond(&c.mu)
	return c
}

func (c *metricsCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.rendering {
		c.waiters++
		for gen := c.gen; c.gen == gen; {
			c.done.Wait()
		}
		c.waiters--
	} else {
		c.rendering = true
		c.mu.Unlock()
		req := r.Clone(r.Context())
		req.Header.Del("Accept")
		req.Header.Del("Accept-Encoding")
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		c.render.ServeHTTP(rec, req)
		c.mu.Lock()
		c.status, c.header, c.body = rec.status, rec.header, rec.body.Bytes()
		c.rendering = false
		c.gen++
		c.done.Broadcast()
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
