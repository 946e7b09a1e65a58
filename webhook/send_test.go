package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// TestSendSignsAndReadsTheAnswer: a delivery carries its headers and a
// v2 signature a receiver verifies; 2xx is success; 429 and 503 are busy
// until their Retry-After (or a second); another status is its status
// line, with the body only when asked for; a target that does not answer
// is cut off at the task's timeout.
func TestSendSignsAndReadsTheAnswer(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Now()
	var mu sync.Mutex // the handler's goroutine writes, the test reads
	var got http.Header
	var gotBody []byte
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, gotBody = r.Header.Clone(), body
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/busy":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/secret":
			http.Error(w, "internal-admin-secret=hunter2", http.StatusForbidden)
		case "/hang":
			<-r.Context().Done()
		}
	}))
	defer recv.Close()
	s := &Sender{Client: NewClient(4, nil, nil), SigningKeys: [][]byte{key}, Now: func() time.Time { return now }}
	task := func(path string) *fsmpb.Task {
		return &fsmpb.Task{Id: "t1", Attempts: 2, FireTerm: 3, FireIndex: 44, DueAt: now.UnixNano(), Payload: []byte(`{"a":1}`),
			Target: &fsmpb.Target{Url: recv.URL + path, Timeout: int64(200 * time.Millisecond)}}
	}
	ctx := context.Background()
	if err := s.Send(ctx, task("/ok")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if got.Get(wire.HeaderAttempt) != "2" || got.Get(wire.HeaderFencingToken) != "3.44" || string(gotBody) != `{"a":1}` {
		t.Fatalf("headers %v body %q", got, gotBody)
	}
	if err := wire.VerifyWebhook([][]byte{key}, got, gotBody, time.Minute, now); err != nil {
		t.Fatalf("the receiver cannot verify the delivery: %v", err)
	}
	mu.Unlock()
	var busy *BusyError
	if err := s.Send(ctx, task("/busy")); !errors.As(err, &busy) || !busy.Until.Equal(now.Add(30*time.Second)) {
		t.Fatalf("429 with Retry-After 30: %v", err)
	}
	if err := s.Send(ctx, task("/down")); !errors.As(err, &busy) || !busy.Until.Equal(now.Add(time.Second)) || err.Error() != "HTTP 503 Service Unavailable" {
		t.Fatalf("503 without Retry-After: %v", err)
	}
	if err := s.Send(ctx, task("/secret")); err == nil || err.Error() != "HTTP 403 Forbidden" {
		t.Fatalf("403: %v", err)
	}
	s.ErrorBodyBytes = 15
	if err := s.Send(ctx, task("/secret")); err == nil || err.Error() != "HTTP 403 Forbidden: internal-admin-" {
		t.Fatalf("403 with 15 bytes of body asked for: %v", err)
	}
	if err := s.Send(ctx, task("/hang")); err == nil || !strings.Contains(err.Error(), "no response within the 200ms timeout") {
		t.Fatalf("a target that never answers: %v", err)
	}
}
