package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

// newToken runs "hourglass token create" and returns the token and its
// tokens-file line.
func newToken(t *testing.T, name, scopes string) (secret, line string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"token", "create", "--name", name, "--scopes", scopes}, &out, &errOut); code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("token create printed %q", out.String())
	}
	return strings.TrimSpace(lines[1]), strings.TrimSpace(lines[3])
}

// A server with --tokens-file accepts each token for its scopes only; the
// file holds no token, and a bad file stops the server with the line named.
func TestTokensFile(t *testing.T) {
	writer, writerLine := newToken(t, "ci", "tasks:write,tasks:read")
	worker, workerLine := newToken(t, "workers", "worker")
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("# API tokens\n"+writerLine+"\n"+workerLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), writer) || strings.Contains(string(data), worker) {
		t.Fatal("the tokens file holds a token itself")
	}
	srv := startServer(t, t.TempDir(), freeAddr(t), "--tokens-file", file)
	ctx := context.Background()
	req := client.CreateTaskRequest{Queue: "q", Delay: "1h", Target: &client.Target{URL: "http://127.0.0.1:9/"}}
	if _, err := client.New(srv.addr, writer).CreateTask(ctx, req); err != nil {
		t.Fatalf("create with a tasks:write token: %v", err)
	}
	var apiErr *client.Error
	if _, err := client.New(srv.addr, worker).CreateTask(ctx, req); !errors.As(err, &apiErr) || apiErr.Status != 403 {
		t.Fatalf("create with a worker token: %v, want 403", err)
	}
	if _, err := client.New(srv.addr, "").CreateTask(ctx, req); !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("create without a token: %v, want 401", err)
	}
	if _, err := client.New(srv.addr, worker).LeaseTasks(ctx, "q", client.LeaseRequest{}); err != nil {
		t.Fatalf("lease with a worker token: %v", err)
	}

	bad := filepath.Join(t.TempDir(), "bad-tokens")
	os.WriteFile(bad, []byte(writerLine+"\nops admin not-a-hash\n"), 0o600)
	out, err := exec.Command(binary, "server", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--raft-addr", freeAddr(t), "--gossip-addr", "127.0.0.1:0", "--tokens-file", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "line 2") {
		t.Fatalf("a bad tokens file: %v\n%s", err, out)
	}
}

// TestOnlyTheLeaseHolderFinishesALease is issue 17's probe of leases: a
// second worker token, which can read the task's id and attempt with a
// tasks:read token, can neither ack, nack nor extend another worker's
// lease: without the lease token it gets 400, with a made-up one 409,
// and the 409 tells neither the attempt nor the state. Task views never
// show the token; its holder's ack works.
func TestOnlyTheLeaseHolderFinishesALease(t *testing.T) {
	reader, readerLine := newToken(t, "reader", "tasks:write,tasks:read")
	holder, holderLine := newToken(t, "worker-a", "worker")
	thief, thiefLine := newToken(t, "worker-b", "worker")
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte(readerLine+"\n"+holderLine+"\n"+thiefLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, t.TempDir(), freeAddr(t), "--tokens-file", file)
	ctx := context.Background()
	if _, err := client.New(srv.addr, reader).CreateTask(ctx, client.CreateTaskRequest{ID: "job", Queue: "q", Delay: "0s", Payload: []byte(`{"secret":1}`)}); err != nil {
		t.Fatal(err)
	}
	leased, err := client.New(srv.addr, holder).LeaseTasks(ctx, "q", client.LeaseRequest{Wait: "5s"})
	if err != nil || len(leased) != 1 || len(leased[0].LeaseToken) != 22 {
		t.Fatalf("lease: %+v %v", leased, err)
	}
	for _, path := range []string{"/v1/tasks/job", "/v1/tasks?queue=q"} {
		body := httpGet(t, srv.addr+path, reader)
		if strings.Contains(body, "lease_token") || strings.Contains(body, leased[0].LeaseToken) {
			t.Fatalf("%s shows the lease token: %s", path, body)
		}
	}
	c := client.New(srv.addr, thief)
	var apiErr *client.Error
	if _, err := c.AckTask(ctx, "job", "", "stolen"); !errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(apiErr.Message, "lease_token") {
		t.Fatalf("ack without a lease token: %v", err)
	}
	guess := "AAAAAAAAAAAAAAAAAAAAAA"
	tries := map[string]func() error{
		"ack": func() error { _, err := c.AckTask(ctx, "job", guess, "stolen"); return err },
		"nack": func() error {
			_, err := c.NackTask(ctx, "job", client.NackRequest{LeaseToken: guess, Attempt: 1})
			return err
		},
		"extend": func() error { _, err := c.ExtendLease(ctx, "job", guess, 24*time.Hour); return err },
	}
	for name, try := range tries {
		err := try()
		if !errors.As(err, &apiErr) || apiErr.Status != 409 {
			t.Fatalf("%s with a made-up lease token: %v, want 409", name, err)
		}
		if strings.Contains(apiErr.Message, "attempt") || strings.Contains(apiErr.Message, "running") || strings.Contains(apiErr.Message, "secret") {
			t.Fatalf("%s: the 409 tells too much: %q", name, apiErr.Message)
		}
	}
	task, err := client.New(srv.addr, holder).AckTask(ctx, "job", leased[0].LeaseToken, "done")
	if err != nil || task.State != "succeeded" || task.Result != "done" {
		t.Fatalf("the holder's ack: %+v %v", task, err)
	}
}

// httpGet returns the body of a GET of url made with token.
func httpGet(t *testing.T, url, token string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(body)
}
