package httpapi

import (
	"strconv"
	"unicode/utf8"

	"github.com/hourglass-scheduler/hourglass/wire"
)

// decodeFast reads the bodies sent most — creates, batches of creates,
// leases and acks — without encoding/json's reflection (a 100-task batch:
// several times faster). It takes only a plain subset of JSON: keys
// spelled exactly as the field names, strings without escapes, integers
// without fraction or exponent, no nulls, no nesting past maxFastDepth
// in payloads. Anything else — every error above all — it declines
// (false, v untouched), and decodeJSON reads the body with encoding/json
// as before, so that what is accepted, refused and said is the same
// either way; FuzzDecodeFast holds it to that.
func decodeFast(data []byte, v any) bool {
	r := jsonReader{data: data}
	switch v := v.(type) {
	case *wire.CreateTaskRequest:
		var req wire.CreateTaskRequest
		if !r.createTask(&req, nil) || !r.end() {
			return false
		}
		*v = req
	case *wire.BatchRequest:
		var req wire.BatchRequest
		ok := r.object(func(key []byte) bool {
			if string(key) != "tasks" {
				return false
			}
			req.Tasks = []wire.CreateTaskRequest{}
			return r.array(func() bool {
				var prev *wire.CreateTaskRequest
				if n := len(req.Tasks); n > 0 {
					prev = &req.Tasks[n-1]
				}
				req.Tasks = append(req.Tasks, wire.CreateTaskRequest{})
				return r.createTask(&req.Tasks[len(req.Tasks)-1], prev)
			})
		})
		if !ok || !r.end() {
			return false
		}
		*v = req
	case *wire.AcksRequest:
		var req wire.AcksRequest
		ok := r.object(func(key []byte) bool {
			if string(key) != "acks" {
				return false
			}
			req.Acks = []wire.AckItem{}
			return r.array(func() bool {
				req.Acks = append(req.Acks, wire.AckItem{})
				return r.ackItem(&req.Acks[len(req.Acks)-1])
			})
		})
		if !ok || !r.end() {
			return false
		}
		*v = req
	case *wire.AckRequest:
		var req wire.AckRequest
		ok := r.object(func(key []byte) bool {
			switch string(key) {
			case "lease_token":
				return r.str(&req.LeaseToken)
			case "attempt":
				return r.integer(&req.Attempt)
			case "result":
				return r.str(&req.Result)
			}
			return false
		})
		if !ok || !r.end() {
			return false
		}
		*v = req
	case *wire.LeaseRequest:
		var req wire.LeaseRequest
		ok := r.object(func(key []byte) bool {
			switch string(key) {
			case "max":
				return r.integer(&req.Max)
			case "wait":
				return r.str(&req.Wait)
			case "lease":
				return r.str(&req.Lease)
			}
			return false
		})
		if !ok || !r.end() {
			return false
		}
		*v = req
	default:
		return false
	}
	return true
}

// maxFastDepth is how deeply a payload may nest for decodeFast to read it.
const maxFastDepth = 64

// jsonReader reads JSON from data at pos; each method reports false where
// the input leaves the subset decodeFast takes.
type jsonReader struct {
	data []byte
	pos  int
}

func (r *jsonReader) space() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// next skips white space and takes c if it comes next.
func (r *jsonReader) next(c byte) bool {
	r.space()
	if r.pos < len(r.data) && r.data[r.pos] == c {
		r.pos++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (r *jsonReader) end() bool {
	r.space()
	return r.pos == len(r.data)
}

// object reads an object, handing each key (a plain string, as a slice of
// data) to field, which reads its value.
func (r *jsonReader) object(field func(key []byte) bool) bool {
	if !r.next('{') {
		return false
	}
	if r.next('}') {
		return true
	}
	for {
		r.space()
		key, ok := r.plain()
		if !ok || !r.next(':') {
			return false
		}
		r.space()
		if !field(key) {
			return false
		}
		if r.next(',') {
			continue
		}
		return r.next('}')
	}
}

// array reads an array, calling elem to read each element.
func (r *jsonReader) array(elem func() bool) bool {
	if !r.next('[') {
		return false
	}
	if r.next(']') {
		return true
	}
	for {
		r.space()
		if !elem() {
			return false
		}
		if r.next(',') {
			continue
		}
		return r.next(']')
	}
}

// plain reads a string without escapes or control characters, in valid
// UTF-8 (encoding/json would replace invalid bytes), and returns what is
// between its quotes.
func (r *jsonReader) plain() ([]byte, bool) {
	if r.pos >= len(r.data) || r.data[r.pos] != '"' {
		return nil, false
	}
	start, ascii := r.pos+1, true
	for i := start; i < len(r.data); i++ {
		switch c := r.data[i]; {
		case c == '"':
			s := r.data[start:i]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			r.pos = i + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (r *jsonReader) str(dst *string) bool {
	return r.strLike(dst, "")
}

// strLike is str sharing like's string when the value is the same (the
// tasks of a batch mostly have one queue, one target).
func (r *jsonReader) strLike(dst *string, like string) bool {
	s, ok := r.plain()
	switch {
	case !ok:
		return false
	case like != "" && string(s) == like:
		*dst = like
	default:
		*dst = string(s)
	}
	return true
}

// number reads a number as JSON spells them and returns its text.
func (r *jsonReader) number() ([]byte, bool) {
	d, start := r.data, r.pos
	i := start
	digits := func() bool {
		from := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i > from
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		return nil, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	r.pos = i
	return d[start:i], true
}

// integer reads a number without fraction or exponent into an int, up to
// 18 digits (no overflow to check).
func (r *jsonReader) integer(dst *int) bool {
	lit, ok := r.number()
	if !ok {
		return false
	}
	digits, neg := lit, false
	if digits[0] == '-' {
		digits, neg = digits[1:], true
	}
	if len(digits) > 18 {
		return false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	*dst = n
	return true
}

// float reads a number into a float64 as encoding/json does.
func (r *jsonReader) float(dst *float64) bool {
	lit, ok := r.number()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return false
	}
	*dst = f
	return true
}

// raw reads any JSON value but null (a payload) and returns its text,
// a slice of data, as encoding/json gives a json.RawMessage its copy.
func (r *jsonReader) raw() ([]byte, bool) {
	start := r.pos
	if r.pos < len(r.data) && r.data[r.pos] == 'n' { // null: left to encoding/json
		return nil, false
	}
	if !r.skip(0) {
		return nil, false
	}
	return r.data[start:r.pos], true
}

// skip reads over one JSON value, checking it is well formed.
func (r *jsonReader) skip(depth int) bool {
	if r.pos >= len(r.data) || depth > maxFastDepth {
		return false
	}
	switch c := r.data[r.pos]; {
	case c == '{':
		return r.object(func([]byte) bool { return r.skip(depth + 1) })
	case c == '[':
		return r.array(func() bool { return r.skip(depth + 1) })
	case c == '"':
		return r.skipString()
	case c == '-' || c >= '0' && c <= '9':
		_, ok := r.number()
		return ok
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(r.data)-r.pos >= len(lit) && string(r.data[r.pos:r.pos+len(lit)]) == lit {
			r.pos += len(lit)
			return true
		}
	}
	return false
}

// skipString reads over a string, escapes and all, checking them; the
// bytes in it are kept as they are (a payload is not decoded).
func (r *jsonReader) skipString() bool {
	d := r.data
	for i := r.pos + 1; i < len(d); i++ {
		switch c := d[i]; {
		case c == '"':
			r.pos = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			i++
			if i >= len(d) {
				return false
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(d) {
					return false
				}
				for _, h := range d[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				i += 4
			default:
				return false
			}
		}
	}
	return false
}

// createTask reads a task; prev, if not nil, is the one before it in a
// batch, whose strings it shares where they are the same.
func (r *jsonReader) createTask(t, prev *wire.CreateTaskRequest) bool {
	if prev == nil {
		prev = &wire.CreateTaskRequest{}
	}
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return r.str(&t.ID)
		case "queue":
			return r.strLike(&t.Queue, prev.Queue)
		case "name":
			return r.str(&t.Name)
		case "execute_at":
			return r.str(&t.ExecuteAt)
		case "delay":
			return r.str(&t.Delay)
		case "payload":
			p, ok := r.raw()
			t.Payload = p
			return ok
		case "target":
			t.Target = &wire.Target{}
			return r.target(t.Target, prev.Target)
		case "max_attempts":
			return r.integer(&t.MaxAttempts)
		case "backoff":
			t.Backoff = &wire.Backoff{}
			return r.object(func(key []byte) bool {
				switch string(key) {
				case "initial":
					return r.str(&t.Backoff.Initial)
				case "max":
					return r.str(&t.Backoff.Max)
				case "multiplier":
					return r.float(&t.Backoff.Multiplier)
				}
				return false
			})
		case "max_lateness":
			return r.str(&t.MaxLateness)
		}
		return false
	})
}

func (r *jsonReader) target(t, prev *wire.Target) bool {
	if prev == nil {
		prev = &wire.Target{}
	}
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "url":
			return r.strLike(&t.URL, prev.URL)
		case "method":
			return r.strLike(&t.Method, prev.Method)
		case "timeout":
			return r.strLike(&t.Timeout, prev.Timeout)
		case "headers":
			if t.Headers == nil {
				t.Headers = map[string]string{}
			}
			return r.object(func(name []byte) bool {
				var v string
				if !r.str(&v) {
					return false
				}
				t.Headers[string(name)] = v
				return true
			})
		}
		return false
	})
}

func (r *jsonReader) ackItem(a *wire.AckItem) bool {
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return r.str(&a.ID)
		case "lease_token":
			return r.str(&a.LeaseToken)
		case "attempt":
			return r.integer(&a.Attempt)
		case "result":
			return r.str(&a.Result)
		}
		return false
	})
}
