package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hourglass-scheduler/hourglass/slots"
)

// BenchmarkCreateHTTP drives POST /v1/tasks (one task per request) and
// POST /v1/tasks/batch (100 and 1,000 per request) from 64 concurrent keep-alive
// connections against one real node (raft log fsynced, bbolt state), and
// reports tasks/s. Each op is one task.
//
// The load generator shares the machine's cores with the server, so it is
// kept lean: pre-built HTTP/1.1 requests on raw connections, reading only
// the status line, the headers and the body by Content-Length. (With
// net/http's client the same server measures about 25% lower.)
func BenchmarkCreateHTTP(b *testing.B) {
	const clients = 64
	body := `{"delay":"1h","payload":{"order":12345,"action":"expire"},"target":{"url":"http://127.0.0.1:9/hook"}}`
	for _, bc := range []struct {
		name   string
		path   string
		perReq int
		body   string
	}{
		{"single", "/v1/tasks", 1, body},
		{"batch100", "/v1/tasks/batch", 100, `{"tasks":[` + strings.TrimSuffix(strings.Repeat(body+",", 100), ",") + `]}`},
		{"batch1000", "/v1/tasks/batch", 1000, `{"tasks":[` + strings.TrimSuffix(strings.Repeat(body+",", 1000), ",") + `]}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newTestServer(b, func(c *testConfig) { c.Limits = Limits{} })
			addr := strings.TrimPrefix(s.URL, "http://")
			request := []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				bc.path, addr, len(bc.body), bc.body))
			requests := (b.N + bc.perReq - 1) / bc.perReq
			firstIndex := s.group.Status().CommitIndex
			var next, failed atomic.Int64
			var firstErr sync.Once
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					conn, err := net.Dial("tcp", addr)
					if err != nil {
						failed.Add(1)
						firstErr.Do(func() { b.Error(err) })
						return
					}
					defer conn.Close()
					r := textproto.NewReader(bufio.NewReader(conn))
					for next.Add(1) <= int64(requests) {
						status, err := roundTrip(conn, r, request)
						if err != nil || status/100 != 2 {
							failed.Add(1)
							firstErr.Do(func() { b.Errorf("status %d, err %v", status, err) })
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d requests failed", failed.Load())
			}
			b.ReportMetric(float64(requests*bc.perReq)/b.Elapsed().Seconds(), "tasks/s")
			b.ReportMetric(float64(requests*bc.perReq)/float64(s.group.Status().CommitIndex-firstIndex), "tasks/entry")
		})
	}
}

// roundTrip writes one request and reads its response, returning the
// status code.
func roundTrip(conn net.Conn, r *textproto.Reader, request []byte) (int, error) {
	if _, err := conn.Write(request); err != nil {
		return 0, err
	}
	line, err := r.ReadLine()
	if err != nil {
		return 0, err
	}
	_, code, ok := strings.Cut(line, " ")
	if !ok || len(code) < 3 {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(code[:3])
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(h.Get("Content-Length"))
	if err != nil {
		return 0, fmt.Errorf("no Content-Length: %v", h)
	}
	_, err = io.CopyN(io.Discard, r.R, int64(n))
	return status, err
}

// BenchmarkBatchRouting: what batchAcross spends on a batch of 100 tasks
// without ids before it sends it whole to a group: decoding it for ids
// (as it did for every batch) or only scanning it for a string that may
// be one (mayNameID, which then spares the decode).
func BenchmarkBatchRouting(b *testing.B) {
	task := `{"delay":"1h","payload":{"order":12345,"action":"expire"},"target":{"url":"http://127.0.0.1:9/hook"}}`
	body := []byte(`{"tasks":[` + strings.TrimSuffix(strings.Repeat(task+",", 100), ",") + `]}`)
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			var peek struct {
				Tasks []struct {
					ID string `json:"id"`
				} `json:"tasks"`
			}
			if err := json.Unmarshal(body, &peek); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mayNameID", func(b *testing.B) {
		for b.Loop() {
			if mayNameID(body) {
				b.Fatal("an id?")
			}
		}
	})
}

// BenchmarkNewID makes the id of a task created without one, in group 1
// of a cluster of 4 and of 256 groups.
func BenchmarkNewID(b *testing.B) {
	for _, groups := range []int{4, 256} {
		table, err := slots.Even(groups)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			for b.Loop() {
				if id := newID(&table, 1); table.GroupOf(id) != 1 {
					b.Fatalf("id %s is not of group 1", id)
				}
			}
		})
	}
}
