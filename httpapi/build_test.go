package httpapi

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hourglass-scheduler/hourglass/slots"
	"github.com/hourglass-scheduler/hourglass/wire"
)

// BenchmarkBuildBatch checks and builds the tasks of a decoded batch of
// 100 as the SDK sends them (ids drawn, payloads compacted, fingerprints
// left to the service).
func BenchmarkBuildBatch(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(`{"tasks":[`)
	for i := range 100 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"queue":"default","execute_at":"2026-12-02T04:00:00.%06dZ","payload":{"order":%d,"action":"expire"},"target":{"url":"http://127.0.0.1:9000/hook"}}`, i, i)
	}
	body.WriteString(`]}`)
	var req wire.BatchRequest
	if err := decodeJSON(body.Bytes(), &req); err != nil {
		b.Fatal(err)
	}
	table, err := slots.Even(1)
	if err != nil {
		b.Fatal(err)
	}
	builder := &taskBuilder{limits: Limits{MaxPayload: 1 << 20}, now: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC), table: &table, group: 1}
	b.ReportAllocs()
	for b.Loop() {
		for i := range req.Tasks {
			if _, err := builder.build(&req.Tasks[i], "tasks[0]."); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func TestFormatUUID(t *testing.T) {
	var buf [36]byte
	for range 1000 {
		u := uuid.New()
		if got, want := string(formatUUID(&buf, u)), u.String(); got != want {
			t.Fatalf("formatUUID: %s, want %s", got, want)
		}
	}
}
