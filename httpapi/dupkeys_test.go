package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

func TestDuplicateKey(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{`{"id":"a","queue":"q"}`, ""},
		{`{"id":"a","id":"b"}`, "id"},
		{`{"id":"a","\u0069d":"b"}`, "id"},
		{`{"tasks":[{"id":"a"},{"id":"b","delay":"1s","delay":"2s"}]}`, "tasks[1].delay"},
		{`{"target":{"url":"x","headers":{"X":"1","Y":"2","X":"3"}}}`, "target.headers.X"},
		{`{"a":{"b":1},"c":{"b":1}}`, ""},
		{`{"payload":["x",{"k":1},{"k":2,"k":3}]}`, "payload[2].k"},
		{`{"s":"a \"quoted\" \\ string","t":"}{]["}`, ""},
		{`[{"a":1},{"a":1}]`, ""},
	} {
		got, dup := duplicateKey([]byte(c.in))
		if got != c.want || dup != (c.want != "") {
			t.Errorf("duplicateKey(%s) = %q, %v; want %q", c.in, got, dup, c.want)
		}
	}
}

// referenceDuplicate finds whether valid JSON has a repeated key in an
// object, with encoding/json's token stream.
func referenceDuplicate(data []byte) (bool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers past float64's range are valid JSON
	type frame struct {
		object bool
		seen   map[string]bool
		key    bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.key = true
				}
				stack = append(stack, &frame{object: v == '{', seen: map[string]bool{}, key: v == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.object && top.key {
				if top.seen[v] {
					return true, nil
				}
				top.seen[v] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.object {
			top.key = true
		}
	}
}

// FuzzDuplicateKey: on any valid JSON, duplicateKey agrees with a checker
// built on encoding/json's tokens, and never panics.
func FuzzDuplicateKey(f *testing.F) {
	for _, seed := range []string{`{"id":"a","id":"b"}`, `{"a":[{"b":1},{"b":1,"b":2}]}`, `{"\u0061":1,"a":2}`, `[1,"x",{"k":{}}]`, `"s"`, `{"a":"\"","b":"\\"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		want, err := referenceDuplicate(data)
		if err != nil {
			t.Fatalf("encoding/json's tokens refused JSON that json.Valid accepts: %v", err)
		}
		if path, got := duplicateKey(data); got != want {
			t.Fatalf("duplicateKey(%s) = %q, %v; the reference says %v", data, path, got, want)
		}
	})
}

// BenchmarkDuplicateKey checks a create batch of 100 tasks as the SDK
// sends it.
func BenchmarkDuplicateKey(b *testing.B) {
	data := sdkBatch(100)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, dup := duplicateKey(data); dup {
			b.Fatal("duplicate")
		}
	}
}
