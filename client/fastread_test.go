package client

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/wire"
)

// answers are answers as the server writes them (wire.Append*), which
// readAnswer must read itself.
func answers(t testing.TB) map[string]struct {
	data []byte
	into func() any
} {
	now := time.Date(2026, 12, 2, 4, 5, 6, 789000000, time.UTC)
	later := now.Add(time.Minute)
	full := wire.Task{ID: "0190b8a0-0000-7000-8000-000000000001", Queue: "default", Name: "n", ExecuteAt: now,
		Payload:     json.RawMessage(`{"order":12345,"tags":["a",{"b":null}],"x":-1.5e3,"ok":true}`),
		Target:      &wire.Target{URL: "http://127.0.0.1:9/hook", Method: "PUT", Headers: map[string]string{"X-Trace": "t1"}, Timeout: "5s"},
		MaxAttempts: 3, Backoff: &wire.Backoff{Initial: "1s", Max: "1m", Multiplier: 2.5}, MaxLateness: "10m",
		State: "running", Attempts: 2, LastError: "500 Internal Server Error", Result: "done",
		LeaseExpiresAt: &later, NextAttemptAt: &later, CreatedAt: now, UpdatedAt: now, FiredAt: &now, CompletedAt: &later, Version: 123456789}
	plain := wire.Task{ID: "a", Queue: "default", ExecuteAt: now, State: "scheduled", CreatedAt: now, UpdatedAt: now, Version: 7}
	out := map[string]struct {
		data []byte
		into func() any
	}{}
	add := func(name string, data []byte, err error, into func() any) {
		if err != nil {
			t.Fatal(err)
		}
		out[name] = struct {
			data []byte
			into func() any
		}{data, into}
	}
	data, err := wire.AppendTask(nil, &full)
	add("full task", data, err, func() any { return &wire.Task{} })
	data, err = wire.AppendTask(nil, &plain)
	add("plain task", data, err, func() any { return &wire.Task{} })
	batch := wire.BatchResponse{Results: []wire.BatchResult{{Task: &full}, {Error: &wire.ErrorBody{Code: "conflict", Message: "taken"}}, {Task: &plain}}}
	data, err = wire.AppendBatchResponse(nil, &batch)
	add("batch", data, err, func() any { return &wire.BatchResponse{} })
	data, err = wire.AppendBatchResponse(nil, &wire.BatchResponse{Results: []wire.BatchResult{}})
	add("empty batch", data, err, func() any { return &wire.BatchResponse{} })
	lease := wire.LeaseResponse{Tasks: []wire.LeasedTask{{Task: full, Attempt: 2, LeaseToken: "tok"}, {Task: plain, Attempt: 1, LeaseToken: "tok2"}}}
	data, err = wire.AppendLeaseResponse(nil, &lease)
	add("lease", data, err, func() any { return &wire.LeaseResponse{} })
	data, err = wire.AppendLeaseResponse(nil, &wire.LeaseResponse{Tasks: []wire.LeasedTask{}})
	add("empty lease", data, err, func() any { return &wire.LeaseResponse{} })
	return out
}

func TestReadAnswerReadsServerAnswers(t *testing.T) {
	for name, a := range answers(t) {
		t.Run(name, func(t *testing.T) {
			fast, std := a.into(), a.into()
			if !readAnswer(a.data, fast) {
				t.Fatalf("readAnswer declined %s", a.data)
			}
			if err := json.Unmarshal(a.data, std); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fast, std) {
				t.Fatalf("readAnswer read\n%+v\nencoding/json read\n%+v", fast, std)
			}
		})
	}
}

func TestReadAnswerDeclines(t *testing.T) {
	for _, data := range []string{
		`{"id":"a","colour":"red"}`,          // a field it does not know
		`{"ID":"a"}`,                         // spelled otherwise
		`{"id":"a","id":"b"}`,                // given twice
		`{"target":{"url":"a"},"target":{}}`, // an object given twice
		`{"id":"\u0061"}`,                    // an escape
		`{"fired_at":null}`,                  // null
		`{"created_at":"yesterday"}`,         // not RFC 3339
		`{"version":-1}`,                     // negative
		`{"id":"a"} x`,                       // trailing data
	} {
		before := wire.Task{ID: "untouched"}
		task := before
		if readAnswer([]byte(data), &task) {
			t.Errorf("readAnswer read %s: %+v", data, task)
		}
		if !reflect.DeepEqual(task, before) {
			t.Errorf("readAnswer declined %s but changed the task", data)
		}
	}
}

// FuzzReadAnswer: whatever readAnswer reads, encoding/json reads alike.
func FuzzReadAnswer(f *testing.F) {
	for _, a := range answers(f) {
		f.Add(a.data)
	}
	f.Add([]byte(`{"results":[{"error":{"code":"x","message":"y"},"task":{"id":"a"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, into := range []func() any{
			func() any { return &wire.Task{} },
			func() any { return &wire.BatchResponse{} },
			func() any { return &wire.LeaseResponse{} },
		} {
			fast, std := into(), into()
			if !readAnswer(data, fast) {
				continue
			}
			if err := json.Unmarshal(data, std); err != nil {
				t.Fatalf("readAnswer read %q into %T, encoding/json refused it: %v", data, fast, err)
			}
			if !reflect.DeepEqual(fast, std) {
				t.Fatalf("%q: readAnswer read\n%+v\nencoding/json read\n%+v", data, fast, std)
			}
		}
	})
}

// BenchmarkReadBatchAnswer reads a batch create's answer of 50 tasks,
// with readAnswer and with encoding/json.
func BenchmarkReadBatchAnswer(b *testing.B) {
	now := time.Date(2026, 12, 2, 4, 5, 6, 789000000, time.UTC)
	var r wire.BatchResponse
	for i := range 50 {
		r.Results = append(r.Results, wire.BatchResult{Task: &wire.Task{
			ID: fmt.Sprintf("0190b8a0-0000-7000-8000-%012d", i), Queue: "default", ExecuteAt: now.Add(time.Hour),
			Payload: json.RawMessage(`{"order":12345,"action":"expire"}`), Target: &wire.Target{URL: "http://127.0.0.1:9/hook", Method: "POST", Timeout: "10s"},
			State: "scheduled", CreatedAt: now, UpdatedAt: now, Version: 12345}})
	}
	data, err := wire.AppendBatchResponse(nil, &r)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		read func([]byte, *wire.BatchResponse) error
	}{
		{"readAnswer", func(d []byte, v *wire.BatchResponse) error {
			if !readAnswer(d, v) {
				return fmt.Errorf("declined")
			}
			return nil
		}},
		{"encoding-json", func(d []byte, v *wire.BatchResponse) error { return json.Unmarshal(d, v) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var out wire.BatchResponse
				if err := c.read(data, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
