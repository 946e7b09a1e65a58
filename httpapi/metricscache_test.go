package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMetricsCacheRendersOnceForConcurrentScrapes: fifty scrapes that
// arrive while one rendering is under way share it; a scrape after it
// renders afresh.
func TestMetricsCacheRendersOnceForConcurrentScrapes(t *testing.T) {
	var renders atomic.Int32
	var gotEncoding atomic.Value
	release := make(chan struct{})
	render := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if renders.Add(1) == 1 {
			<-release
		}
		gotEncoding.Store(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "hourglass_up 1\n")
	})
	c := newMetricsCache(render)
	scrape := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		return rec
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); scrape() }()
	for renders.Load() == 0 {
		time.Sleep(time.Millisecond) // until the first rendering is under way
	}
	for i := 0; i < 49; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rec := scrape(); rec.Body.String() != "hourglass_up 1\n" || rec.Header().Get("Content-Type") != "text/plain; version=0.0.4" {
				t.Errorf("scrape got %q, %q", rec.Body.String(), rec.Header().Get("Content-Type"))
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n := c.waiters
		c.mu.Unlock()
		if n == 49 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 49 scrapes waiting for the rendering", n)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := renders.Load(); n != 1 {
		t.Fatalf("50 concurrent scrapes rendered %d times, want 1", n)
	}
	if enc := gotEncoding.Load(); enc != "" {
		t.Fatalf("the render was asked for encoding %q; the cache serves one plain copy", enc)
	}
	scrape()
	if n := renders.Load(); n != 2 {
		t.Fatalf("a scrape after the rendering: %d renders, want 2 (a fresh one)", n)
	}
}
