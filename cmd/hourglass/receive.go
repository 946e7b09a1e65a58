package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hourglass-scheduler/hourglass/httpapi"
)

// runReceive is a webhook receiver for trying Hourglass out: it prints
// every delivery it gets and answers with a status of your choosing.
func runReceive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hourglass receive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	status := fs.Int("status", http.StatusOK, "HTTP status to answer every delivery with")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: receive takes no arguments, got %q", errUsage, rest)
	}
	if *status < 100 || *status > 599 {
		return fmt.Errorf("%w: --status %d is not an HTTP status", errUsage, *status)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	var mu sync.Mutex
	srv := httpapi.NewServer(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		now := time.Now()
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s", now.UTC().Format(time.RFC3339Nano), r.Method, r.URL.RequestURI())
		for _, h := range []string{"Hourglass-Task-Id", "Hourglass-Attempt", "Hourglass-Scheduled-At", "Hourglass-Fencing-Token"} {
			if v := r.Header.Get(h); v != "" {
				fmt.Fprintf(&b, " %s=%s", strings.TrimPrefix(h, "Hourglass-"), v)
			}
		}
		if at, err := time.Parse(time.RFC3339Nano, r.Header.Get("Hourglass-Scheduled-At")); err == nil {
			fmt.Fprintf(&b, " late=%v", now.Sub(at).Round(time.Microsecond))
		}
		if len(body) > 0 {
			fmt.Fprintf(&b, " body=%s", body)
		}
		mu.Lock()
		fmt.Fprintln(stdout, b.String())
		mu.Unlock()
		w.WriteHeader(*status)
	}))
	fmt.Fprintf(stderr, "receiving on http://%s/ (answering %d); Ctrl-C to stop\n", ln.Addr(), *status)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
