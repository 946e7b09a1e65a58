package client

import (
	"time"

	"github.com/hourglass-scheduler/hourglass/internal/jsonread"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// readAnswer reads the answers the SDK gets most — a batch create's, a
// task's, a lease's — as the server writes them (wire.AppendTask and
// its kin), with jsonread instead of encoding/json's reflection (a batch
// answer of 50 tasks: several times faster). Anything else — a field it
// does not know, a key given twice, an escape, a null — it declines
// (false, out untouched), and the answer is read with encoding/json as
// before; FuzzReadAnswer holds the two readings to the same result.
func readAnswer(data []byte, out any) bool {
	r := answerReader{jsonread.New(data)}
	switch out := out.(type) {
	case *wire.BatchResponse:
		return jsonread.Into(r.Reader, out, func(v *wire.BatchResponse) bool {
			return jsonread.List(r.Reader, "results", &v.Results, func(res, _ *wire.BatchResult) bool { return r.batchResult(res) })
		})
	case *wire.Task:
		return jsonread.Into(r.Reader, out, func(v *wire.Task) bool {
			var seen uint32
			return r.Object(func(key []byte) bool { return r.taskField(v, key, &seen) })
		})
	case *wire.LeaseResponse:
		return jsonread.Into(r.Reader, out, func(v *wire.LeaseResponse) bool {
			return jsonread.List(r.Reader, "tasks", &v.Tasks, func(t, _ *wire.LeasedTask) bool { return r.leasedTask(t) })
		})
	}
	return false
}

type answerReader struct{ *jsonread.Reader }

func (r answerReader) batchResult(res *wire.BatchResult) bool {
	return r.Object(func(key []byte) bool {
		switch string(key) {
		case "task":
			if res.Task != nil {
				return false
			}
			res.Task = &wire.Task{}
			var seen uint32
			return r.Object(func(key []byte) bool { return r.taskField(res.Task, key, &seen) })
		case "error":
			if res.Error != nil {
				return false
			}
			res.Error = &wire.ErrorBody{}
			var seen uint32
			return r.Object(func(key []byte) bool {
				switch string(key) {
				case "code":
					return once(&seen, 0) && r.Str(&res.Error.Code)
				case "message":
					return once(&seen, 1) && r.Str(&res.Error.Message)
				}
				return false
			})
		}
		return false
	})
}

func (r answerReader) leasedTask(t *wire.LeasedTask) bool {
	var seen uint32
	return r.Object(func(key []byte) bool {
		switch string(key) {
		case "attempt":
			return once(&seen, 30) && r.Int(&t.Attempt)
		case "lease_token":
			return once(&seen, 31) && r.Str(&t.LeaseToken)
		}
		return r.taskField(&t.Task, key, &seen)
	})
}

// once marks field bit of seen, reporting false if it was marked already:
// encoding/json would merge a key given twice into what the first gave.
func once(seen *uint32, bit uint) bool {
	if *seen&(1<<bit) != 0 {
		return false
	}
	*seen |= 1 << bit
	return true
}

// taskField reads the value of a task's field key (bits 0 to 19 of seen).
func (r answerReader) taskField(t *wire.Task, key []byte, seen *uint32) bool {
	switch string(key) {
	case "id":
		return once(seen, 0) && r.Str(&t.ID)
	case "queue":
		return once(seen, 1) && r.Str(&t.Queue)
	case "name":
		return once(seen, 2) && r.Str(&t.Name)
	case "execute_at":
		return once(seen, 3) && r.Time(&t.ExecuteAt)
	case "payload":
		if !once(seen, 4) {
			return false
		}
		p, ok := r.Raw()
		t.Payload = p
		return ok
	case "target":
		if !once(seen, 5) {
			return false
		}
		t.Target = &wire.Target{}
		return r.target(t.Target)
	case "max_attempts":
		return once(seen, 6) && r.Int(&t.MaxAttempts)
	case "backoff":
		if !once(seen, 7) {
			return false
		}
		t.Backoff = &wire.Backoff{}
		var bseen uint32
		return r.Object(func(key []byte) bool {
			switch string(key) {
			case "initial":
				return once(&bseen, 0) && r.Str(&t.Backoff.Initial)
			case "max":
				return once(&bseen, 1) && r.Str(&t.Backoff.Max)
			case "multiplier":
				return once(&bseen, 2) && r.Float(&t.Backoff.Multiplier)
			}
			return false
		})
	case "max_lateness":
		return once(seen, 8) && r.Str(&t.MaxLateness)
	case "state":
		return once(seen, 9) && r.Str(&t.State)
	case "attempts":
		return once(seen, 10) && r.Int(&t.Attempts)
	case "last_error":
		return once(seen, 11) && r.Str(&t.LastError)
	case "result":
		return once(seen, 12) && r.Str(&t.Result)
	case "lease_expires_at":
		return once(seen, 13) && r.timePtr(&t.LeaseExpiresAt)
	case "next_attempt_at":
		return once(seen, 14) && r.timePtr(&t.NextAttemptAt)
	case "created_at":
		return once(seen, 15) && r.Time(&t.CreatedAt)
	case "updated_at":
		return once(seen, 16) && r.Time(&t.UpdatedAt)
	case "fired_at":
		return once(seen, 17) && r.timePtr(&t.FiredAt)
	case "completed_at":
		return once(seen, 18) && r.timePtr(&t.CompletedAt)
	case "version":
		return once(seen, 19) && r.Uint(&t.Version)
	}
	return false
}

func (r answerReader) timePtr(dst **time.Time) bool {
	var t time.Time
	if !r.Time(&t) {
		return false
	}
	*dst = &t
	return true
}

func (r answerReader) target(t *wire.Target) bool {
	var seen uint32
	return r.Object(func(key []byte) bool {
		switch string(key) {
		case "url":
			return once(&seen, 0) && r.Str(&t.URL)
		case "method":
			return once(&seen, 1) && r.Str(&t.Method)
		case "timeout":
			return once(&seen, 2) && r.Str(&t.Timeout)
		case "headers":
			if !once(&seen, 3) {
				return false
			}
			return r.StringMap(&t.Headers)
		}
		return false
	})
}
