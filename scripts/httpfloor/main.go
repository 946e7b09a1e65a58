//go:build unix

// Command httpfloor measures what one HTTP exchange on loopback costs in
// CPU on this machine when exchanges come at a steady rate: the floor under
// any per-task figure of `hourglass bench` at that rate that involves a
// request per task (a webhook POST, a worker's lease or ack).
//
// It starts a copy of itself as a server (net/http, a handler that reads
// the body and answers a few bytes of JSON, as an empty lease answer is),
// POSTs to it at --rate for --seconds with the client named by --client
// (fasthttp, as webhooks are sent, or net/http, as the SDK sends), one
// request at a time, and prints the CPU time each process spent per
// request: the server's from its rusage when it exits, the client's from
// its own.
//
//	go run ./scripts/httpfloor --rate 1000 --seconds 10
//	go run ./scripts/httpfloor --rate 1000 --client net/http
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serve(); err != nil {
			fmt.Fprintln(os.Stderr, "httpfloor serve:", err)
			os.Exit(1)
		}
		return
	}
	rate := flag.Int("rate", 1000, "requests per second, one at a time")
	seconds := flag.Int("seconds", 10, "how long to send")
	client := flag.String("client", "fasthttp", "the client: fasthttp or net/http")
	flag.Parse()
	if *rate < 1 || *seconds < 1 {
		fmt.Fprintln(os.Stderr, "httpfloor: --rate and --seconds must be at least 1")
		os.Exit(2)
	}
	if err := run(*rate, *seconds, *client); err != nil {
		fmt.Fprintln(os.Stderr, "httpfloor:", err)
		os.Exit(1)
	}
}

// serve answers every request on a free loopback port, which it prints
// first, until interrupted.
func serve() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"tasks":[]}`))
	})}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func run(rate, seconds int, client string) error {
	post, err := poster(client)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	srv := exec.Command(self, "serve")
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	defer func() { _ = srv.Process.Kill() }()
	line := make([]byte, 64)
	n, err := out.Read(line)
	if err != nil {
		return fmt.Errorf("read server address: %w", err)
	}
	url := "http://" + strings.TrimSpace(string(line[:n])) + "/"
	if err := post(url); err != nil { // connect before counting
		return err
	}

	// Request i goes at i/rate after the start, or at once if the ones
	// before it took longer.
	requests, interval := rate*seconds, time.Second/time.Duration(rate)
	start, began := ownCPU(), time.Now()
	for i := range requests {
		time.Sleep(time.Until(began.Add(time.Duration(i) * interval)))
		if err := post(url); err != nil {
			return err
		}
	}
	clientCPU, took := ownCPU()-start, time.Since(began)
	if err := srv.Process.Signal(os.Interrupt); err != nil {
		return err
	}
	if err := srv.Wait(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	serverCPU := srv.ProcessState.UserTime() + srv.ProcessState.SystemTime()
	fmt.Printf("%d requests at %d/s (%.0f/s achieved), %s client, net/http server\n", requests, rate, float64(requests)/took.Seconds(), client)
	fmt.Printf("client CPU per request: %.1f us\n", us(clientCPU, requests))
	fmt.Printf("server CPU per request: %.1f us (its whole life, start-up included)\n", us(serverCPU, requests))
	return nil
}

// poster returns a function that POSTs a small JSON body to a URL with
// the client named and reads the whole answer.
func poster(client string) (func(url string) error, error) {
	body := []byte(`{"max":1}`)
	switch client {
	case "fasthttp":
		c := &fasthttp.Client{}
		return func(url string) error {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			req.Header.SetMethod(http.MethodPost)
			req.Header.SetContentType("application/json")
			req.SetBody(body)
			if err := c.Do(req, resp); err != nil {
				return err
			}
			if resp.StatusCode() != http.StatusOK {
				return fmt.Errorf("answer %d", resp.StatusCode())
			}
			return nil
		}, nil
	case "net/http":
		c := &http.Client{}
		return func(url string) error {
			resp, err := c.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("answer %d", resp.StatusCode)
			}
			return nil
		}, nil
	}
	return nil, fmt.Errorf("--client: want fasthttp or net/http, got %q", client)
}

func ownCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func us(d time.Duration, n int) float64 {
	return float64(d.Microseconds()) / float64(n)
}
