package httpapi

import (
	"bytes"
	"net/url"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

// FuzzDecodeCreate feeds arbitrary bodies to the create decoder: it must
// never panic, and whatever it accepts must satisfy the API's rules.
func FuzzDecodeCreate(f *testing.F) {
	for _, seed := range []string{
		`{"delay":"90s","target":{"url":"http://127.0.0.1/x"}}`,
		`{"id":"a.b:c-1","queue":"q","execute_at":"2030-01-01T00:00:00Z","payload":{"k":[1,2]},"target":{"url":"https://h/p","method":"put","headers":{"X-A":"b"},"timeout":"3s"},"max_attempts":3,"backoff":{"initial":"1s","max":"1m","multiplier":2}}`,
		`{"delay":"-1s"}`, `{"payload":"\u0000"}`, `[]`, `{"target":{"url":"ftp://x"}}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req client.CreateTaskRequest
		if err := decodeJSON(bytes.NewReader(body), &req); err != nil {
			return
		}
		b := &taskBuilder{limits: Limits{MaxPayload: 4096}, now: now}
		task, err := b.build(&req, "")
		if err != nil {
			if _, ok := err.(*apiError); !ok {
				t.Fatalf("build returned %T, not an API error: %v", err, err)
			}
			return
		}
		if checkName("id", task.Id, 128) != nil || checkName("queue", task.Queue, maxQueueLen) != nil {
			t.Fatalf("accepted id %q queue %q", task.Id, task.Queue)
		}
		if task.ExecuteAt < 0 || len(task.Payload) > 4096 || task.MaxAttempts < 1 || len(task.Fingerprint) != 32 {
			t.Fatalf("accepted task %+v", task)
		}
		u, err := url.Parse(task.Target.Url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("accepted target %q", task.Target.Url)
		}
		for k, v := range task.Target.Headers {
			if !validHeaderName(k) || !validHeaderValue(v) {
				t.Fatalf("accepted header %q: %q", k, v)
			}
		}
		// The same request decodes to the same fingerprint.
		again, err := (&taskBuilder{limits: b.limits, now: now.Add(time.Second)}).build(&req, "")
		if err != nil || (req.ID != "" && !bytes.Equal(again.Fingerprint, task.Fingerprint)) {
			t.Fatalf("fingerprint not stable: %v", err)
		}
	})
}
