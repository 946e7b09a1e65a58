package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/client"
)

// With --signing-keys-file every delivery carries a signature per key that
// client.VerifyWebhook accepts with either key (rotation), and that no
// other key verifies; the keys never appear in the server's log.
func TestSignedDeliveries(t *testing.T) {
	newKey := func() (string, []byte) {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"signing-key", "create"}, &out, &errOut); code != 0 {
			t.Fatalf("signing-key create: %s", errOut.String())
		}
		text := strings.TrimSpace(out.String())
		key, err := client.ParseSigningKey(text)
		if err != nil {
			t.Fatal(err)
		}
		return text, key
	}
	oldText, oldKey := newKey()
	newText, newKeyBytes := newKey()
	_, otherKey := newKey()
	file := filepath.Join(t.TempDir(), "signing-keys")
	os.WriteFile(file, []byte("# rotating: old and new\n"+oldText+"\n"+newText+"\n"), 0o600)

	var mu sync.Mutex
	verdicts := map[string][3]error{} // old key, new key, other key
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		mu.Lock()
		verdicts[r.Header.Get(client.HeaderTaskID)] = [3]error{
			client.VerifyWebhook([][]byte{oldKey}, r.Header, body, 0, now),
			client.VerifyWebhook([][]byte{newKeyBytes}, r.Header, body, 0, now),
			client.VerifyWebhook([][]byte{otherKey}, r.Header, body, 0, now),
		}
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)

	srv := startServer(t, t.TempDir(), freeAddr(t), "--signing-keys-file", file)
	c := client.New(srv.addr, "")
	for _, payload := range []string{`{"order":42}`, ""} {
		req := client.CreateTaskRequest{Queue: "signed", Delay: "10ms", Target: &client.Target{URL: rcv.URL}}
		if payload != "" {
			req.Payload = []byte(payload)
		}
		if _, err := c.CreateTask(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "both deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return len(verdicts) == 2 })
	mu.Lock()
	defer mu.Unlock()
	for id, v := range verdicts {
		if v[0] != nil || v[1] != nil || v[2] == nil {
			t.Errorf("task %s: old key %v, new key %v, other key %v; want old and new to verify, the other not", id, v[0], v[1], v[2])
		}
	}
	srv.terminate(t)
	log, _ := os.ReadFile(srv.logPath)
	for _, secret := range []string{oldText, newText, strings.TrimPrefix(oldText, client.SigningKeyPrefix)} {
		if bytes.Contains(log, []byte(secret)) {
			t.Errorf("the server log holds a signing key")
		}
	}
}
