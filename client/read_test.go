package client

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkReadAll reads a 50 KB answer (a batch create of 100 tasks) as
// io.ReadAll does and as readAll does, sized by Content-Length.
func BenchmarkReadAll(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 50_000)
	b.Run("io.ReadAll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := io.ReadAll(io.LimitReader(bytes.NewReader(body), 256<<20)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("readAll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp := &http.Response{Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
			if data, err := readAll(resp, 256<<20); err != nil || len(data) != len(body) {
				b.Fatal(len(data), err)
			}
		}
	})
}

// TestReadAllKeepsToItsLimit: a body longer than the limit is cut at it,
// and a Content-Length that claims more than is sent reads what is sent.
func TestReadAllKeepsToItsLimit(t *testing.T) {
	body := bytes.Repeat([]byte("y"), 3000)
	for _, c := range []struct {
		length int64
		limit  int64
		want   int
	}{
		{3000, 1 << 20, 3000},
		{-1, 1 << 20, 3000},
		{3000, 1000, 1000},
		{1 << 40, 1 << 20, 3000},
	} {
		resp := &http.Response{Body: io.NopCloser(bytes.NewReader(body)), ContentLength: c.length}
		data, err := readAll(resp, c.limit)
		if err != nil || len(data) != c.want || !bytes.Equal(data, body[:c.want]) {
			t.Errorf("Content-Length %d, limit %d: read %d bytes, %v; want %d", c.length, c.limit, len(data), err, c.want)
		}
	}
}
