package main

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func benchPayload(i, size int) []byte { return appendPayload(nil, i, size) }

func TestBenchPayload(t *testing.T) {
	for _, tc := range []struct{ i, size int }{{0, 0}, {7, 64}, {123456, 10}, {42, 1000}} {
		p := benchPayload(tc.i, tc.size)
		if len(p) < tc.size || (len(p) > tc.size && tc.size >= 20) {
			t.Errorf("payload(%d, %d) is %d bytes", tc.i, tc.size, len(p))
		}
		if i, ok := taskIndex(p); !ok || i != tc.i {
			t.Errorf("taskIndex(%s) = %d, %v; want %d", p, i, ok, tc.i)
		}
	}
	for _, bad := range []string{``, `{}`, `{"i":x,"pad":""}`, `{"i":12`, `{"j":1,"pad":""}`} {
		if i, ok := taskIndex([]byte(bad)); ok {
			t.Errorf("taskIndex(%q) = %d, want not ok", bad, i)
		}
	}
}

// The checker tells first deliveries, duplicates, early ones, deliveries
// of unacknowledged tasks and strangers apart.
func TestChecker(t *testing.T) {
	now := time.Now().UnixNano()
	due := []int64{now - int64(time.Second), now - int64(time.Second), now + int64(time.Hour), now - int64(time.Second)}
	c := newChecker("run1", due)
	c.acked[0].Store(true)
	c.acked[1].Store(true)
	c.acked[2].Store(true)
	post := func(path string, i int) {
		body := string(benchPayload(i, 32))
		if i < 0 {
			body = "junk"
		}
		w := httptest.NewRecorder()
		c.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		if w.Code != http.StatusOK {
			t.Fatalf("receiver answered %d", w.Code)
		}
	}
	post("/bench/run1", 0)
	post("/bench/run1", 0) // duplicate
	post("/bench/run1", 2) // an hour early
	post("/bench/run1", 3) // not acknowledged
	post("/bench/run1", -1)
	post("/bench/run1", 99)
	post("/bench/other", 1) // another run's task
	v := c.verdict()
	want := verdict{Acknowledged: 3, Delivered: 2, Lost: 1, Early: 1, Duplicates: 1, Unacknowledged: 1, Malformed: 2}
	if v != want {
		t.Fatalf("verdict %+v, want %+v", v, want)
	}
	if v.ok() {
		t.Fatal("a run with a lost task passed")
	}
	if c.foreign.Load() != 1 {
		t.Fatalf("foreign %d, want 1", c.foreign.Load())
	}
	late, at := c.deliveries()
	if len(late) != 2 || len(at) != 2 || late[0] < time.Second || late[1] > -time.Minute {
		t.Fatalf("lateness %v", late)
	}
}

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	h := map[float64]float64{0.001: 90, 0.005: 99, 0.025: 100, inf: 100}
	for q, want := range map[float64]float64{0.5: 1, 0.9: 1, 0.95: 5, 0.99: 5, 0.999: 25} {
		if got := bucketQuantile(h, q); got != want {
			t.Errorf("q%v = %v, want %v", q, got, want)
		}
	}
	if got := bucketQuantile(map[float64]float64{0.001: 0, 1: 1, inf: 2}, 0.99); got != 1000 {
		t.Errorf("beyond the last bucket: %v, want the last finite bound, 1000", got)
	}
	if got := bucketQuantile(map[float64]float64{inf: 0}, 0.5); got != 0 {
		t.Errorf("empty histogram: %v", got)
	}
}

// TestCPUPerTask: the CPU the nodes spent, per task, over the creates and
// the whole run; nothing when a sample is missing or the nodes changed.
func TestCPUPerTask(t *testing.T) {
	nodes := []string{"a:1", "b:2"}
	got := cpuPerTask(&cpuSample{10, nodes}, &cpuSample{12, nodes}, &cpuSample{15, nodes}, 100_000)
	if got == nil || got.Nodes != 2 || math.Abs(got.CreateMicrosEach-20) > 1e-9 || math.Abs(got.RunMicrosEach-50) > 1e-9 {
		t.Fatalf("cpu per task: %+v", got)
	}
	if got := cpuPerTask(&cpuSample{10, nodes}, &cpuSample{12, nodes}, &cpuSample{15, nodes[:1]}, 100); got != nil {
		t.Fatalf("with a node gone: %+v", got)
	}
	if got := cpuPerTask(&cpuSample{10, nodes}, nil, &cpuSample{15, nodes}, 100); got != nil {
		t.Fatalf("with a sample missing: %+v", got)
	}
}
