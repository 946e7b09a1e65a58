package wire

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// strs are strings encoding/json writes as they are, and ones it escapes.
var strs = []string{"", "a", "task-0001", "018f3a2e-7b1c-7c3d-9e4f-a1b2c3d4e5f6", `say "hi"`, `back\slash`,
	"<b>&amp;</b>", "tab\there", "new\nline", "\x00\x1f", "héllo", "日本", "\u2028\u2029", "bad\xffutf8", "emoji 😀"}

// payloads are JSON values as a task may hold them: compact or not,
// with characters encoding/json escapes in a RawMessage.
var payloads = []string{``, `1`, `"s"`, `{"order":42}`, `{"a": [1, 2 ,3]}`, "{\n\t\"x\": true\n}", `{"h":"<script>&"}`,
	"\"\u2028\"", `[null,{"deep":{"er":[]}}]`, `{"é":"日本"}`}

func randTime(r *rand.Rand) time.Time {
	switch r.IntN(4) {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(r.Int64N(4e9), 0).UTC()
	case 2:
		return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC()
	}
	return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", 3600*r.IntN(13)))
}

func randTimePtr(r *rand.Rand) *time.Time {
	if r.IntN(2) == 0 {
		return nil
	}
	t := randTime(r)
	return &t
}

func randTask(r *rand.Rand) Task {
	s := func() string { return strs[r.IntN(len(strs))] }
	t := Task{
		ID: s(), Queue: s(), Name: s(), ExecuteAt: randTime(r), State: s(), Attempts: r.IntN(5) - 1,
		LastError: s(), Result: s(), MaxLateness: s(), MaxAttempts: r.IntN(3),
		LeaseExpiresAt: randTimePtr(r), NextAttemptAt: randTimePtr(r), CreatedAt: randTime(r), UpdatedAt: randTime(r),
		FiredAt: randTimePtr(r), CompletedAt: randTimePtr(r), Version: r.Uint64() >> r.IntN(64),
	}
	if p := payloads[r.IntN(len(payloads))]; p != "" {
		t.Payload = json.RawMessage(p)
	}
	if r.IntN(2) == 0 {
		t.Target = &Target{URL: s(), Method: s(), Timeout: s()}
		if r.IntN(2) == 0 {
			t.Target.Headers = map[string]string{s(): s(), s(): s()}
		}
	}
	if r.IntN(3) == 0 {
		t.Backoff = &Backoff{Initial: s(), Max: s(), Multiplier: r.Float64() * 3}
	}
	return t
}

// TestAppendMatchesEncodingJSON: the append encoders write what
// encoding/json writes, byte for byte, for tasks of every shape, lease
// answers and batch answers.
func TestAppendMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(what string, got []byte, err error, v any) {
		t.Helper()
		want, werr := json.Marshal(v)
		if (err != nil) != (werr != nil) {
			t.Fatalf("%s: error %v, encoding/json's %v", what, err, werr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	for range 2000 {
		task := randTask(r)
		got, err := AppendTask(nil, &task)
		check("task", got, err, task)

		var lease LeaseResponse
		if r.IntN(5) > 0 {
			lease.Tasks = []LeasedTask{}
			for range r.IntN(4) {
				lease.Tasks = append(lease.Tasks, LeasedTask{Task: randTask(r), Attempt: r.IntN(9), LeaseToken: strs[r.IntN(len(strs))]})
			}
		}
		got, err = AppendLeaseResponse(nil, &lease)
		check("lease answer", got, err, lease)

		var batch BatchResponse
		if r.IntN(5) > 0 {
			batch.Results = []BatchResult{}
			for range r.IntN(4) {
				var res BatchResult
				if r.IntN(3) > 0 {
					tk := randTask(r)
					res.Task = &tk
				}
				if r.IntN(3) == 0 {
					res.Error = &ErrorBody{Code: strs[r.IntN(len(strs))], Message: strs[r.IntN(len(strs))]}
				}
				batch.Results = append(batch.Results, res)
			}
		}
		got, err = AppendBatchResponse(nil, &batch)
		check("batch answer", got, err, batch)
	}
	// A time encoding/json refuses is refused.
	bad := Task{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	got, err := AppendTask(nil, &bad)
	check("a task of the year 10000", got, err, bad)
}

// FuzzAppendString: any string is appended as encoding/json marshals it.
func FuzzAppendString(f *testing.F) {
	for _, s := range strs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkLeaseAnswer(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	var lease LeaseResponse
	for i := range 1000 {
		now := time.Now().UTC()
		lease.Tasks = append(lease.Tasks, LeasedTask{Task: Task{
			ID: "018f3a2e-7b1c-7c3d-9e4f-" + string(rune('a'+i%26)) + "1b2c3d4e5f6", Queue: "bench-1a2b3c4d", ExecuteAt: now,
			Payload: json.RawMessage(`{"i":` + string(rune('0'+r.IntN(10))) + `,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`),
			State:   "running", Attempts: 1, LeaseExpiresAt: &now, CreatedAt: now, UpdatedAt: now, FiredAt: &now, Version: 123456,
		}, Attempt: 1, LeaseToken: "c2VjcmV0LXRva2VuLW9mLTMyLWJ5dGVzLWxvbmctLQ"})
	}
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(lease)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/task")
	})
	b.Run("append", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf, _ = AppendLeaseResponse(buf[:0], &lease)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/task")
	})
	b.Run("one-task-from-nil", func(b *testing.B) { // as the API answers a create
		t := &lease.Tasks[0].Task
		for b.Loop() {
			AppendTask(nil, t)
		}
	})
	b.Run("append-from-nil", func(b *testing.B) { // as the API answers
		for b.Loop() {
			AppendLeaseResponse(nil, &lease)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/task")
	})
}

// FuzzAppendPayload: any JSON payload is appended as encoding/json
// marshals it as a RawMessage.
func FuzzAppendPayload(f *testing.F) {
	for _, p := range payloads {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if !json.Valid(p) {
			return // refused at create
		}
		want, werr := json.Marshal(json.RawMessage(p))
		got, err := appendRaw(nil, p)
		if werr != nil || err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendRaw(%q) = %s, %v; want %s, %v", p, got, err, want, werr)
		}
	})
}
