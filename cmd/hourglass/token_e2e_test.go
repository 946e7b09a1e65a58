package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
