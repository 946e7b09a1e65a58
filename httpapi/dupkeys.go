package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// duplicateKey returns the path of the first key that appears twice in one
// object of data ("tasks[1].target.headers.X"), if any. data must be valid
// JSON (it runs after a successful decode): encoding/json keeps the last of
// two equal keys, so {"id":"a","id":"b"} would silently become b.
//
// It runs on every request body, so it allocates nothing for a body whose
// keys have no escapes: the keys are slices of data, and the keys of all
// open objects share one list (an object's keys follow those of the
// objects around it, and are dropped when it closes).
func duplicateKey(data []byte) (string, bool) {
	type frame struct {
		object    bool
		firstKey  int     // where this object's keys start in keys
		key       jsonKey // the current key of an object
		index     int     // the current index of an array
		expectKey bool
	}
	var stackBuf [8]frame
	var keysBuf [32]jsonKey
	stack, keys := stackBuf[:0], keysBuf[:0]
	path := func(last jsonKey) string {
		var b strings.Builder
		for _, f := range stack[:len(stack)-1] {
			if f.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key.String())
			} else {
				fmt.Fprintf(&b, "[%d]", f.index)
			}
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(last.String())
		return b.String()
	}
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{':
			stack = append(stack, frame{object: true, firstKey: len(keys), expectKey: true})
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			if top := stack[len(stack)-1]; top.object {
				keys = keys[:top.firstKey]
			}
			stack = stack[:len(stack)-1]
		case ',':
			if top := &stack[len(stack)-1]; top.object {
				top.expectKey = true
			} else {
				top.index++
			}
		case '"':
			start := i
			escaped := false
			for i++; data[i] != '"'; i++ {
				if data[i] == '\\' {
					escaped = true
					i++
				}
			}
			if len(stack) == 0 {
				continue
			}
			top := &stack[len(stack)-1]
			if !top.object || !top.expectKey {
				continue
			}
			key := jsonKey{raw: data[start+1 : i]}
			// As the decoder reads it: escapes resolved, and bytes that
			// are not UTF-8 each made U+FFFD (so "\xc7" and "\xb4" are
			// the same key to it).
			if escaped || !utf8.Valid(key.raw) {
				var decoded string
				if err := json.Unmarshal(data[start:i+1], &decoded); err != nil {
					return "", false // not valid JSON after all: the decoder said so
				}
				key = jsonKey{decoded: decoded}
			}
			for _, k := range keys[top.firstKey:] {
				if k.equal(key) {
					return path(key), true
				}
			}
			keys = append(keys, key)
			top.key, top.expectKey = key, false
		}
	}
	return "", false
}

// jsonKey is an object's key as the decoder reads it: raw, when it is
// written as such (no escapes, valid UTF-8), else decoded.
type jsonKey struct {
	raw     []byte
	decoded string
}

func (k jsonKey) String() string {
	if k.raw != nil {
		return string(k.raw)
	}
	return k.decoded
}

func (k jsonKey) equal(o jsonKey) bool {
	if k.raw != nil && o.raw != nil {
		return bytes.Equal(k.raw, o.raw)
	}
	return k.String() == o.String()
}
