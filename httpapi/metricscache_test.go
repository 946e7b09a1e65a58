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

// TestMetricsCacheRendersOncePerAge: fifty scrapes at once render the
// metrics once; after maxAge (a fake clock) the next scrape renders again.
func TestMetricsCacheRendersOncePerAge(t *testing.T) {
	var renders atomic.Int32
	var gotEncoding atomic.Value
	render := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		renders.Add(1)
		gotEncoding.Store(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "hourglass_up 1\n")
	})
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := newMetricsCache(render, time.Second, clock)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest("GET", "/metrics", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			rec := httptest.NewRecorder()
			c.ServeHTTP(rec, req)
			if rec.Body.String() != "hourglass_up 1\n" || rec.Header().Get("Content-Type") != "text/plain; version=0.0.4" {
				t.Errorf("scrape got %q, %q", rec.Body.String(), rec.Header().Get("Content-Type"))
			}
		}()
	}
	wg.Wait()
	if n := renders.Load(); n != 1 {
		t.Fatalf("50 scrapes at once rendered %d times, want 1", n)
	}
	if enc := gotEncoding.Load(); enc != "" {
		t.Fatalf("the render was asked for encoding %q; the cache serves one plain copy", enc)
	}
	mu.Lock()
	now = now.Add(999 * time.Millisecond)
	mu.Unlock()
	c.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil))
	if n := renders.Load(); n != 1 {
		t.Fatalf("a scrape within the age rendered again (%d renders)", n)
	}
	mu.Lock()
	now = now.Add(time.Millisecond)
	mu.Unlock()
	c.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil))
	if n := renders.Load(); n != 2 {
		t.Fatalf("a scrape after the age: %d renders, want 2", n)
	}
}
