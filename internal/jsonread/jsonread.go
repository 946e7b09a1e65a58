package jsonread

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxDepth is how deeply a value Raw reads may nest.
const MaxDepth = 64

// Reader reads JSON from data, from the start on; each method reports
// false where the input leaves the plain subset it takes.
type Reader struct {
	data []byte
	pos  int
}

// New returns a Reader of data.
func New(data []byte) *Reader { return &Reader{data: data} }

// Space skips white space.
func (r *Reader) Space() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// Next skips white space and takes c if it comes next.
func (r *Reader) Next(c byte) bool {
	r.Space()
	if r.pos < len(r.data) && r.data[r.pos] == c {
		r.pos++
		return true
	}
	return false
}

// End reports whether only white space is left.
func (r *Reader) End() bool {
	r.Space()
	return r.pos == len(r.data)
}

// Object reads an object, handing each key (a plain string, as a slice of
// data) to field, which reads its value.
func (r *Reader) Object(field func(key []byte) bool) bool {
	if !r.Next('{') {
		return false
	}
	if r.Next('}') {
		return true
	}
	for {
		r.Space()
		key, ok := r.Plain()
		if !ok || !r.Next(':') {
			return false
		}
		r.Space()
		if !field(key) {
			return false
		}
		if r.Next(',') {
			continue
		}
		return r.Next('}')
	}
}

// Array reads an array, calling elem to read each element.
func (r *Reader) Array(elem func() bool) bool {
	if !r.Next('[') {
		return false
	}
	if r.Next(']') {
		return true
	}
	for {
		r.Space()
		if !elem() {
			return false
		}
		if r.Next(',') {
			continue
		}
		return r.Next(']')
	}
}

// Into reads the whole input into a fresh T with read and stores it in
// *v if read succeeds and only white space follows; otherwise v is left
// as it was, for encoding/json to read the input into.
func Into[T any](r *Reader, v *T, read func(*T) bool) bool {
	var x T
	if !read(&x) || !r.End() {
		return false
	}
	*v = x
	return true
}

// List reads an object whose one field, key, is an array, into *list
// (empty, not nil, for [], as encoding/json makes it): elem reads each
// element into the zero value appended for it, prev being the element
// before it (nil for the first). A key given twice is declined.
func List[T any](r *Reader, key string, list *[]T, elem func(e, prev *T) bool) bool {
	return r.Object(func(k []byte) bool {
		if string(k) != key || *list != nil {
			return false
		}
		*list = []T{}
		return r.Array(func() bool {
			*list = append(*list, *new(T))
			n := len(*list)
			var prev *T
			if n > 1 {
				prev = &(*list)[n-2]
			}
			return elem(&(*list)[n-1], prev)
		})
	})
}

// StringMap reads an object of plain strings into *m, made if nil (as
// encoding/json adds to a map it is given); a name given twice is
// declined.
func (r *Reader) StringMap(m *map[string]string) bool {
	if *m == nil {
		*m = map[string]string{}
	}
	return r.Object(func(name []byte) bool {
		if _, dup := (*m)[string(name)]; dup {
			return false
		}
		var v string
		if !r.Str(&v) {
			return false
		}
		(*m)[string(name)] = v
		return true
	})
}

// Plain reads a string without escapes or control characters, in valid
// UTF-8 (encoding/json would replace invalid bytes), and returns what is
// between its quotes.
func (r *Reader) Plain() ([]byte, bool) {
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

// Str reads a plain string (see Plain) into dst.
func (r *Reader) Str(dst *string) bool {
	return r.StrLike(dst, "")
}

// StrLike is Str sharing like's string when the value is the same (the
// tasks of a batch mostly have one queue, one target).
func (r *Reader) StrLike(dst *string, like string) bool {
	s, ok := r.Plain()
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

// Number reads a number as JSON spells them and returns its text.
func (r *Reader) Number() ([]byte, bool) {
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

// Int reads a number without fraction or exponent into an int, up to
// 18 digits (no overflow to check).
func (r *Reader) Int(dst *int) bool {
	lit, ok := r.Number()
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

// Float reads a number into a float64 as encoding/json does.
func (r *Reader) Float(dst *float64) bool {
	lit, ok := r.Number()
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

// Uint reads a number without sign, fraction or exponent into a uint64,
// up to 19 digits.
func (r *Reader) Uint(dst *uint64) bool {
	lit, ok := r.Number()
	if !ok || len(lit) > 19 {
		return false
	}
	var n uint64
	for _, c := range lit {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + uint64(c-'0')
	}
	*dst = n
	return true
}

// Time reads a plain string holding an RFC 3339 time into dst, as
// time.Time's UnmarshalJSON does.
func (r *Reader) Time(dst *time.Time) bool {
	s, ok := r.Plain()
	return ok && dst.UnmarshalText(s) == nil
}

// Raw reads any JSON value but null (a payload) and returns its text,
// a slice of data, as encoding/json gives a json.RawMessage its copy.
func (r *Reader) Raw() ([]byte, bool) {
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
func (r *Reader) skip(depth int) bool {
	if r.pos >= len(r.data) || depth > MaxDepth {
		return false
	}
	switch c := r.data[r.pos]; {
	case c == '{':
		return r.Object(func([]byte) bool { return r.skip(depth + 1) })
	case c == '[':
		return r.Array(func() bool { return r.skip(depth + 1) })
	case c == '"':
		return r.skipString()
	case c == '-' || c >= '0' && c <= '9':
		_, ok := r.Number()
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
func (r *Reader) skipString() bool {
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
