package wire

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The API's busiest answers are lists of tasks: a lease hands out up to a
// thousand, a batch create answers up to a thousand. encoding/json walks
// each by reflection, formats each time through an interface and scans
// each payload again to compact it; these append the same bytes directly
// (TestAppendMatchesEncodingJSON holds them to it, byte for byte), and
// leave what is rare (a target's headers, a backoff, a string that needs
// escaping, a payload that is not compact) to encoding/json.

// taskSize is about how many bytes AppendTask appends for t (a guess,
// not a bound: a list's answer is grown to it once, up front, rather than
// doubled over and over as it is written, which cost five times the
// writing itself for a thousand tasks; BenchmarkLeaseAnswer).
func taskSize(t *Task) int {
	n := 400 + len(t.ID) + len(t.Queue) + len(t.Name) + len(t.Payload) + len(t.LastError) + len(t.Result)
	if t.Target != nil {
		n += 64 + len(t.Target.URL)
	}
	return n
}

// AppendTask appends t as encoding/json would marshal it.
func AppendTask(dst []byte, t *Task) ([]byte, error) {
	dst = slices.Grow(dst, taskSize(t))
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, t.ID)
	dst = append(dst, `,"queue":`...)
	dst = appendString(dst, t.Queue)
	if t.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, t.Name)
	}
	var err error
	dst = append(dst, `,"execute_at":`...)
	if dst, err = appendTime(dst, t.ExecuteAt); err != nil {
		return dst, err
	}
	if len(t.Payload) > 0 {
		dst = append(dst, `,"payload":`...)
		if dst, err = appendRaw(dst, t.Payload); err != nil {
			return dst, err
		}
	}
	if t.Target != nil {
		dst = append(dst, `,"target":`...)
		if dst, err = appendMarshal(dst, t.Target); err != nil {
			return dst, err
		}
	}
	if t.MaxAttempts != 0 {
		dst = append(dst, `,"max_attempts":`...)
		dst = strconv.AppendInt(dst, int64(t.MaxAttempts), 10)
	}
	if t.Backoff != nil {
		dst = append(dst, `,"backoff":`...)
		if dst, err = appendMarshal(dst, t.Backoff); err != nil {
			return dst, err
		}
	}
	if t.MaxLateness != "" {
		dst = append(dst, `,"max_lateness":`...)
		dst = appendString(dst, t.MaxLateness)
	}
	dst = append(dst, `,"state":`...)
	dst = appendString(dst, t.State)
	dst = append(dst, `,"attempts":`...)
	dst = strconv.AppendInt(dst, int64(t.Attempts), 10)
	if t.LastError != "" {
		dst = append(dst, `,"last_error":`...)
		dst = appendString(dst, t.LastError)
	}
	if t.Result != "" {
		dst = append(dst, `,"result":`...)
		dst = appendString(dst, t.Result)
	}
	for _, f := range [...]struct {
		name string
		t    *time.Time
	}{
		{`,"lease_expires_at":`, t.LeaseExpiresAt}, {`,"next_attempt_at":`, t.NextAttemptAt},
		{`,"created_at":`, &t.CreatedAt}, {`,"updated_at":`, &t.UpdatedAt},
		{`,"fired_at":`, t.FiredAt}, {`,"completed_at":`, t.CompletedAt},
	} {
		if f.t != nil { // only the optional ones can be nil
			dst = append(dst, f.name...)
			if dst, err = appendTime(dst, *f.t); err != nil {
				return dst, err
			}
		}
	}
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, t.Version, 10)
	return append(dst, '}'), nil
}

// AppendLeaseResponse appends r as encoding/json would marshal it.
func AppendLeaseResponse(dst []byte, r *LeaseResponse) ([]byte, error) {
	if r.Tasks == nil {
		return append(dst, `{"tasks":null}`...), nil
	}
	size := 16
	for i := range r.Tasks {
		size += taskSize(&r.Tasks[i].Task) + 48 + len(r.Tasks[i].LeaseToken)
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, `{"tasks":[`...)
	for i := range r.Tasks {
		if i > 0 {
			dst = append(dst, ',')
		}
		lt := &r.Tasks[i]
		var err error
		if dst, err = AppendTask(dst, &lt.Task); err != nil {
			return dst, err
		}
		dst = dst[:len(dst)-1] // the task's closing brace: its fields go on
		dst = append(dst, `,"attempt":`...)
		dst = strconv.AppendInt(dst, int64(lt.Attempt), 10)
		dst = append(dst, `,"lease_token":`...)
		dst = appendString(dst, lt.LeaseToken)
		dst = append(dst, '}')
	}
	return append(dst, `]}`...), nil
}

// AppendBatchResponse appends r as encoding/json would marshal it.
func AppendBatchResponse(dst []byte, r *BatchResponse) ([]byte, error) {
	if r.Results == nil {
		return append(dst, `{"results":null}`...), nil
	}
	size := 16
	for _, res := range r.Results {
		size += 16
		if res.Task != nil {
			size += 8 + taskSize(res.Task)
		}
		if res.Error != nil {
			size += 32 + len(res.Error.Code) + len(res.Error.Message)
		}
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, `{"results":[`...)
	for i, res := range r.Results {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		var err error
		if res.Task != nil {
			dst = append(dst, `"task":`...)
			if dst, err = AppendTask(dst, res.Task); err != nil {
				return dst, err
			}
		}
		if res.Error != nil {
			if res.Task != nil {
				dst = append(dst, ',')
			}
			dst = append(dst, `"error":{"code":`...)
			dst = appendString(dst, res.Error.Code)
			dst = append(dst, `,"message":`...)
			dst = appendString(dst, res.Error.Message)
			dst = append(dst, '}')
		}
		dst = append(dst, '}')
	}
	return append(dst, `]}`...), nil
}

// appendString appends s as a JSON string. A string encoding/json would
// write as it is (printable ASCII, none of `"\<>&`) is copied; any other
// is left to encoding/json, for its escapes.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendTime appends t as time.Time's MarshalJSON does.
func appendTime(dst []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return appendMarshal(dst, t) // its error
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// appendRaw appends a payload as encoding/json does a RawMessage:
// compacted, with <, > and & (and U+2028, U+2029) escaped. A payload with
// none of them, nor whitespace, is copied as it is; it was checked to be
// JSON when the task was created.
func appendRaw(dst []byte, raw json.RawMessage) ([]byte, error) {
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xE2: // 0xE2: U+2028 and U+2029 begin so
			return appendMarshal(dst, raw)
		}
	}
	return append(dst, raw...), nil
}

func appendMarshal(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}
