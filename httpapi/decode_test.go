package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
	"github.com/hourglass-scheduler/hourglass/service"
	"github.com/hourglass-scheduler/hourglass/slots"
)

// FuzzDecodeCreate feeds arbitrary bodies to the create decoder: it must
// never panic, and whatever it accepts must satisfy the API's rules.
func FuzzDecodeCreate(f *testing.F) {
	for _, seed := range []string{
		`{"delay":"90s","target":{"url":"http://127.0.0.1/x"}}`,
		`{"id":"a.b:c-1","queue":"q","execute_at":"2030-01-01T00:00:00Z","payload":{"k":[1,2]},"target":{"url":"https://h/p","method":"put","headers":{"X-A":"b"},"timeout":"3s"},"max_attempts":3,"backoff":{"initial":"1s","max":"1m","multiplier":2}}`,
		`{"delay":"-1s"}`, `{"payload":"\u0000"}`, `[]`, `{"target":{"url":"ftp://x"}}`,
		`{"queue":"work","name":"job","delay":"0s","max_lateness":"5m"}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Unix(1_800_000_000, 0)
	oneGroup, _ := slots.Even(1)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req client.CreateTaskRequest
		if err := decodeJSON(body, &req); err != nil {
			return
		}
		b := &taskBuilder{limits: Limits{MaxPayload: 4096}, now: now, table: &oneGroup, group: 1}
		built, err := b.build(&req, "")
		if err != nil {
			if _, ok := err.(*apiError); !ok {
				t.Fatalf("build returned %T, not an API error: %v", err, err)
			}
			return
		}
		task := built.Task
		if checkName("id", task.Id, 128) != nil || checkName("queue", task.Queue, maxQueueLen) != nil {
			t.Fatalf("accepted id %q queue %q", task.Id, task.Queue)
		}
		if task.ExecuteAt < 0 || len(task.Payload) > 4096 || task.MaxAttempts > maxAttempts || task.MaxLateness < 0 {
			t.Fatalf("accepted task %+v", task)
		}
		if task.Target != nil { // else a pull task
			u, err := url.Parse(task.Target.Url)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("accepted target %q", task.Target.Url)
			}
			for k, v := range task.Target.Headers {
				if !validHeaderName(k) || !validHeaderValue(v) {
					t.Fatalf("accepted header %q: %q", k, v)
				}
			}
		}
		// The same request decodes to the same fingerprint.
		again, err := (&taskBuilder{limits: b.limits, now: now.Add(time.Second)}).build(&req, "")
		if err != nil || (req.ID != "" && !bytes.Equal(service.Fingerprint(again.Task, again.Delay), service.Fingerprint(task, built.Delay))) {
			t.Fatalf("fingerprint not stable: %v", err)
		}
	})
}

// FuzzDecodeQueue feeds arbitrary bodies to the queue settings decoder:
// it must never panic, and what it accepts must be within the limits.
func FuzzDecodeQueue(f *testing.F) {
	for _, seed := range []string{
		`{"max_attempts":3,"min_backoff":"2s","max_backoff":"1m","max_retry_duration":"1h","rate_limit":{"per_second":50,"burst":5},"max_concurrent":7,"paused":true}`,
		`{"rate_limit":{"per_second":1e308}}`, `{"min_backoff":"-1s"}`, `{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req client.QueueSettings
		if err := decodeJSON(body, &req); err != nil {
			return
		}
		q, err := buildQueue("q", &req)
		if err != nil {
			if _, ok := err.(*apiError); !ok {
				t.Fatalf("buildQueue returned %T, not an API error: %v", err, err)
			}
			return
		}
		if q.MaxAttempts > maxAttempts || q.MinBackoff < 0 || q.MaxBackoff < 0 || q.MaxRetryDuration < 0 ||
			q.Rate < 0 || q.Rate > maxRate || q.Rate != q.Rate || q.Burst > maxBurst ||
			q.MinBackoff > 0 && q.MaxBackoff > 0 && q.MaxBackoff < q.MinBackoff {
			t.Fatalf("accepted queue %+v", q)
		}
	})
}

// TestFingerprint: equal requests hash alike, any change to a field that
// makes the task different hashes differently, and field boundaries count.
func TestFingerprint(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	base := func() client.CreateTaskRequest {
		return client.CreateTaskRequest{ID: "a", Queue: "q", Name: "n", Delay: "1m", Payload: []byte(`{"x":1}`),
			Target:      &client.Target{URL: "http://h/p", Headers: map[string]string{"A": "1", "B": "2"}},
			MaxAttempts: 3, Backoff: &client.Backoff{Initial: "1s"}}
	}
	fp := func(r client.CreateTaskRequest) []byte {
		t.Helper()
		built, err := (&taskBuilder{limits: Limits{MaxPayload: 1000}, now: now}).build(&r, "")
		if err != nil {
			t.Fatal(err)
		}
		return service.Fingerprint(built.Task, built.Delay)
	}
	want := fp(base())
	same := base()
	same.Payload = []byte(`{ "x": 1 }`) // re-spaced JSON is the same payload
	same.Target.Headers = map[string]string{"B": "2", "A": "1"}
	if !bytes.Equal(fp(same), want) {
		t.Fatal("the same request hashed differently")
	}
	for name, change := range map[string]func(*client.CreateTaskRequest){
		"id":          func(r *client.CreateTaskRequest) { r.ID = "b" },
		"queue/name":  func(r *client.CreateTaskRequest) { r.Queue, r.Name = "qn", "" },
		"delay":       func(r *client.CreateTaskRequest) { r.Delay = "2m" },
		"execute_at":  func(r *client.CreateTaskRequest) { r.Delay, r.ExecuteAt = "", "2030-01-01T00:00:00Z" },
		"payload":     func(r *client.CreateTaskRequest) { r.Payload = []byte(`{"x":2}`) },
		"url":         func(r *client.CreateTaskRequest) { r.Target.URL = "http://h/q" },
		"method":      func(r *client.CreateTaskRequest) { r.Target.Method = "PUT" },
		"timeout":     func(r *client.CreateTaskRequest) { r.Target.Timeout = "3s" },
		"header":      func(r *client.CreateTaskRequest) { r.Target.Headers["B"] = "3" },
		"header name": func(r *client.CreateTaskRequest) { r.Target.Headers = map[string]string{"A": "1", "B2": ""} },
		"attempts":    func(r *client.CreateTaskRequest) { r.MaxAttempts = 4 },
		"backoff":     func(r *client.CreateTaskRequest) { r.Backoff = nil },
	} {
		r := base()
		change(&r)
		if bytes.Equal(fp(r), want) {
			t.Errorf("changing %s kept the fingerprint", name)
		}
	}
}

// BenchmarkReadRequestBody reads a create batch of 100 tasks (12 KB) as
// io.ReadAll does (grown from 512 bytes by doubling) and as
// readRequestBody does (sized by Content-Length).
func BenchmarkReadRequestBody(b *testing.B) {
	task := `{"delay":"1h","payload":{"order":12345,"action":"expire"},"target":{"url":"http://127.0.0.1:9/hook"}}`
	body := []byte(`{"tasks":[` + strings.TrimSuffix(strings.Repeat(task+",", 100), ",") + `]}`)
	w := httptest.NewRecorder()
	b.Run("io.ReadAll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := io.ReadAll(http.MaxBytesReader(w, io.NopCloser(bytes.NewReader(body)), 1<<20)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("readRequestBody", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := &http.Request{Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
			if _, err := readRequestBody(w, r, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
}
