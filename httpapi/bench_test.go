package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkCreateHTTP drives POST /v1/tasks (one task per request) and
// POST /v1/tasks/batch (100 per request) from 64 concurrent keep-alive
// clients against one real node, and reports tasks/s. Each op is one task.
func BenchmarkCreateHTTP(b *testing.B) {
	const clients = 64
	body := `{"delay":"1h","payload":{"order":12345,"action":"expire"},"target":{"url":"http://127.0.0.1:9/hook"}}`
	for _, bc := range []struct {
		name    string
		path    string
		perReq  int
		payload []byte
	}{
		{"single", "/v1/tasks", 1, []byte(body)},
		{"batch100", "/v1/tasks/batch", 100, []byte(`{"tasks":[` + strings.TrimSuffix(strings.Repeat(body+",", 100), ",") + `]}`)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newTestServer(b, func(c *Config) { c.Limits = Limits{} })
			transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
			defer transport.CloseIdleConnections()
			hc := &http.Client{Transport: transport}
			requests := (b.N + bc.perReq - 1) / bc.perReq
			var next atomic.Int64
			var failed atomic.Int64
			var firstErr sync.Once
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(requests) {
						resp, err := hc.Post(s.URL+bc.path, "application/json", bytes.NewReader(bc.payload))
						if err != nil {
							failed.Add(1)
							firstErr.Do(func() { b.Error(err) })
							continue
						}
						data, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode/100 != 2 {
							failed.Add(1)
							firstErr.Do(func() { b.Errorf("%d %s", resp.StatusCode, data) })
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d requests failed", failed.Load())
			}
			b.ReportMetric(float64(requests*bc.perReq)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
