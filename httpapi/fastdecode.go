package httpapi

import (
	"github.com/hourglass-scheduler/hourglass/internal/jsonread"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// reader reads the bodies decodeFast takes.
type reader struct{ *jsonread.Reader }

// decodeFast reads the bodies sent most — creates, batches of creates,
// leases and acks — without encoding/json's reflection (a 100-task batch:
// several times faster). It takes only a plain subset of JSON: keys
// spelled exactly as the field names, strings without escapes, integers
// without fraction or exponent, no nulls, no nesting past jsonread.MaxDepth
// in payloads. Anything else — every error above all — it declines
// (false, v untouched), and decodeJSON reads the body with encoding/json
// as before, so that what is accepted, refused and said is the same
// either way; FuzzDecodeFast holds it to that.
func decodeFast(data []byte, v any) bool {
	r := &reader{jsonread.New(data)}
	switch v := v.(type) {
	case *wire.CreateTaskRequest:
		return jsonread.Into(r.Reader, v, func(t *wire.CreateTaskRequest) bool { return r.createTask(t, nil) })
	case *wire.BatchRequest:
		return jsonread.Into(r.Reader, v, func(b *wire.BatchRequest) bool {
			return jsonread.List(r.Reader, "tasks", &b.Tasks, r.createTask)
		})
	case *wire.AcksRequest:
		return jsonread.Into(r.Reader, v, func(b *wire.AcksRequest) bool {
			return jsonread.List(r.Reader, "acks", &b.Acks, func(a, _ *wire.AckItem) bool { return r.ackItem(a) })
		})
	case *wire.AckRequest:
		return jsonread.Into(r.Reader, v, func(a *wire.AckRequest) bool {
			return r.Object(func(key []byte) bool {
				switch string(key) {
				case "lease_token":
					return r.Str(&a.LeaseToken)
				case "attempt":
					return r.Int(&a.Attempt)
				case "result":
					return r.Str(&a.Result)
				}
				return false
			})
		})
	case *wire.LeaseRequest:
		return jsonread.Into(r.Reader, v, func(l *wire.LeaseRequest) bool {
			return r.Object(func(key []byte) bool {
				switch string(key) {
				case "max":
					return r.Int(&l.Max)
				case "wait":
					return r.Str(&l.Wait)
				case "lease":
					return r.Str(&l.Lease)
				}
				return false
			})
		})
	}
	return false
}

// createTask reads a task; prev, if not nil, is the one before it in a
// batch, whose strings it shares where they are the same.
func (r *reader) createTask(t, prev *wire.CreateTaskRequest) bool {
	if prev == nil {
		prev = &wire.CreateTaskRequest{}
	}
	return r.Object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return r.Str(&t.ID)
		case "queue":
			return r.StrLike(&t.Queue, prev.Queue)
		case "name":
			return r.Str(&t.Name)
		case "execute_at":
			return r.Str(&t.ExecuteAt)
		case "delay":
			return r.Str(&t.Delay)
		case "payload":
			p, ok := r.Raw()
			t.Payload = p
			return ok
		case "target":
			t.Target = &wire.Target{}
			return r.target(t.Target, prev.Target)
		case "max_attempts":
			return r.Int(&t.MaxAttempts)
		case "backoff":
			t.Backoff = &wire.Backoff{}
			return r.Object(func(key []byte) bool {
				switch string(key) {
				case "initial":
					return r.Str(&t.Backoff.Initial)
				case "max":
					return r.Str(&t.Backoff.Max)
				case "multiplier":
					return r.Float(&t.Backoff.Multiplier)
				}
				return false
			})
		case "max_lateness":
			return r.Str(&t.MaxLateness)
		}
		return false
	})
}

func (r *reader) target(t, prev *wire.Target) bool {
	if prev == nil {
		prev = &wire.Target{}
	}
	return r.Object(func(key []byte) bool {
		switch string(key) {
		case "url":
			return r.StrLike(&t.URL, prev.URL)
		case "method":
			return r.StrLike(&t.Method, prev.Method)
		case "timeout":
			return r.StrLike(&t.Timeout, prev.Timeout)
		case "headers":
			return r.StringMap(&t.Headers)
		}
		return false
	})
}

func (r *reader) ackItem(a *wire.AckItem) bool {
	return r.Object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return r.Str(&a.ID)
		case "lease_token":
			return r.Str(&a.LeaseToken)
		case "attempt":
			return r.Int(&a.Attempt)
		case "result":
			return r.Str(&a.Result)
		}
		return false
	})
}
