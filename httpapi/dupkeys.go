package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// duplicateKey returns the path of the first key that appears twice in one
// object of data ("tasks[1].target.headers.X"), if any. data must be valid
// JSON (it runs after a successful decode): encoding/json keeps the last of
// two equal keys, so {"id":"a","id":"b"} would silently become b.
func duplicateKey(data []byte) (string, bool) {
	type frame struct {
		object    bool
		keys      []string
		key       string // the current key of an object
		index     int    // the current index of an array
		expectKey bool
	}
	var stack []*frame
	path := func(last string) string {
		var b strings.Builder
		for _, f := range stack[:len(stack)-1] {
			if f.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				fmt.Fprintf(&b, "[%d]", f.index)
			}
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(last)
		return b.String()
	}
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{':
			stack = append(stack, &frame{object: true, expectKey: true})
		case '[':
			stack = append(stack, &frame{})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if top := stack[len(stack)-1]; top.object {
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
			top := stack[len(stack)-1]
			if !top.object || !top.expectKey {
				continue
			}
			key := string(data[start+1 : i])
			// As the decoder reads it: escapes resolved, and bytes that
			// are not UTF-8 each made U+FFFD (so "\xc7" and "\xb4" are
			// the same key to it).
			if escaped || !utf8.ValidString(key) {
				if err := json.Unmarshal(data[start:i+1], &key); err != nil {
					return "", false // not valid JSON after all: the decoder said so
				}
			}
			for _, k := range top.keys {
				if k == key {
					return path(key), true
				}
			}
			top.keys = append(top.keys, key)
			top.key, top.expectKey = key, false
		}
	}
	return "", false
}
