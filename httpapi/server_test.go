package httpapi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/wire"
)

// serveReal serves handler with NewServer's limits on a real listener.
func serveReal(t *testing.T, handler http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), handler)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// A client that sends headers over 64 KiB is refused with 431, and one
// that trickles a request and never finishes its headers is cut off (after
// the 10 s header deadline) rather than holding a connection forever.
func TestServerRefusesHostileClients(t *testing.T) {
	t.Parallel()
	addr := serveReal(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 128<<10)+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("headers of 128 KiB: %v %v, want 431", resp, err)
	}

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	began := time.Now()
	if _, err := io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadAll(slow) // until the server closes it (after a 408, if it sends one)
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatalf("a client that never finished its headers was not cut off within 30s: %v", err)
	}
	t.Logf("a slow client was cut off after %v", time.Since(began).Round(100*time.Millisecond))
}

// TestFullDiskIs507: a write that failed because the data directory's
// disk is full (the raft log could not grow) is answered 507, naming the
// cause, not 500.
func TestFullDiskIs507(t *testing.T) {
	api := New(Config{})
	err := fmt.Errorf("propose: %w", &fs.PathError{Op: "write", Path: "/data/groups/1/raft.db", Err: syscall.ENOSPC})
	status, body := api.classify(err)
	if status != http.StatusInsufficientStorage || body.Code != wire.CodeResourceExhausted || !strings.Contains(body.Message, "disk of the data directory is full") {
		t.Fatalf("a full disk answered %d %+v", status, body)
	}
}
