package httpapi

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hourglass-scheduler/hourglass/internal/jsonread"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// fastBodies are bodies decodeFast must read itself (the shapes the SDK,
// the CLI and workers send), each with the type it is read into.
var fastBodies = []struct {
	name string
	body string
	into func() any
}{
	{"create", `{"queue":"default","delay":"1h","payload":{"order":12345,"action":"expire","tags":["a","b"],"ok":true,"none":null,"x":-1.5e3},"target":{"url":"http://127.0.0.1:9/hook","method":"PUT","headers":{"X-Trace":"t1","Ünï":"çödé"},"timeout":"5s"},"max_attempts":3,"backoff":{"initial":"1s","max":"1m","multiplier":2.5},"max_lateness":"10m","name":"n","id":"0190b8a0-0000-7000-8000-000000000001"}`, func() any { return &wire.CreateTaskRequest{} }},
	{"create with an escaped payload", "\t{ \"execute_at\" : \"2026-12-02T04:00:00Z\" , \"payload\" : \"a \\\"quoted\\\" \\u00e9 \\n line\" }\n", func() any { return &wire.CreateTaskRequest{} }},
	{"batch", `{"tasks":[{"delay":"1s","payload":{"i":1}},{"delay":"2s","payload":[1,2,{"a":[]}]},{"delay":"3s","payload":{}}]}`, func() any { return &wire.BatchRequest{} }},
	{"empty batch", `{"tasks":[]}`, func() any { return &wire.BatchRequest{} }},
	{"acks", `{"acks":[{"id":"a","lease_token":"t","attempt":2,"result":"ok"},{"id":"b","lease_token":"u"}]}`, func() any { return &wire.AcksRequest{} }},
	{"ack", `{"lease_token":"t","attempt":1,"result":"done"}`, func() any { return &wire.AckRequest{} }},
	{"lease", `{"max":100,"wait":"30s","lease":"1m"}`, func() any { return &wire.LeaseRequest{} }},
}

// declinedBodies are bodies decodeFast must leave to encoding/json.
var declinedBodies = []string{
	`{"Queue":"default"}`,                   // a key spelled otherwise
	`{"qu\u0065ue":"default"}`,              // an escaped key
	`{"queue":"d\u00e9fault"}`,              // an escaped value
	`{"queue":null}`,                        // null
	`{"payload":null}`,                      // a null payload
	`{"max_attempts":1.0}`,                  // not an integer
	`{"max_attempts":1e2}`,                  // not an integer either
	`{"max_attempts":12345678901234567890}`, // too long to read fast
	`{"queue":"default","colour":"red"}`,    // an unknown field
	`{"queue":"default"} {}`,                // trailing data
	`{"queue":"default"`,                    // cut short
	"{\"queue\":\"\xff\"}",                  // invalid UTF-8
	`{"payload":{"a":01}}`,                  // a malformed number
	`{"payload":"\x"}`,                      // a malformed escape
	`[]`,                                    // not an object
	``,                                      // nothing
	`{"payload":` + strings.Repeat("[", jsonread.MaxDepth+2) + strings.Repeat("]", jsonread.MaxDepth+2) + `}`,
}

func TestDecodeFastReadsCommonBodies(t *testing.T) {
	for _, c := range fastBodies {
		t.Run(c.name, func(t *testing.T) {
			fast, std := c.into(), c.into()
			if !decodeFast([]byte(c.body), fast) {
				t.Fatalf("decodeFast declined %s", c.body)
			}
			if err := decodeStd([]byte(c.body), std); err != nil {
				t.Fatalf("encoding/json refused %s: %v", c.body, err)
			}
			if !reflect.DeepEqual(fast, std) {
				t.Fatalf("decodeFast read\n%+v\nencoding/json read\n%+v", fast, std)
			}
		})
	}
}

func TestDecodeFastDeclines(t *testing.T) {
	for _, body := range declinedBodies {
		for _, into := range []any{&wire.CreateTaskRequest{}, &wire.BatchRequest{}} {
			before := reflect.ValueOf(into).Elem().Interface()
			if decodeFast([]byte(body), into) {
				t.Errorf("decodeFast read %q into %T: %+v", body, into, into)
			}
			if !reflect.DeepEqual(reflect.ValueOf(into).Elem().Interface(), before) {
				t.Errorf("decodeFast declined %q but changed %T", body, into)
			}
		}
	}
}

// FuzzDecodeFast: whatever decodeFast reads, encoding/json reads alike
// (with DisallowUnknownFields and no trailing data, as decodeJSON asks).
func FuzzDecodeFast(f *testing.F) {
	for _, c := range fastBodies {
		f.Add([]byte(c.body))
	}
	for _, body := range declinedBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, into := range []func() any{
			func() any { return &wire.CreateTaskRequest{} },
			func() any { return &wire.BatchRequest{} },
			func() any { return &wire.AcksRequest{} },
			func() any { return &wire.AckRequest{} },
			func() any { return &wire.LeaseRequest{} },
		} {
			fast, std := into(), into()
			if !decodeFast(data, fast) {
				continue
			}
			if err := decodeStd(data, std); err != nil {
				t.Fatalf("decodeFast read %q into %T, encoding/json refused it: %v", data, fast, err)
			}
			if !reflect.DeepEqual(fast, std) {
				t.Fatalf("%q: decodeFast read\n%+v\nencoding/json read\n%+v", data, fast, std)
			}
		}
	})
}

// sdkBatch is a create batch of n tasks as the SDK sends it.
func sdkBatch(n int) []byte {
	var body bytes.Buffer
	body.WriteString(`{"tasks":[`)
	for i := range n {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"queue":"default","execute_at":"2026-12-02T04:00:00.%06dZ","payload":{"i":%d,"pad":"xxxxxxxxxxxxxxxx"},"target":{"url":"http://127.0.0.1:9000/hook","headers":{"X-Trace":"t%d"}}}`, i, i, i)
	}
	body.WriteString(`]}`)
	return body.Bytes()
}

// BenchmarkDecodeBatch reads a create batch of 100 tasks as the SDK sends
// it, with decodeJSON (the fast reader) and with encoding/json.
func BenchmarkDecodeBatch(b *testing.B) {
	data := sdkBatch(100)
	for _, c := range []struct {
		name   string
		decode func([]byte, any) error
	}{{"decodeJSON", decodeJSON}, {"encoding-json", decodeStd}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var req wire.BatchRequest
				if err := c.decode(data, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
